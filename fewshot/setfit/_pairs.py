"""Contrastive pair sampling for SetFit-style training, without building all O(n²) pairs.

A positive pair joins two examples of the same class (target 1), a negative pair two
examples of different classes (target 0). Pairs are addressed by an index into a virtual
enumeration (class by class for positives, class pair by class pair for negatives) and
decoded on the fly, so memory grows with the number of pairs *drawn*, never with n².
The draw is decided by ``random_state`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SAMPLING", "Pairs", "sample_pairs"]

SAMPLING = ("oversampling", "undersampling", "unique")


@dataclass(frozen=True)
class Pairs:
    """Drawn pairs: indices into the training texts and the cosine target of each."""

    first: np.ndarray
    second: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.target)


def _decode_within(index: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Index ``k`` of the pairs ``(a, b)``, ``a < b < size``, in row-major order."""
    # Row a starts at a*size - a*(a+1)/2 pairs; solve for a and take the remainder.
    n = float(size)
    a = np.floor((2 * n - 1 - np.sqrt((2 * n - 1) ** 2 - 8 * index.astype(np.float64))) / 2)
    a = a.astype(np.int64)
    start = a * size - a * (a + 1) // 2
    # Guard against float rounding at row boundaries.
    too_far = index < start
    a[too_far] -= 1
    start = a * size - a * (a + 1) // 2
    next_start = (a + 1) * size - (a + 1) * (a + 2) // 2
    too_short = index >= next_start
    a[too_short] += 1
    start = a * size - a * (a + 1) // 2
    b = index - start + a + 1
    return a, b


class _PairSpace:
    """Positive and negative pairs of a single-label problem, addressed by index.

    With ``self_pairs`` the positives of a class of size c are its pairs ``(a, b)``,
    ``a <= b``: the pairs ``a < b'`` of size c + 1 with ``b = b' - 1``.
    """

    def __init__(self, y: np.ndarray, self_pairs: bool = False):
        _, codes = np.unique(y, return_inverse=True)
        order = np.argsort(codes, kind="stable")
        counts = np.bincount(codes)
        self.members = np.split(order, np.cumsum(counts)[:-1])
        self.counts = counts.astype(np.int64)
        self.shift = int(self_pairs)
        sizes = self.counts + self.shift
        within = sizes * (sizes - 1) // 2
        self.pos_offsets = np.concatenate([[0], np.cumsum(within)])
        c1, c2 = np.triu_indices(len(counts), 1)
        self.neg_classes = (c1, c2)
        self.neg_offsets = np.concatenate([[0], np.cumsum(self.counts[c1] * self.counts[c2])])

    @property
    def n_positive(self) -> int:
        return int(self.pos_offsets[-1])

    @property
    def n_negative(self) -> int:
        return int(self.neg_offsets[-1])

    def positive(self, index: np.ndarray):
        cls = np.searchsorted(self.pos_offsets, index, side="right") - 1
        first = np.empty(len(index), dtype=np.int64)
        second = np.empty(len(index), dtype=np.int64)
        for c in np.unique(cls):
            rows = cls == c
            size = int(self.counts[c]) + self.shift
            a, b = _decode_within(index[rows] - self.pos_offsets[c], size)
            first[rows], second[rows] = self.members[c][a], self.members[c][b - self.shift]
        return first, second

    def negative(self, index: np.ndarray):
        block = np.searchsorted(self.neg_offsets, index, side="right") - 1
        first = np.empty(len(index), dtype=np.int64)
        second = np.empty(len(index), dtype=np.int64)
        for k in np.unique(block):
            rows = block == k
            c1, c2 = self.neg_classes[0][k], self.neg_classes[1][k]
            local = index[rows] - self.neg_offsets[k]
            first[rows] = self.members[c1][local // self.counts[c2]]
            second[rows] = self.members[c2][local % self.counts[c2]]
        return first, second


def _draw(total: int, wanted: int, rng: np.random.Generator) -> np.ndarray:
    """``wanted`` indices into ``range(total)``: each index once before any repeats."""
    if total == 0 or wanted == 0:
        return np.empty(0, dtype=np.int64)
    full_rounds, rest = divmod(wanted, total)
    parts = [rng.permutation(total) for _ in range(full_rounds)]
    parts.append(rng.choice(total, size=rest, replace=False))
    return np.concatenate(parts).astype(np.int64)


def _quotas(n_pos: int, n_neg: int, n_samples: int, n_iterations, sampling, max_pairs):
    if n_iterations is not None:
        n_each = (n_iterations * n_samples, n_iterations * n_samples)
    elif sampling == "unique":
        n_each = (n_pos, n_neg)
    elif sampling == "undersampling":
        n_each = (min(n_pos, n_neg),) * 2
    else:  # oversampling
        n_each = (max(n_pos, n_neg),) * 2
    pos, neg = n_each
    if max_pairs is not None:
        pos, neg = min(pos, max_pairs // 2), min(neg, max_pairs - max_pairs // 2)
    return (pos if n_pos else 0), (neg if n_neg else 0)


def _interleave(pos, neg, rng) -> Pairs:
    first = np.concatenate([pos[0], neg[0]])
    second = np.concatenate([pos[1], neg[1]])
    target = np.concatenate([np.ones(len(pos[0])), np.zeros(len(neg[0]))]).astype(np.float32)
    order = rng.permutation(len(target))
    return Pairs(first[order], second[order], target[order])


def sample_pairs(
    y,
    *,
    n_iterations: int | None = 20,
    sampling: str = "oversampling",
    max_pairs: int | None = None,
    self_pairs: bool = False,
    random_state=None,
) -> Pairs:
    """Draw positive and negative training pairs for contrastive fine-tuning.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_labels)
        Class labels, or a 0/1 multi-label indicator matrix (two texts are then a
        positive pair when they share at least one label).
    n_iterations : int or None, default=20
        SetFit's meaning: draw ``n_iterations * n_samples`` positive and as many
        negative pairs. ``None`` lets ``sampling`` decide the counts.
    sampling : {"oversampling", "undersampling", "unique"}, default="oversampling"
        With ``n_iterations=None``: as many pairs of each kind as the larger kind has
        (the smaller is repeated), as the smaller kind has, or every pair once.
    max_pairs : int, optional
        Upper bound on the total number of pairs (half positive, half negative).
    self_pairs : bool, default=False
        Also count each text paired with itself among the positive pairs (for a
        multi-label ``y``, each text with at least one label), as the setfit library's
        sampler does. Trained with dropout, the two sides of such a pair are two
        different views of the text.
    random_state : int, RandomState, Generator or None
        Decides which pairs are drawn and their order.

    Returns
    -------
    Pairs
        ``first``, ``second`` (indices into the samples) and ``target`` (1.0 or 0.0),
        shuffled. Unique pairs are drawn before any pair repeats; no pair joins a text
        with itself unless ``self_pairs``.

    Examples
    --------
    >>> pairs = sample_pairs(["a", "a", "b", "b"], n_iterations=2, random_state=0)
    >>> len(pairs), int(pairs.target.sum())
    (16, 8)
    >>> pairs = sample_pairs([0, 0, 1, 1], n_iterations=None, sampling="unique", random_state=0)
    >>> sorted(zip(pairs.first.tolist(), pairs.second.tolist(), pairs.target.tolist()))
    [(0, 1, 1.0), (0, 2, 0.0), (0, 3, 0.0), (1, 2, 0.0), (1, 3, 0.0), (2, 3, 1.0)]
    >>> pairs = sample_pairs(
    ...     [0, 0, 1], n_iterations=None, sampling="unique", self_pairs=True, random_state=0
    ... )
    >>> positive = pairs.target == 1
    >>> sorted(zip(pairs.first[positive].tolist(), pairs.second[positive].tolist()))
    [(0, 0), (0, 1), (1, 1), (2, 2)]
    """
    if sampling not in SAMPLING:
        raise ValueError(f"sampling={sampling!r} is not valid; choose one of {list(SAMPLING)}.")
    if n_iterations is not None and (
        not isinstance(n_iterations, (int, np.integer)) or n_iterations < 1
    ):
        raise ValueError(f"n_iterations must be a positive int or None, got {n_iterations!r}.")
    if max_pairs is not None and (not isinstance(max_pairs, (int, np.integer)) or max_pairs < 2):
        raise ValueError(f"max_pairs must be an int >= 2 or None, got {max_pairs!r}.")
    rng = (
        random_state
        if isinstance(random_state, np.random.Generator)
        else np.random.default_rng(_seed_from(random_state))
    )
    y = np.asarray(y)
    if y.ndim == 2:
        return _sample_multilabel(y, n_iterations, sampling, max_pairs, bool(self_pairs), rng)
    space = _PairSpace(y, bool(self_pairs))
    n_pos, n_neg = _quotas(
        space.n_positive, space.n_negative, len(y), n_iterations, sampling, max_pairs
    )
    pos = space.positive(_draw(space.n_positive, n_pos, rng))
    neg = space.negative(_draw(space.n_negative, n_neg, rng))
    return _interleave(pos, neg, rng)


def _seed_from(random_state):
    if isinstance(random_state, np.random.RandomState):
        return random_state.randint(np.iinfo(np.int32).max)
    return random_state


def _sample_multilabel(Y, n_iterations, sampling, max_pairs, self_pairs, rng) -> Pairs:
    """Multi-label pairs, streamed row by row: O(n) memory besides the pairs kept."""
    Y = Y.astype(bool)
    n = len(Y)
    # A text with itself is a positive pair when it has a label (never a negative one).
    selves = np.flatnonzero(Y.any(axis=1)) if self_pairs else np.empty(0, np.int64)
    # Count both kinds without storing them (O(n²) time, O(n) memory).
    n_between = sum(int((Y[i + 1 :] & Y[i]).any(axis=1).sum()) for i in range(n - 1))
    n_pos = n_between + len(selves)
    n_neg = n * (n - 1) // 2 - n_between
    want_pos, want_neg = _quotas(n_pos, n_neg, n, n_iterations, sampling, max_pairs)
    # Choose which pair numbers (within each kind) to keep, then stream to find them.
    pick_pos = np.sort(_draw(n_pos, want_pos, rng)) if n_pos else np.empty(0, np.int64)
    pick_neg = np.sort(_draw(n_neg, want_neg, rng)) if n_neg else np.empty(0, np.int64)
    # Positive numbers below len(selves) are the self-pairs, the rest are streamed.
    chosen_selves = selves[pick_pos[pick_pos < len(selves)]]
    found = {True: ([chosen_selves], [chosen_selves]), False: ([], [])}
    seen = {True: len(selves), False: 0}
    picks = {True: pick_pos, False: pick_neg}
    for i in range(n - 1):
        shares = (Y[i + 1 :] & Y[i]).any(axis=1)
        for kind in (True, False):
            js = np.flatnonzero(shares == kind) + i + 1
            lo, hi = seen[kind], seen[kind] + len(js)
            wanted = picks[kind][(picks[kind] >= lo) & (picks[kind] < hi)] - lo
            found[kind][0].append(np.full(len(wanted), i))
            found[kind][1].append(js[wanted])
            seen[kind] = hi
    pos = tuple(np.concatenate(part) if part else np.empty(0, np.int64) for part in found[True])
    neg = tuple(np.concatenate(part) if part else np.empty(0, np.int64) for part in found[False])
    return _interleave(pos, neg, rng)
