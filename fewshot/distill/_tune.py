"""Fine-tuning the static table on the pool: the student learns the teacher's probabilities.

After model2vec's distillation the table holds general token vectors; a student that
only fits a head on them keeps what the teacher's *task* added to its body only as far
as single tokens show it. Here the table and a linear head are trained together on the
pool to minimise the cross-entropy with the teacher's probabilities (a static model's
task fine-tuning, as model2vec's ``StaticModelForClassification`` does with labels,
here with the teacher's soft labels), for a few passes; the head is then refitted by
scikit-learn on the tuned, quantised table (:func:`fewshot.distill._soft.fit_soft_head`).
Only the rows of tokens the pool holds move. Deterministic: one seeded generator
orders the texts, and the CPU kernels used are deterministic.
"""

from __future__ import annotations

import numpy as np

__all__ = ["tune_table"]


def _start_head(head, n_classes: int, dims: int):
    """Logit weights ``(n_classes, dims)`` and biases from a fitted linear head."""
    coef = np.asarray(getattr(head, "coef_", np.zeros((n_classes, dims))), dtype=np.float32)
    intercept = np.asarray(getattr(head, "intercept_", np.zeros(n_classes)), dtype=np.float32)
    if coef.shape[0] == 1 and n_classes == 2:  # binary: one logit is two, split evenly
        coef = np.vstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2], dtype=np.float32)
    if coef.shape != (n_classes, dims):
        return np.zeros((n_classes, dims), np.float32), np.zeros(n_classes, np.float32)
    return coef, intercept.reshape(-1)


def tune_table(
    ids: list,
    table: np.ndarray,
    targets: np.ndarray,
    head,
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    normalize: bool,
    seed: int,
    progress: bool = False,
) -> np.ndarray:
    """The table after ``epochs`` passes of Adam on the soft cross-entropy; float32.

    ``ids`` holds each pool text's kept token ids (special tokens removed), ``targets``
    the probabilities to learn (rows sum to 1); ``head`` is a linear head fitted on the
    starting table's features, the starting point of the trained logits.
    """
    import torch
    from tqdm.auto import tqdm

    if epochs == 0:
        return table
    n_classes, dims = targets.shape[1], table.shape[1]
    coef, intercept = _start_head(head, n_classes, dims)
    generator = torch.Generator().manual_seed(seed)
    weights = torch.nn.Parameter(torch.from_numpy(table.copy()))
    logits_w = torch.nn.Parameter(torch.from_numpy(coef.copy()))
    logits_b = torch.nn.Parameter(torch.from_numpy(intercept.copy()))
    # Sparse updates: a step moves only the rows of its texts' tokens, not the whole table.
    optimizers = [
        torch.optim.SparseAdam([weights], lr=learning_rate),
        torch.optim.Adam([logits_w, logits_b], lr=learning_rate),
    ]
    target = torch.from_numpy(np.asarray(targets, dtype=np.float32))
    lengths = np.asarray([len(seq) for seq in ids])
    flat_ids = [torch.as_tensor(seq, dtype=torch.long) for seq in ids]
    usable = np.flatnonzero(lengths > 0)  # a text with no kept token teaches nothing
    steps = epochs * -(-len(usable) // batch_size)
    with tqdm(total=steps, disable=not progress, unit="step", desc="Tuning table") as bar:
        for _ in range(epochs):
            order = usable[torch.randperm(len(usable), generator=generator).numpy()]
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                flat = torch.cat([flat_ids[i] for i in rows])
                offsets = torch.as_tensor(np.concatenate([[0], np.cumsum(lengths[rows])[:-1]]))
                bag = torch.nn.functional.embedding_bag(
                    flat, weights, offsets, mode="mean", sparse=True
                )
                if normalize:
                    bag = bag / bag.norm(dim=1, keepdim=True).clamp_min(1e-12)
                log_q = torch.log_softmax(bag @ logits_w.T + logits_b, dim=1)
                loss = -(target[rows] * log_q).sum(dim=1).mean()
                for optimizer in optimizers:
                    optimizer.zero_grad()
                loss.backward()
                for optimizer in optimizers:
                    optimizer.step()
                bar.update(1)
    return weights.detach().numpy().astype(np.float32)
