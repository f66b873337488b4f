"""The pool every strategy chooses from: checked texts, repeats and labelled texts left out.

A text is offered once, at its first row: labelling two copies of one text teaches the
model nothing new. Pool texts that are already labelled are left out with a
:class:`~fewshot.select.SelectionWarning`, so no strategy can pick a labelled text again.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

from .._estimator.constraints import Integer
from .._estimator.validation import check_texts
from ._selection import SelectionWarning

__all__ = ["Pool", "embed", "prepare_pool", "unit_rows"]


@dataclass
class Pool:
    texts: list  # every pool text, in input order
    candidates: np.ndarray  # positions that may be chosen: first copies, not labelled
    labelled: list  # the distinct labelled texts

    def candidate_texts(self) -> list:
        return [self.texts[i] for i in self.candidates]


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside fewshot.select."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(__package__):
        frame, level = frame.f_back, level + 1
    return level


def _preview(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def prepare_pool(X, k, *, labelled=None) -> Pool:
    """Check the pool, ``k`` and the labelled texts; find the rows that may be chosen."""
    texts = check_texts(X, name="X")
    if not texts:
        raise ValueError(
            "X (the pool) is empty; pass the unlabelled texts to choose from, for example "
            "the texts of your table that have no label yet."
        )
    Integer(1).check("k", k)
    known = set() if labelled is None else set(check_texts(labelled, name="labelled"))
    seen, candidates, overlap = set(), [], []
    for i, text in enumerate(texts):
        if text in known:
            overlap.append(i)
        elif text not in seen:
            candidates.append(i)
        seen.add(text)
    if overlap:
        warnings.warn(
            f"{len(overlap)} pool text{'s are' if len(overlap) != 1 else ' is'} already "
            f"labelled (the first at position {overlap[0]}: {_preview(texts[overlap[0]])}) and "
            "left out of the choice; drop labelled texts from the pool to silence this warning.",
            SelectionWarning,
            stacklevel=_caller_level(),
        )
    n_repeats = len(texts) - len(overlap) - len(candidates)
    if len(candidates) < k:
        detail = []
        if overlap:
            detail.append(f"{len(overlap)} already labelled")
        if n_repeats:
            detail.append(f"{n_repeats} repeats of an earlier row")
        why = f" ({', '.join(detail)})" if detail else ""
        if not candidates:
            raise ValueError(
                f"no pool text is left to choose from: all {len(texts)} rows are already "
                "labelled; add unlabelled texts to the pool."
            )
        raise ValueError(
            f"k={k} is larger than the pool: {len(texts)} rows give {len(candidates)} texts "
            f"to choose from{why}; ask for at most k={len(candidates)}, or add texts to the pool."
        )
    candidates = np.asarray(candidates, dtype=np.intp)
    return Pool(texts=texts, candidates=candidates, labelled=sorted(known))


def unit_rows(features) -> np.ndarray:
    """Rows scaled to unit length (float32), so distances are cosine distances."""
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def embed(embedder, texts, *, progress: bool = False, timings: dict | None = None):
    """Unit-length features of ``texts`` from a model reference or anything with ``transform``.

    ``embedder`` None means :class:`~fewshot.DistilEmbedder` with its defaults; a str or
    path a DistilEmbedder of that model. A DistilEmbedder keeps its ``cache``, so a large
    pool is embedded once across calls.
    """
    from ..embedder import DistilEmbedder

    start = time.perf_counter()
    if embedder is None:
        embedder = DistilEmbedder(progress=progress)
    elif isinstance(embedder, (str, os.PathLike)):
        embedder = DistilEmbedder(model=embedder, progress=progress)
    elif not hasattr(embedder, "transform"):
        raise TypeError(
            f"embedder must be a model id or folder, or have a transform method (a "
            f"DistilEmbedder, a fitted SetFitClassifier), got {type(embedder).__name__}."
        )
    features = np.asarray(embedder.transform(texts))
    if features.ndim != 2 or len(features) != len(texts):
        raise ValueError(
            f"embedder.transform gave shape {features.shape} for {len(texts)} texts; it must "
            "give one row of features per text."
        )
    if timings is not None:
        timings["features"] = timings.get("features", 0.0) + time.perf_counter() - start
    return unit_rows(features)
