"""A scikit-learn head fitted on soft labels: the teacher's probabilities, not its argmax.

Distillation's loss is the cross-entropy between the teacher's probabilities ``p`` and
the student's ``q``: ``-sum_c p_c log q_c(x)`` per text. A scikit-learn classifier that
takes ``sample_weight`` minimises exactly that when each text appears once per class,
labelled with the class and weighted by its probability, so the head stays a plain
fitted ``LogisticRegression`` (exported by the existing head graph, saved with skops)
and no probability mass is thrown away (an argmax keeps 40 % on a 5-class text whose
teacher says 40 / 35 / 25).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.linear_model import LogisticRegression

from .._estimator.validation import plain

__all__ = ["default_head", "fit_soft_head", "labelled_rows"]


def fit_soft_head(head, features: np.ndarray, targets: np.ndarray, classes: np.ndarray):
    """Fit ``head`` (unfitted) to the soft ``targets`` (rows sum to 1, columns = ``classes``).

    Rows whose target is 0 for a class are left out of that class's copy. A head without
    ``sample_weight`` in ``fit`` learns the argmax instead.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> P = np.array([[0.9, 0.1], [0.7, 0.3], [0.3, 0.7], [0.1, 0.9]])
    >>> head = fit_soft_head(LogisticRegression(), X, P, np.array(["a", "b"]))
    >>> head.classes_.tolist(), head.predict([[0.2], [2.8]]).tolist()
    (['a', 'b'], ['a', 'b'])
    """
    from sklearn.utils.validation import has_fit_parameter

    classes = np.asarray(classes)
    if not has_fit_parameter(head, "sample_weight"):
        return head.fit(features, classes[targets.argmax(axis=1)])
    n, k = targets.shape
    weights = targets.T.reshape(-1)
    rows = np.flatnonzero(weights > 0)
    # Every class keeps at least its most probable text, so the head knows all classes.
    rows = np.union1d(rows, targets.argmax(axis=0) + n * np.arange(k))
    X = np.tile(features, (k, 1))[rows]
    y = np.repeat(classes, n)[rows]
    return head.fit(X, y, sample_weight=np.maximum(weights[rows], 1e-12))


def labelled_rows(y, n_texts: int, classes: np.ndarray) -> np.ndarray:
    """Each text's class index, or -1 where it is unlabelled (None, NaN, or -1)."""
    rows = np.full(n_texts, -1, dtype=np.intp)
    if y is None:
        return rows
    values = y.to_numpy() if hasattr(y, "to_numpy") else y  # pandas: positions, not index
    if hasattr(values, "shape"):
        values = np.asarray(values, dtype=object).reshape(-1)
    values = list(values)
    if len(values) != n_texts:
        raise ValueError(
            f"X has {n_texts} texts but y has {len(values)} labels; give one label per "
            "text (None for an unlabelled one)."
        )
    index = {plain(c): i for i, c in enumerate(classes)}
    for i, value in enumerate(values):
        value = plain(value)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if value not in index:
            if isinstance(value, numbers.Integral) and value == -1:
                continue  # scikit-learn's mark of an unlabelled sample
            raise ValueError(
                f"y[{i}] is {value!r}, which is not one of the teacher's classes "
                f"{[plain(c) for c in classes]}; use None for an unlabelled text."
            )
        rows[i] = index[value]
    return rows


def default_head(random_state: int):
    """The student's head when none is given: a LogisticRegression for soft targets."""
    # Unit-length inputs and probabilities for targets: C=1 regularises too hard.
    return LogisticRegression(C=10.0, max_iter=2000, random_state=random_state)
