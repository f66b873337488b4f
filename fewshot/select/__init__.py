"""Which texts to label next: cold start, uncertainty batches, self-training.

A few-shot user's scarcest resource is labelling time. :func:`cold_start` chooses the
first texts to label from embeddings alone, :func:`next_batch` the next ones where a
fitted classifier is least sure, :func:`texts_to_label` either (what ``fewshot select``
runs), and :class:`PseudoLabelClassifier` lets a classifier learn from the unlabelled
texts it is sure of. See ``docs/select.md``.
"""

from ._cold_start import COLD_START, cold_start
from ._loop import STRATEGIES, texts_to_label
from ._selection import Selection, SelectionWarning
from ._self_training import PseudoLabelClassifier
from ._uncertainty import UNCERTAINTY, next_batch, uncertainty

__all__ = [
    "COLD_START",
    "STRATEGIES",
    "UNCERTAINTY",
    "PseudoLabelClassifier",
    "Selection",
    "SelectionWarning",
    "cold_start",
    "next_batch",
    "texts_to_label",
    "uncertainty",
]
