"""Next batch: the texts a fitted classifier is least sure about, spread over the pool.

Uncertainty alone picks near-copies (the texts on one stretch of the decision boundary
look alike). With ``diversity=True`` the batch follows Zhdanov (2019), "Diverse
mini-batch active learning": the ``beta * k`` most uncertain texts are clustered into
``k`` groups by k-means weighted by uncertainty, and the text nearest each group's centre
is chosen. The clusters use the classifier's own embedding where it has one (a
:class:`~fewshot.SetFitClassifier`'s fine-tuned body, a Pipeline's feature steps), so the
pool is embedded once for both the probabilities and the clusters.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._core.choices import UNCERTAINTY
from .._estimator.constraints import Boolean, Integer, Options, Real
from .._estimator.predict import split_head
from .._estimator.validation import plain
from ._clusters import centre_similarity, cluster, pick_per_cluster
from ._pool import embed, prepare_pool, unit_rows
from ._selection import Selection

__all__ = ["UNCERTAINTY", "next_batch", "uncertainty"]


def uncertainty(proba, strategy="margin") -> np.ndarray:
    """Uncertainty of each row of class probabilities, from 0 (sure) to 1 (a toss-up).

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Rows of class probabilities (``predict_proba``), each summing to 1.
    strategy : {"margin", "entropy", "least-confident"}, default="margin"
        ``1 - (p_first - p_second)``; the entropy divided by ``log(n_classes)``;
        ``1 - p_first`` scaled by ``n_classes / (n_classes - 1)``.

    Returns
    -------
    ndarray of shape (n_samples,)

    Examples
    --------
    >>> uncertainty([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]]).round(2).tolist()
    [1.0, 0.2, 0.0]
    >>> uncertainty([[0.5, 0.5], [0.9, 0.1]], "entropy").round(2).tolist()
    [1.0, 0.47]
    """
    Options(*UNCERTAINTY).check("strategy", strategy)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise ValueError(
            f"proba must have one column per class (at least two), got shape {proba.shape}."
        )
    n_classes = proba.shape[1]
    top = -np.sort(-proba, axis=1)
    if strategy == "margin":
        score = 1.0 - (top[:, 0] - top[:, 1])
    elif strategy == "least-confident":
        score = (1.0 - top[:, 0]) * n_classes / (n_classes - 1)
    else:
        clipped = np.clip(proba, 1e-12, 1.0)
        score = -(proba * np.log(clipped)).sum(axis=1) / math.log(n_classes)
    return np.clip(score, 0.0, 1.0)


def check_proba_classifier(classifier, name: str = "classifier") -> None:
    """A fitted classifier with ``predict_proba``, or a message that says what to pass."""
    if not hasattr(classifier, "predict_proba"):
        raise TypeError(
            f"{name} {type(classifier).__name__} has no predict_proba, and uncertainty needs "
            "class probabilities. Use a classifier that has it (SetFitClassifier, "
            "HeadClassifier, a Pipeline ending in LogisticRegression), wrap it in "
            "sklearn.calibration.CalibratedClassifierCV, or choose a cold-start strategy."
        )
    check_is_fitted(classifier)


def _fallback_embedder(classifier):
    """For a classifier without a feature step: a DistilEmbedder of its own model, if named."""
    params = classifier.get_params(deep=False) if hasattr(classifier, "get_params") else {}
    model = params.get("model")
    return model if isinstance(model, (str, os.PathLike)) else None


def next_batch(
    classifier,
    X,
    k,
    *,
    strategy="margin",
    diversity=True,
    beta=10.0,
    labelled=None,
    embedder=None,
    max_candidates=None,
    random_state=None,
    progress=False,
) -> Selection:
    """Choose the next ``k`` texts to label, where a fitted classifier is least sure.

    Parameters
    ----------
    classifier : fitted classifier with ``predict_proba``
        A :class:`~fewshot.SetFitClassifier`, :class:`~fewshot.HeadClassifier`,
        :class:`~fewshot.select.PseudoLabelClassifier`, or any scikit-learn Pipeline
        whose ``predict_proba`` takes texts. Single-label classes.
    X : list, tuple, 1-D array, pandas Series or one-column DataFrame of str
        The unlabelled pool, read by position; a repeated text is offered once.
    k : int
        How many texts to choose.
    strategy : {"margin", "entropy", "least-confident"}, default="margin"
        How uncertainty is measured (see :func:`uncertainty`).
    diversity : bool, default=True
        Spread the batch: cluster the ``beta * k`` most uncertain texts into ``k``
        groups and take the text nearest each group's centre. False takes the ``k``
        most uncertain texts.
    beta : float, default=10.0
        How many times ``k`` uncertain texts are clustered (Zhdanov 2019 uses 10).
    labelled : sequence of str, optional
        Texts labelled already; they are never chosen again (pool texts equal to one
        are left out, with a :class:`SelectionWarning`).
    embedder : None, str, path-like or object with ``transform``, default=None
        Features for the clusters when the classifier has no feature step of its own
        (a HeadClassifier, a classifier on raw texts). None: a
        :class:`~fewshot.DistilEmbedder` of the classifier's ``model`` parameter, else
        of the default model.
    max_candidates : int, optional
        Score only a random sample of this many pool texts (seeded by
        ``random_state``): with a 100,000-text pool and a fine-tuned model, scoring
        everything costs a forward pass per text. None scores the whole pool.
    random_state : int, RandomState or None
        Decides the candidate sample and the k-means initialisation.
    progress : bool, default=False
        Progress bar while embedding with a default ``embedder``.

    Returns
    -------
    Selection
        Pool positions, most uncertain first; ``scores`` are the uncertainties.

    Raises
    ------
    TypeError
        If ``classifier`` has no ``predict_proba``, or a text is not a ``str``.
    ValueError
        For an empty pool, ``k`` larger than the texts left to choose from, an
        unfitted or multi-label classifier.

    Examples
    --------
    >>> import tempfile
    >>> from fewshot import SetFitClassifier
    >>> from fewshot.data import load_customer_feedback
    >>> from fewshot.select import next_batch
    >>> from fewshot.testing import make_tiny_distilbert
    >>> path = str(make_tiny_distilbert(tempfile.mkdtemp()))    # a tiny random model
    >>> data = load_customer_feedback()
    >>> seen = [0, 1, 20, 21, 40, 41, 60, 61]
    >>> texts = [data.text[i] for i in seen]
    >>> labels = [data.target[i] for i in seen]
    >>> clf = SetFitClassifier(model=path, n_iterations=1, random_state=0).fit(texts, labels)
    >>> pool = [t for t in data.text if t not in texts]
    >>> batch = next_batch(clf, pool, 4, labelled=texts, random_state=0)
    >>> len(batch), bool(batch.scores[0] >= batch.scores[-1])
    (4, True)
    >>> batch.reasons[0]    # doctest: +SKIP
    "margin uncertainty 0.993: 'billing' 0.26 vs 'service' 0.25; nearest the centre of ..."
    """
    Options(*UNCERTAINTY).check("strategy", strategy)
    Boolean().check("diversity", diversity)
    Real(1.0).check("beta", beta)
    Integer(1, optional=True).check("max_candidates", max_candidates)
    check_proba_classifier(classifier)
    pool = prepare_pool(X, k, labelled=labelled)
    rng = check_random_state(random_state)
    sample_seed, cluster_seed = (int(s) for s in rng.randint(0, 2**31 - 1, size=2))
    candidates = _sample(pool.candidates, k, max_candidates, sample_seed)
    texts = [pool.texts[i] for i in candidates]

    start = time.perf_counter()
    features, proba = _features_and_proba(classifier, texts)
    timings = {"features": time.perf_counter() - start}
    scores = uncertainty(proba, strategy)
    order = np.lexsort((candidates, -scores))  # most uncertain first, then the earlier row
    classes = [plain(c) for c in getattr(classifier, "classes_", range(proba.shape[1]))]
    ranked = np.argsort(-proba, axis=1, kind="stable")[:, :2]

    def why(i: int) -> str:
        a, b = ranked[i]
        return (
            f"{strategy} uncertainty {scores[i]:.3f}: {classes[a]!r} {proba[i, a]:.2f} vs "
            f"{classes[b]!r} {proba[i, b]:.2f}"
        )

    if not diversity or k == len(texts):
        rows, clusters = order[:k], np.full(k, -1, dtype=np.intp)
        reasons = [why(i) for i in rows]
    else:
        top = order[: min(len(texts), max(k, int(math.ceil(beta * k))))]
        if features is None:  # no feature step: embed the uncertain texts for the clusters
            source = embedder if embedder is not None else _fallback_embedder(classifier)
            Z = embed(source, [texts[i] for i in top], progress=progress, timings=timings)
        else:
            Z = unit_rows(np.asarray(features)[top])
        picked, clusters = _one_per_group(Z, scores[top], k, cluster_seed)
        rows = top[picked]
        again = np.lexsort((candidates[rows], -scores[rows]))  # most uncertain first
        rows, clusters = rows[again], clusters[again]
        reasons = [
            f"{why(i)}; nearest the centre of group {c} of the {len(top)} most uncertain"
            for i, c in zip(rows, clusters)
        ]
    timings["select"] = time.perf_counter() - start - timings["features"]
    positions = candidates[rows]
    return Selection(
        positions=positions,
        texts=[pool.texts[i] for i in positions],
        scores=scores[rows],
        reasons=reasons,
        clusters=np.asarray(clusters, dtype=np.intp),
        strategy=strategy,
        seconds=timings,
    )


def _sample(candidates, k, max_candidates, seed):
    """At most ``max_candidates`` of the candidate rows, a seeded sample in pool order."""
    if max_candidates is None or len(candidates) <= max_candidates:
        return candidates
    if max_candidates < k:
        raise ValueError(
            f"max_candidates={max_candidates} is smaller than k={k}; score at least k texts."
        )
    sample = np.random.default_rng(seed).choice(len(candidates), max_candidates, replace=False)
    return candidates[np.sort(sample)]


def _features_and_proba(classifier, texts):
    """``(features or None, proba)``: one pass through the encoder serves both."""
    featurize, head = split_head(classifier)
    features = None
    if featurize is not None:
        features = featurize(texts)
        proba = head.predict_proba(features)
    else:
        proba = classifier.predict_proba(texts)
    proba = np.asarray(proba, dtype=np.float64)
    single = proba.ndim == 2 and np.allclose(proba.sum(axis=1), 1.0, atol=1e-3)
    if not single or len(proba) != len(texts):
        raise ValueError(
            "classifier.predict_proba must give one row of single-label class probabilities "
            f"per text (rows summing to 1), got shape {proba.shape}; multi-label "
            "classifiers are not supported."
        )
    return features, proba


def _one_per_group(Z, weights, k, seed):
    """Zhdanov's batch: k-means weighted by uncertainty, the row nearest each centre."""
    # Weighted, so centres lean towards the least certain texts.
    labels, centres = cluster(Z, k, seed, sample_weight=weights + 1e-6)
    near = centre_similarity(Z, labels, centres)
    picked, clusters, _ = pick_per_cluster(labels, near, np.arange(len(Z)), k, min_size=1)
    return picked, clusters
