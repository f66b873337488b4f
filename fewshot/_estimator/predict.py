"""Predict labels and probabilities with one forward pass through the encoder.

``predict`` and ``predict_proba`` of a fewshot classifier each embed their texts; a
caller that wants both (the CLI's ``predict``, the Ray helpers) embeds once and asks the
fitted head for both.
"""

from __future__ import annotations

import numpy as np

__all__ = ["labels_and_proba", "split_head"]


def split_head(estimator):
    """``(featurize, head)`` of a classifier; ``featurize`` is None when it cannot be split.

    A Pipeline splits before its last step, a SetFitClassifier into its fine-tuned body
    and fitted head; anything else is its own head and gets the texts directly.
    """
    from sklearn.pipeline import Pipeline

    from ..setfit._classifier import SetFitClassifier

    if isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
        return estimator[:-1].transform, estimator[-1]
    if isinstance(estimator, SetFitClassifier):
        return estimator.transform, estimator.head_
    return None, estimator


def labels_and_proba(estimator, texts):
    """Predicted labels and class probabilities (columns in ``classes_`` order)."""
    featurize, head = split_head(estimator)
    features = featurize(texts) if featurize is not None else texts
    if len(texts) == 0:
        return np.empty(0, dtype=np.asarray(estimator.classes_).dtype), np.empty(
            (0, len(estimator.classes_))
        )
    return np.asarray(head.predict(features)), np.asarray(head.predict_proba(features))
