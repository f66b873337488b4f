"""Phase 1 of SetFit: contrastive fine-tuning of an encoder body on pairs of texts.

Same class -> cosine similarity 1, different classes -> 0, mean squared error
(sentence-transformers' ``CosineSimilarityLoss``), AdamW with linear warm-up and decay.
What each step embeds, and how, is :mod:`fewshot.setfit._step_embedding`: every
distinct text of a step runs through the body once, however many of the step's pairs
it appears in (twice when a pair joins it with itself: two dropout views), pooled
through the encoding path's own helpers, so the body trains on exactly the embedding it
later produces.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from .._core.encoding import EncodingSpec
from .._core.loading import LoadedModel
from ._precision import compute_autocast
from ._step_embedding import embed_step, frozen_states, step_views

__all__ = [
    "STOP_WINDOW",
    "TrainingLog",
    "TrainingRun",
    "TrainingSchedule",
    "adamw",
    "cosine_similarity_loss",
    "layer_groups",
    "token_embeddings",
    "train_body",
]


@dataclass(frozen=True)
class TrainingSchedule:
    """How long and how fast to train: passes, pairs per step, learning rate, warm-up.

    ``max_grad_norm`` clips the gradient's L2 norm before each step (None: no clipping).
    ``layer_decay`` scales the learning rate down by this factor per block below the
    top one (1.0: one rate for the whole body). ``stop_loss`` ends training early once
    it has come back to a pair it already trained on and the mean pair loss of the last
    :data:`STOP_WINDOW` steps is below it (None: never). No field has a default: the
    classifier's parameters are the one place they are written.
    """

    epochs: int
    pairs_per_step: int
    learning_rate: float
    warmup_proportion: float
    max_grad_norm: float | None
    layer_decay: float
    stop_loss: float | None

    def n_steps(self, n_pairs: int) -> int:
        return math.ceil(n_pairs / self.pairs_per_step) * self.epochs

    def lr_factor(self, n_pairs: int):
        """Linear warm-up over the first steps, then linear decay to zero."""
        total = self.n_steps(n_pairs)
        warmup = int(total * self.warmup_proportion)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            return max(0.0, (total - step) / max(1, total - warmup))

        return factor


@dataclass(frozen=True)
class TrainingRun:
    """Everything about one run of :func:`train_body` besides the body and its data.

    ``torch_seed`` seeds dropout (the caller's global torch random state is untouched),
    ``order_seed`` the pair order of epochs after the first. ``n_frozen`` bottom blocks
    stay as they are. ``parameters`` names the only parameters to train (a LoRA
    adapter's matrices); None: every parameter of the trained blocks, and of the
    embedding layer when every block trains, less the token embedding table unless
    ``train_token_embeddings``. ``compute_dtype="bfloat16"`` runs the forward passes
    under bfloat16 autocast.
    """

    schedule: TrainingSchedule
    torch_seed: int
    order_seed: int
    n_frozen: int
    parameters: tuple | None
    train_token_embeddings: bool
    compute_dtype: str
    progress: bool


# Steps whose mean pair loss ``stop_loss`` compares: one step's loss, over 16 pairs,
# varies too much to stop on.
STOP_WINDOW = 5


@dataclass(frozen=True)
class TrainingLog:
    """What :func:`train_body` did: each epoch's mean pair loss and the steps it ran."""

    losses: list[float]
    n_steps: int


class _StopRule:
    """``stop_loss``: stop once a pair came back and the last steps' mean loss is low."""

    def __init__(self, stop_loss: float | None):
        self.stop_loss = stop_loss
        self.trained_on: set = set()  # pairs seen so far
        self.returning = False  # has a pair come back?
        self.recent: deque = deque(maxlen=STOP_WINDOW)

    def see(self, first: np.ndarray, second: np.ndarray) -> None:
        """Record a step's pairs (until one of them comes back)."""
        if self.stop_loss is None or self.returning:
            return
        step = set(zip(np.minimum(first, second).tolist(), np.maximum(first, second).tolist()))
        self.returning = not self.trained_on.isdisjoint(step)
        self.trained_on |= step

    def stop(self, step_loss: float) -> bool:
        self.recent.append(step_loss)
        if not (self.returning and len(self.recent) == STOP_WINDOW):
            return False
        return sum(self.recent) / STOP_WINDOW < self.stop_loss


def cosine_similarity_loss(a: torch.Tensor, b: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between ``cos(a, b)`` and the pair targets (1 same class, 0 not)."""
    similarity = torch.nn.functional.cosine_similarity(a, b)
    return torch.nn.functional.mse_loss(similarity, target)


def train_body(
    body: LoadedModel, token_ids: list[list[int]], pairs, spec: EncodingSpec, run: TrainingRun
) -> TrainingLog:
    """Fine-tune ``body`` in place on ``pairs`` of ``token_ids``; return the losses and steps.

    ``pairs`` is a :class:`fewshot.setfit._pairs.Pairs` (``first``, ``second``, ``target``).
    The first epoch takes the pairs in the sampler's order, later epochs reshuffle them
    with ``run.order_seed``. With ``run.schedule.stop_loss`` training ends once it has
    reached a pair it trained on before and the last :data:`STOP_WINDOW` steps' mean
    loss is below it; the epoch it ends in reports the mean over the pairs it saw.
    While every pair is new the loss says how the body does on pairs it has not fitted,
    and stopping on it cut training short where it still paid (N = 64,
    docs/benchmarks.md); once pairs come back, a low loss means the few texts are fitted.

    With ``run.n_frozen`` the bottom blocks stay as they are: each distinct text runs
    through them once, its token states are kept, and every step trains only the blocks
    above from those states (the same result as a forward through frozen blocks in eval
    mode, at a fraction of the cost). Every parameter's ``requires_grad`` is as it was
    afterwards. Under bfloat16 autocast the weights, their gradients and AdamW's state
    stay float32, and the loss is taken in float32.
    """
    network = body.model
    pad_id = body.tokenizer.pad_token_id or 0
    states = None
    if run.n_frozen:
        with compute_autocast(body.device, run.compute_dtype):
            states = frozen_states(body, token_ids, run.n_frozen, pad_id)
    trainable = _trainable(body, run)
    previous = [(p, p.requires_grad) for p in network.parameters()]
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    for parameter in trainable:
        parameter.requires_grad_(True)
    network.train()
    try:
        step = _Step(body, token_ids, pairs, spec, run, states, trainable)
        return _epochs(step, run, len(pairs))
    finally:
        network.eval()
        for parameter, flag in previous:
            parameter.requires_grad_(flag)


def _trainable(body: LoadedModel, run: TrainingRun) -> list:
    """The parameters a run trains (see :class:`TrainingRun`)."""
    if run.parameters is not None:
        return list(run.parameters)
    if run.n_frozen:
        return [p for block in body.blocks[run.n_frozen :] for p in block.parameters()]
    network = body.model
    kept = set() if run.train_token_embeddings else set(map(id, token_embeddings(network)))
    return [p for p in network.parameters() if id(p) not in kept]


class _Step:
    """One optimiser step over a batch of pairs: embed each view once, loss, update."""

    def __init__(self, body, token_ids, pairs, spec, run, states, trainable):
        self.body, self.token_ids, self.pairs, self.spec = body, token_ids, pairs, spec
        self.run, self.states, self.trainable = run, states, trainable
        self.pad_id = body.tokenizer.pad_token_id or 0
        schedule = run.schedule
        learning_rate = float(schedule.learning_rate)
        if schedule.layer_decay != 1.0:
            groups = layer_groups(body.blocks, trainable, learning_rate, schedule.layer_decay)
            self.optimizer = adamw(groups, learning_rate)
        else:
            self.optimizer = adamw(trainable, learning_rate)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, schedule.lr_factor(len(pairs))
        )

    def __call__(self, batch: np.ndarray) -> float:
        body, pairs, n_texts = self.body, self.pairs, len(self.token_ids)
        views, where = step_views(pairs.first[batch], pairs.second[batch], n_texts)
        rows = views % n_texts  # a text's second view runs the same tokens
        embeddings = embed_step(
            body,
            self.token_ids,
            rows,
            self.spec,
            self.pad_id,
            self.states,
            self.run.n_frozen,
            self.run.compute_dtype,
        )
        where = torch.as_tensor(where, device=body.device)
        target = torch.as_tensor(pairs.target[batch], device=body.device)
        loss = cosine_similarity_loss(
            embeddings[where[: len(batch)]], embeddings[where[len(batch) :]], target
        )
        loss.backward()
        if self.run.schedule.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.run.schedule.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.item()


def _epochs(step: _Step, run: TrainingRun, n_pairs: int) -> TrainingLog:
    """The epochs of a run, under its own torch seed, until the end or the stop rule."""
    from tqdm.auto import tqdm

    schedule, body, pairs = run.schedule, step.body, step.pairs
    order_rng = np.random.default_rng(run.order_seed)
    devices = [body.device.index or 0] if body.device.type == "cuda" else []
    rule = _StopRule(schedule.stop_loss)
    losses, n_steps = [], 0
    total = schedule.n_steps(n_pairs)
    bar = tqdm(total=total, disable=not run.progress, desc="Fine-tuning", unit="step")
    with torch.random.fork_rng(devices=devices), bar:
        torch.manual_seed(run.torch_seed)
        for epoch in range(schedule.epochs):
            order = order_rng.permutation(n_pairs) if epoch else np.arange(n_pairs)
            epoch_loss, seen, stop = 0.0, 0, False
            for start in range(0, n_pairs, schedule.pairs_per_step):
                batch = order[start : start + schedule.pairs_per_step]
                rule.see(pairs.first[batch], pairs.second[batch])
                step_loss = step(batch)
                epoch_loss += step_loss * len(batch)
                seen += len(batch)
                n_steps += 1
                bar.update(1)
                stop = rule.stop(step_loss)
                if stop:
                    break
            losses.append(epoch_loss / seen)
            if stop:
                break
    return TrainingLog(losses, n_steps)


def token_embeddings(network: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters of ``network``'s token embedding table (none if it has no such table)."""
    try:
        table = network.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        return []
    return [] if table is None else list(table.parameters())


# Where torch has a fused AdamW kernel.
_FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_FUSED_DEVICES = ("cpu", "cuda")


def adamw(parameters, learning_rate: float) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel where it has one for these parameters.

    ``parameters`` is a list of tensors or of torch parameter groups (dicts with
    ``"params"`` and their own ``"lr"``). The same update as the default
    (multi-tensor) AdamW up to rounding, in one pass per tensor: for
    all-MiniLM-L6-v2 on 2 CPU cores a step took 12.5 ms instead of 65, without the
    default's temporary copies of every parameter.
    """
    parameters = list(parameters)
    tensors = [
        p for item in parameters for p in (item["params"] if isinstance(item, dict) else [item])
    ]
    fusable = all(p.dtype in _FUSED_DTYPES and p.device.type in _FUSED_DEVICES for p in tensors)
    return torch.optim.AdamW(parameters, lr=learning_rate, fused=fusable or None)


def layer_groups(blocks, trainable, learning_rate: float, decay: float) -> list[dict]:
    """AdamW parameter groups whose learning rate shrinks by ``decay`` per block downwards.

    The top block trains at ``learning_rate``, block ``i`` of ``n`` at
    ``learning_rate * decay ** (n - 1 - i)``, and whatever lies outside the blocks
    (the embedding layer) at ``learning_rate * decay ** n``: the lower a layer, the
    more general what it holds and the less a handful of texts should move it. One
    group per depth, bottom first; empty ones are left out.

    Examples
    --------
    >>> blocks = torch.nn.ModuleList(torch.nn.Linear(2, 2) for _ in range(3))
    >>> outside = torch.nn.Parameter(torch.zeros(2))
    >>> groups = layer_groups(blocks, [outside, *blocks.parameters()], 1.0, 0.5)
    >>> [(len(group["params"]), group["lr"]) for group in groups]
    [(1, 0.125), (2, 0.25), (2, 0.5), (2, 1.0)]
    """
    n = len(blocks)
    depth = {id(p): i for i, block in enumerate(blocks) for p in block.parameters()}
    by_depth: dict[int, list] = {}
    for parameter in trainable:
        by_depth.setdefault(depth.get(id(parameter), -1), []).append(parameter)
    return [
        {"params": by_depth[i], "lr": learning_rate * decay ** (n - 1 - i)}
        for i in sorted(by_depth)
    ]
