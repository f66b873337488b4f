"""Reliability diagrams behind :func:`fewshot.viz.plot_calibration`."""

from __future__ import annotations

import numpy as np

from .._estimator.validation import check_labels
from ..evaluation import calibration_bins, expected_calibration_error
from ._drawing import pyplot

__all__ = ["plot_calibration"]


def _calibration_entries(classifiers_or_probas) -> list[tuple[str | None, object]]:
    """``[(name or None, classifier or probabilities)]`` from the accepted forms."""
    if isinstance(classifiers_or_probas, dict):
        return [(str(name), item) for name, item in classifiers_or_probas.items()]
    if isinstance(classifiers_or_probas, (list, tuple)) and any(
        hasattr(item, "predict_proba") or isinstance(item, np.ndarray)
        for item in classifiers_or_probas
    ):
        return [(None, item) for item in classifiers_or_probas]
    # One classifier, or one probability matrix (an array or nested lists of numbers).
    return [(None, classifiers_or_probas)]


def _model_name(model) -> str:
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        return " + ".join(type(step).__name__ for _, step in model.steps)
    return type(model).__name__


def plot_calibration(
    classifiers_or_probas,
    X=None,
    y=None,
    *,
    classes=None,
    n_bins=15,
    ax=None,
    title=None,
):
    """Reliability diagram: accuracy against confidence, one line per classifier.

    Each text's confidence is its highest predicted probability; texts are grouped into
    ``n_bins`` equal-width confidence bins and each non-empty bin is drawn at (mean
    confidence, accuracy). Points on the diagonal are perfectly calibrated, points below
    it overconfident. The legend gives each line's expected calibration error
    (:func:`fewshot.evaluation.expected_calibration_error`, the same bins).

    Parameters
    ----------
    classifiers_or_probas : classifier, array, or a list or dict of them
        Fitted classifiers (anything with ``predict_proba`` and ``classes_``, scored on
        ``X``) and/or predicted probabilities of shape (n_samples, n_classes) (or
        (n_samples,) for the second of two classes). A dict gives the legend names;
        otherwise classifiers are named after their class.
    X : sequence of str or array-like, optional
        The inputs the classifiers predict on; not needed for probabilities.
    y : array-like of shape (n_samples,)
        True labels.
    classes : array-like, optional
        The label of each probability column, for probabilities given as arrays
        (default: the sorted distinct labels of ``y``); classifiers use their
        ``classes_``.
    n_bins : int, default=15
    ax : matplotlib Axes, optional
    title : str, optional
        Default: "Reliability diagram · <n> texts".

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> from fewshot.viz import plot_calibration
    >>> y = np.array([0, 1] * 50)
    >>> sharp = np.where(y[:, None] == [0, 1], 0.99, 0.01)
    >>> ax = plot_calibration({"sharp": sharp, "flat": np.full((100, 2), 0.5)}, y=y)
    >>> [t.get_text() for t in ax.get_legend().get_texts()][1:]
    ['sharp (ECE 0.010)', 'flat (ECE 0.000)']
    """
    plt = pyplot()
    if y is None:
        raise TypeError("y is None; the diagram compares probabilities with the true labels.")
    if isinstance(classifiers_or_probas, (list, tuple, dict)) and not classifiers_or_probas:
        raise ValueError("classifiers_or_probas is empty; give a classifier or probabilities.")
    entries = _calibration_entries(classifiers_or_probas)
    y = check_labels(y, name="y")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    seen: dict[str, int] = {}
    for i, (name, item) in enumerate(entries):
        if hasattr(item, "predict_proba"):
            if X is None:
                raise TypeError(
                    f"X is None, but {_model_name(item)} is a classifier: pass the inputs it "
                    "predicts on (or its predicted probabilities instead)."
                )
            proba, columns = item.predict_proba(X), np.asarray(item.classes_)
            name = name or _model_name(item)
        else:
            proba, columns = item, classes
            name = name or ("probabilities" if len(entries) == 1 else f"probabilities {i + 1}")
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} #{seen[name]}"
        confidence, accuracy, counts = calibration_bins(y, proba, classes=columns, n_bins=n_bins)
        ece = expected_calibration_error(y, proba, classes=columns, n_bins=n_bins)
        used = counts > 0
        ax.plot(
            confidence[used],
            accuracy[used],
            marker="o",
            markersize=4,
            label=f"{name} (ECE {ece:.3f})",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (highest predicted probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(title or f"Reliability diagram · {len(y)} texts", fontsize="medium")
    ax.legend(fontsize="small", frameon=False, loc="upper left")
    ax.grid(alpha=0.3)
    return ax
