"""The few-shot evaluation protocol: several training-set sizes, several seeds, one test set.

Follows the SetFit paper: for each ``n`` per class and each seed, draw ``n`` training
examples per class, fit a fresh clone of the estimator (its ``random_state`` set to the
seed), score on the full test set; report mean ± population std over the seeds.
"""

from __future__ import annotations

import time
from math import nan

import numpy as np
from sklearn.base import clone
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from ._estimator.predict import labels_and_proba
from ._estimator.validation import check_labels
from .data._datasets import sample_per_class

__all__ = [
    "METRICS",
    "evaluate_few_shot",
    "calibration_bins",
    "expected_calibration_error",
    "plot_learning_curve",
    "summarize",
]

METRICS = {
    "accuracy": accuracy_score,
    "f1_macro": lambda y, p: f1_score(y, p, average="macro"),
    "matthews": matthews_corrcoef,
}


def _metric(scoring):
    """``(name, score(model, X, y, with_proba) -> (score, predict seconds, proba or None))``.

    With ``with_proba``, a metric on predicted labels also returns the probabilities,
    from the same pass through the encoder (:func:`fewshot._estimator.predict.labels_and_proba`),
    so recording calibration does not embed the test set a second time.
    """
    from sklearn.metrics import get_scorer, get_scorer_names

    if callable(scoring) or scoring in METRICS:
        metric = scoring if callable(scoring) else METRICS[scoring]
        name = getattr(scoring, "__name__", "score") if callable(scoring) else scoring

        def score(model, X, y, with_proba):
            start = time.perf_counter()
            proba = None
            if with_proba and hasattr(model, "predict_proba"):
                predicted, proba = labels_and_proba(model, X)
            else:
                predicted = model.predict(X)
            return float(metric(y, predicted)), time.perf_counter() - start, proba

        return name, score
    if isinstance(scoring, str) and scoring in get_scorer_names():
        scorer = get_scorer(scoring)

        def score(model, X, y, with_proba):
            start = time.perf_counter()
            value = scorer(model, X, y)
            return float(value), time.perf_counter() - start, None

        return scoring, score
    raise ValueError(
        f"scoring={scoring!r} is not known; use one of {sorted(METRICS)}, any scikit-learn "
        "scorer name (sklearn.metrics.get_scorer_names()) or a callable(y_true, y_pred)."
    )


def evaluate_few_shot(
    estimator,
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    n_per_class=(8,),
    seeds=range(10),
    scoring="accuracy",
    method=None,
    calibration=True,
    progress=False,
):
    """Fit and score ``estimator`` on few-shot samples of the training set.

    Parameters
    ----------
    estimator : sklearn estimator
        Cloned for every run; if it has a ``random_state`` parameter it is set to the seed.
    X_train, y_train : training pool to sample from.
    X_test, y_test : the test set every run is scored on.
    n_per_class : int or sequence of int, default=(8,)
        Training examples per class.
    seeds : iterable of int, default=range(10)
        One training sample (and estimator seed) per value: the SetFit protocol uses 10.
    scoring : str or callable, default="accuracy"
        "accuracy", "f1_macro", "matthews", any scikit-learn scorer name (e.g.
        "balanced_accuracy", "neg_log_loss"), or a callable ``(y_true, y_pred)``.
    method : str, optional
        Label for the ``method`` column (default: the estimator's class name).
    calibration : bool, default=True
        Also record how well the probabilities are calibrated: the expected calibration
        error (:func:`expected_calibration_error`, 15 bins) and the Brier score
        (:func:`sklearn.metrics.brier_score_loss`) of ``predict_proba`` on the test set,
        when the fitted model has ``predict_proba`` and single-label classes (NaN
        otherwise). With a metric on predicted labels the probabilities come from the
        same pass through the encoder as the predictions (the head's ``predict_proba``
        is then part of ``predict_seconds``); with a scikit-learn scorer name they cost
        one extra ``predict_proba`` call, not timed.
    progress : bool, default=False
        A tqdm bar over the runs.

    Returns
    -------
    pandas.DataFrame
        One row per run: ``method, n_per_class, seed, metric, score, fit_seconds,
        predict_seconds, ece, brier``. Summarise with :func:`summarize`.

    Examples
    --------
    >>> from sklearn.dummy import DummyClassifier
    >>> X = [[0]] * 20; y = [0] * 10 + [1] * 10
    >>> runs = evaluate_few_shot(DummyClassifier(), X, y, X, y, n_per_class=[2, 4], seeds=[0, 1])
    >>> list(zip(runs["n_per_class"], runs["seed"], runs["score"]))
    [(2, 0, 0.5), (2, 1, 0.5), (4, 0, 0.5), (4, 1, 0.5)]
    """
    import pandas as pd
    from tqdm.auto import tqdm

    name, score = _metric(scoring)
    sizes = [n_per_class] if isinstance(n_per_class, (int, np.integer)) else list(n_per_class)
    seeds = list(seeds)
    method = method or type(estimator).__name__
    y_test = check_labels(y_test, name="y_test")
    rows = []
    with tqdm(total=len(sizes) * len(seeds), disable=not progress, desc=method, unit="run") as bar:
        for n in sizes:
            for seed in seeds:
                X_s, y_s = sample_per_class(X_train, y_train, n, random_state=seed)
                model = clone(estimator)
                if "random_state" in model.get_params():
                    model.set_params(random_state=seed)
                start = time.perf_counter()
                model.fit(X_s, y_s)
                fit_seconds = time.perf_counter() - start
                value, predict_seconds, proba = score(model, X_test, y_test, calibration)
                ece, brier = (nan, nan)
                if calibration:
                    ece, brier = _calibration(model, X_test, y_test, proba)
                rows.append(
                    {
                        "method": method,
                        "n_per_class": n,
                        "seed": seed,
                        "metric": name,
                        "score": value,
                        "fit_seconds": fit_seconds,
                        "predict_seconds": predict_seconds,
                        "ece": ece,
                        "brier": brier,
                    }
                )
                bar.update(1)
    return pd.DataFrame(rows)


def _calibration(model, X, y, proba=None) -> tuple[float, float]:
    """``(ECE, Brier score)`` of a fitted classifier on ``X``; NaNs when they do not apply.

    ``proba`` is ``predict_proba(X)`` when the caller already has it.
    """
    from sklearn.metrics import brier_score_loss

    classes = getattr(model, "classes_", None)
    if classes is None or not hasattr(model, "predict_proba"):
        return nan, nan
    classes = np.asarray(classes)
    if classes.ndim != 1 or y.ndim != 1 or not np.isin(y, classes).all():
        return nan, nan  # multi-label, or test labels the model never saw
    if proba is None:
        proba = model.predict_proba(X)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (len(y), len(classes)):
        return nan, nan
    # float32 probabilities sum to 1 only to ~1e-7, which brier_score_loss warns about.
    proba /= proba.sum(axis=1, keepdims=True)
    ece = expected_calibration_error(y, proba, classes=classes)
    return ece, float(brier_score_loss(y, proba, labels=classes))


def _proba_matrix(y_true, y_proba, classes):
    """``(y, proba, classes)`` checked: a 1-D ``y_proba`` is P(``classes[1]``) of two classes."""
    y_true = check_labels(y_true, name="y_true")
    proba = np.asarray(y_proba, dtype=np.float64)
    classes = np.unique(y_true) if classes is None else np.asarray(classes)
    if proba.ndim == 1:
        if len(classes) != 2:
            raise ValueError(
                f"a 1-D y_proba is the probability of the second of two classes, but there "
                f"are {len(classes)} classes ({classes.tolist()})."
            )
        proba = np.column_stack([1.0 - proba, proba])
    if proba.ndim != 2 or proba.shape[0] != len(y_true):
        raise ValueError(
            f"y_proba has shape {proba.shape}; expected ({len(y_true)}, n_classes) for "
            f"{len(y_true)} labels."
        )
    if proba.shape[1] != len(classes):
        raise ValueError(
            f"y_proba has {proba.shape[1]} columns but there are {len(classes)} classes "
            f"({classes.tolist()}); pass classes= (for a fitted model: its classes_) to say "
            "which class each column is."
        )
    return y_true, proba, classes


def calibration_bins(y_true, y_proba, *, classes=None, n_bins=15):
    """Per confidence bin: mean confidence, accuracy and count (NaN for empty bins).

    Confidence is the highest probability of a row; a row is correct when its
    highest-probability class is its label. Bins split [0, 1] into ``n_bins`` equal
    widths, each holding ``(low, high]`` (the first one also 0).
    """
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be an int >= 1, got {n_bins!r}.")
    y_true, proba, classes = _proba_matrix(y_true, y_proba, classes)
    confidence = proba.max(axis=1)
    correct = classes[proba.argmax(axis=1)] == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(bins, confidence, n_bins) / counts
        accuracy = np.bincount(bins, correct.astype(np.float64), n_bins) / counts
    return mean_confidence, accuracy, counts


def expected_calibration_error(y_true, y_proba, *, classes=None, n_bins=15) -> float:
    """Expected calibration error of the top-label confidence (Guo et al., 2017).

    Each text's confidence is its highest predicted probability. Texts are grouped into
    ``n_bins`` equal-width confidence bins, and the ECE is the mean over bins, weighted
    by their share of texts, of ``|accuracy - mean confidence|``: 0 for perfectly
    calibrated probabilities, up to 1.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_proba : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities (``predict_proba``); 1-D: the probability of
        ``classes[1]`` of two classes.
    classes : array-like, optional
        The label of each column (a fitted model's ``classes_``); default the sorted
        distinct labels of ``y_true``.
    n_bins : int, default=15

    Returns
    -------
    float

    Examples
    --------
    >>> from fewshot.evaluation import expected_calibration_error
    >>> y = ["a", "b", "a", "b"]
    >>> proba = [[0.95, 0.05], [0.15, 0.85], [0.65, 0.35], [0.75, 0.25]]
    >>> round(expected_calibration_error(y, proba), 3)  # (0.05 + 0.15 + 0.35 + 0.75) / 4
    0.325
    """
    confidence, accuracy, counts = calibration_bins(y_true, y_proba, classes=classes, n_bins=n_bins)
    used = counts > 0
    if not used.any():
        return nan
    weights = counts[used] / counts.sum()
    return float(np.sum(weights * np.abs(accuracy[used] - confidence[used])))


def summarize(runs):
    """Mean ± population std over seeds, per method and ``n_per_class``.

    Returns
    -------
    pandas.DataFrame
        Columns ``method, n_per_class, metric, mean, std, n_seeds, fit_seconds``,
        ``ece`` and ``brier`` (means over the seeds; NaN where the runs did not record
        them) and ``result`` (e.g. ``"43.6 ± 3.0"``, in percent as the SetFit paper
        reports).

    Examples
    --------
    >>> import pandas as pd
    >>> runs = pd.DataFrame({"method": "m", "n_per_class": 8, "seed": [0, 1], "metric": "accuracy",
    ...                      "score": [0.5, 0.7], "fit_seconds": 1.0})
    >>> summarize(runs)["result"].tolist()
    ['60.0 ± 10.0']
    """
    grouped = runs.groupby(["method", "n_per_class", "metric"], sort=False)
    calibration = {c: (c, "mean") for c in ("ece", "brier") if c in runs.columns}
    table = grouped.agg(
        mean=("score", "mean"),
        std=("score", lambda s: float(np.std(s, ddof=0))),
        n_seeds=("seed", "nunique"),
        fit_seconds=("fit_seconds", "mean"),
        **calibration,
    ).reset_index()
    for column in ("ece", "brier"):
        if column not in table.columns:
            table[column] = nan
    table["result"] = [
        f"{100 * m:.1f} ± {100 * s:.1f}" for m, s in zip(table["mean"], table["std"])
    ]
    return table


def plot_learning_curve(runs, ax=None):
    """Score against examples per class, one line per method, error bars = std over seeds.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from ._core.optional import require

    plt = require("matplotlib.pyplot", extra="viz", feature="plot_learning_curve")

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    table = summarize(runs)
    for method, part in table.groupby("method", sort=False):
        part = part.sort_values("n_per_class")
        ax.errorbar(
            part["n_per_class"].to_numpy(float),
            part["mean"].to_numpy(float),
            yerr=part["std"].to_numpy(float),
            marker="o",
            capsize=3,
            label=method,
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(table["n_per_class"].unique()))
    ax.get_xaxis().set_major_formatter(plt.ScalarFormatter())
    ax.set_xlabel("labelled examples per class")
    ax.set_ylabel(str(table["metric"].iloc[0]))
    ax.set_title("Few-shot learning curve")
    ax.legend()
    return ax
