"""Predict labels and probabilities with one forward pass through the encoder.

``predict`` and ``predict_proba`` of a fewshot classifier each embed their texts; a
caller that wants both (the CLI's ``predict``, the Ray helpers) embeds once and asks the
fitted head for both.
"""

from __future__ import annotations

import numpy as np

__all__ = ["HeadPredictionMixin", "labels_and_proba", "split_head"]


def split_head(estimator):
    """``(featurize, head)`` of a classifier; ``featurize`` is None when it cannot be split.

    A fewshot classifier answers for itself (its ``_split_head`` hook: features, then a
    fitted head), a Pipeline splits before its last step; anything else is its own head
    and gets the texts directly.
    """
    ask = getattr(estimator, "_split_head", None)
    if ask is not None:
        return ask()
    steps = getattr(estimator, "steps", None)
    if steps is not None and len(steps) > 1:
        return estimator[:-1].transform, estimator[-1]
    return None, estimator


class HeadPredictionMixin:
    """``predict``, ``predict_proba`` and ``decision_function`` of features + a head.

    For a classifier whose ``_split_head()`` gives ``(texts -> features, fitted head)``
    and that has ``classes_`` (and ``multilabel_`` when it takes indicator targets):
    each call embeds the texts once and asks the head. No texts give empty arrays of
    the right shape (a scikit-learn head refuses zero rows).
    """

    def _ask_head(self, X, method: str):
        from .validation import check_texts

        featurize, head = self._split_head()
        features = featurize(check_texts(X))
        if len(features):
            return getattr(head, method)(features)
        n_classes, multilabel = len(self.classes_), getattr(self, "multilabel_", False)
        if method == "predict":
            if multilabel:
                return np.empty((0, n_classes), dtype=int)
            return np.empty(0, dtype=np.asarray(self.classes_).dtype)
        if method == "decision_function" and n_classes == 2 and not multilabel:
            return np.empty(0)
        return np.empty((0, n_classes))

    def predict(self, X):
        """The predicted class of each text (an indicator row for multi-label ``y``).

        Parameters
        ----------
        X : sequence of str

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        return self._ask_head(X, "predict")

    def predict_proba(self, X):
        """Class probabilities, columns in ``classes_`` order.

        Parameters
        ----------
        X : sequence of str

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Rows sum to 1 for single-label ``y``.
        """
        return self._ask_head(X, "predict_proba")

    def decision_function(self, X):
        """The head's decision function, where it has one.

        Parameters
        ----------
        X : sequence of str

        Returns
        -------
        ndarray of shape (n_samples,) for two classes, else (n_samples, n_classes)
        """
        return self._ask_head(X, "decision_function")


def labels_and_proba(estimator, texts):
    """Predicted labels and class probabilities (columns in ``classes_`` order)."""
    featurize, head = split_head(estimator)
    features = featurize(texts) if featurize is not None else texts
    if len(texts) == 0:
        return np.empty(0, dtype=np.asarray(estimator.classes_).dtype), np.empty(
            (0, len(estimator.classes_))
        )
    return np.asarray(head.predict(features)), np.asarray(head.predict_proba(features))
