"""Phase 1 of SetFit: contrastive fine-tuning of an encoder body on pairs of texts.

Same class -> cosine similarity 1, different classes -> 0, mean squared error
(sentence-transformers' ``CosineSimilarityLoss``), AdamW with linear warm-up and decay.
Each step pads and pools through the encoding path's own helpers
(:func:`fewshot._encoding.pad_batch`, :func:`fewshot._encoding.pooled_features`), so the
body trains on exactly the embedding it later produces; every distinct text of a step
runs through the body once, however many of the step's pairs it appears in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._encoding import EncodingSpec, pad_batch, pooled_features
from ._loading import LoadedModel

__all__ = ["TrainingSchedule", "cosine_similarity_loss", "train_body"]


@dataclass(frozen=True)
class TrainingSchedule:
    """How long and how fast to train: passes, pairs per step, learning rate, warm-up."""

    epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 2e-5
    warmup_proportion: float = 0.1

    def n_steps(self, n_pairs: int) -> int:
        return math.ceil(n_pairs / self.batch_size) * self.epochs

    def lr_factor(self, n_pairs: int):
        """Linear warm-up over the first steps, then linear decay to zero."""
        total = self.n_steps(n_pairs)
        warmup = int(total * self.warmup_proportion)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            return max(0.0, (total - step) / max(1, total - warmup))

        return factor


def cosine_similarity_loss(a: torch.Tensor, b: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between ``cos(a, b)`` and the pair targets (1 same class, 0 not)."""
    similarity = torch.nn.functional.cosine_similarity(a, b)
    return torch.nn.functional.mse_loss(similarity, target)


def train_body(
    body: LoadedModel,
    token_ids: list[list[int]],
    pairs,
    spec: EncodingSpec,
    schedule: TrainingSchedule,
    *,
    torch_seed: int,
    order_seed: int,
    progress: bool = False,
) -> list[float]:
    """Fine-tune ``body`` in place on ``pairs`` of ``token_ids``; return each epoch's mean loss.

    ``pairs`` is a :class:`fewshot.sampling.Pairs` (``first``, ``second``, ``target``).
    The first epoch takes the pairs in the sampler's order, later epochs reshuffle them
    with ``order_seed``; dropout draws from ``torch_seed`` without touching the
    caller's global torch random state.
    """
    from tqdm.auto import tqdm

    network = body.model
    pad_id = body.tokenizer.pad_token_id or 0
    batch_size = schedule.batch_size
    total = schedule.n_steps(len(pairs))
    optimizer = torch.optim.AdamW(network.parameters(), lr=float(schedule.learning_rate))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule.lr_factor(len(pairs)))
    order_rng = np.random.default_rng(order_seed)
    devices = [body.device.index or 0] if body.device.type == "cuda" else []
    losses = []
    network.train()
    try:
        with (
            torch.random.fork_rng(devices=devices),
            tqdm(total=total, disable=not progress, desc="Fine-tuning", unit="step") as bar,
        ):
            torch.manual_seed(torch_seed)
            for epoch in range(schedule.epochs):
                order = order_rng.permutation(len(pairs)) if epoch else np.arange(len(pairs))
                epoch_loss = 0.0
                for start in range(0, len(pairs), batch_size):
                    batch = order[start : start + batch_size]
                    first, second = pairs.first[batch], pairs.second[batch]
                    unique, where = np.unique(np.concatenate([first, second]), return_inverse=True)
                    input_ids, mask = pad_batch([token_ids[i] for i in unique], pad_id, body.device)
                    embeddings = pooled_features(body, input_ids, mask, spec)
                    where = torch.as_tensor(where, device=body.device)
                    target = torch.as_tensor(pairs.target[batch], device=body.device)
                    loss = cosine_similarity_loss(
                        embeddings[where[: len(batch)]], embeddings[where[len(batch) :]], target
                    )
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    epoch_loss += loss.item() * len(batch)
                    bar.update(1)
                losses.append(epoch_loss / len(pairs))
    finally:
        network.eval()
    return losses
