"""SetFitClassifier's head: the default, and the wrappers for multi-label targets."""

from __future__ import annotations

from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import ClassifierChain, MultiOutputClassifier

__all__ = ["MULTI_TARGET", "make_head", "unwrap_head"]

MULTI_TARGET = ("one-vs-rest", "multi-output", "classifier-chain")


def make_head(head, multilabel: bool, strategy, random_state: int):
    """An unfitted head: ``head`` (None: the default) in the multi-label wrapper asked for."""
    head = LogisticRegression(max_iter=1000) if head is None else clone(head)
    if "random_state" in head.get_params() and head.get_params()["random_state"] is None:
        head.set_params(random_state=random_state)
    if not multilabel:
        return head
    strategy = strategy or "one-vs-rest"
    if strategy == "one-vs-rest":
        return OneVsRestClassifier(head)
    if strategy == "multi-output":
        return MultiOutputClassifier(head)
    return ClassifierChain(head, random_state=random_state)


def unwrap_head(head):
    """The user's head inside a multi-label wrapper, for the ``head`` parameter."""
    inner = getattr(head, "estimator", None) or getattr(head, "base_estimator", None)
    return clone(inner if inner is not None else head)
