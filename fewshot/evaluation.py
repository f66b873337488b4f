"""The few-shot evaluation protocol: several training-set sizes, several seeds, one test set.

Follows the SetFit paper: for each ``n`` per class and each seed, draw ``n`` training
examples per class, fit a fresh clone of the estimator (its ``random_state`` set to the
seed), score on the full test set; report mean ± population std over the seeds.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.base import clone
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from ._validation import check_labels
from .data import sample_per_class

__all__ = ["METRICS", "evaluate_few_shot", "plot_learning_curve", "summarize"]

METRICS = {
    "accuracy": accuracy_score,
    "f1_macro": lambda y, p: f1_score(y, p, average="macro"),
    "matthews": matthews_corrcoef,
}


def _metric(scoring):
    """``(name, score(model, X, y) -> (score, predict seconds))`` for ``scoring``."""
    from sklearn.metrics import get_scorer, get_scorer_names

    if callable(scoring) or scoring in METRICS:
        metric = scoring if callable(scoring) else METRICS[scoring]
        name = getattr(scoring, "__name__", "score") if callable(scoring) else scoring

        def score(model, X, y):
            start = time.perf_counter()
            predicted = model.predict(X)
            return float(metric(y, predicted)), time.perf_counter() - start

        return name, score
    if isinstance(scoring, str) and scoring in get_scorer_names():
        scorer = get_scorer(scoring)

        def score(model, X, y):
            start = time.perf_counter()
            value = scorer(model, X, y)
            return float(value), time.perf_counter() - start

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
    progress : bool, default=False
        A tqdm bar over the runs.

    Returns
    -------
    pandas.DataFrame
        One row per run: ``method, n_per_class, seed, metric, score, fit_seconds,
        predict_seconds``. Summarise with :func:`summarize`.

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
                value, predict_seconds = score(model, X_test, y_test)
                rows.append({
                    "method": method, "n_per_class": n, "seed": seed, "metric": name,
                    "score": value, "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
                })
                bar.update(1)
    return pd.DataFrame(rows)


def summarize(runs):
    """Mean ± population std over seeds, per method and ``n_per_class``.

    Returns
    -------
    pandas.DataFrame
        Columns ``method, n_per_class, metric, mean, std, n_seeds, fit_seconds`` and
        ``result`` (e.g. ``"43.6 ± 3.0"``, in percent as the SetFit paper reports).

    Examples
    --------
    >>> import pandas as pd
    >>> runs = pd.DataFrame({"method": "m", "n_per_class": 8, "seed": [0, 1], "metric": "accuracy",
    ...                      "score": [0.5, 0.7], "fit_seconds": 1.0})
    >>> summarize(runs)["result"].tolist()
    ['60.0 ± 10.0']
    """
    grouped = runs.groupby(["method", "n_per_class", "metric"], sort=False)
    table = grouped.agg(
        mean=("score", "mean"),
        std=("score", lambda s: float(np.std(s, ddof=0))),
        n_seeds=("seed", "nunique"),
        fit_seconds=("fit_seconds", "mean"),
    ).reset_index()
    table["result"] = [f"{100 * m:.1f} ± {100 * s:.1f}" for m, s in zip(table["mean"], table["std"])]
    return table


def plot_learning_curve(runs, ax=None):
    """Score against examples per class, one line per method, error bars = std over seeds.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from ._optional import require

    plt = require("matplotlib.pyplot", extra="viz", feature="plot_learning_curve")

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    table = summarize(runs)
    for method, part in table.groupby("method", sort=False):
        part = part.sort_values("n_per_class")
        ax.errorbar(part["n_per_class"].to_numpy(float), part["mean"].to_numpy(float),
                    yerr=part["std"].to_numpy(float), marker="o", capsize=3, label=method)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(table["n_per_class"].unique()))
    ax.get_xaxis().set_major_formatter(plt.ScalarFormatter())
    ax.set_xlabel("labelled examples per class")
    ax.set_ylabel(str(table["metric"].iloc[0]))
    ax.set_title("Few-shot learning curve")
    ax.legend()
    return ax
