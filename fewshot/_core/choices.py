"""The named choices the estimators, the export and the command line share.

Plain constants, importable without torch, so ``fewshot --help``, ``fewshot info`` and
``fewshot serve`` can name them in a process that never loads a model.
"""

from __future__ import annotations

__all__ = [
    "BACKENDS",
    "COLD_START",
    "COMBINE",
    "DEFAULT_MODEL",
    "HEAD_OUTPUTS",
    "LONG_TEXT",
    "POOLINGS",
    "QUANTIZE",
    "SELECT_STRATEGIES",
    "UNCERTAINTY",
]

#: The anchor model: DistilBERT fine-tuned on SST-2, with its 2-class sentiment head.
DEFAULT_MODEL = "distilbert-base-uncased-finetuned-sst-2-english"
#: How a layer's token states become one vector (see :mod:`fewshot._core.pooling`).
POOLINGS = ("mean", "cls", "max")
#: How several layers are joined: side by side, or averaged.
COMBINE = ("concat", "mean")
#: What a sequence-classification head adds to the features.
HEAD_OUTPUTS = ("logits", "proba")
#: What happens to a text longer than ``max_length`` tokens.
LONG_TEXT = ("truncate", "chunk")
#: Where the forward pass runs.
BACKENDS = ("torch", "onnx")
#: ONNX Runtime quantisation of an export (None: float32).
QUANTIZE = (None, "int8")
#: How :mod:`fewshot.select` picks texts before any label exists (from embeddings alone).
COLD_START = ("density", "kmeans", "random")
#: How :mod:`fewshot.select` scores a fitted classifier's doubt about a text.
UNCERTAINTY = ("margin", "entropy", "least-confident")
#: What ``fewshot select --strategy`` and ``texts_to_label(strategy=...)`` accept; "auto"
#: means the cold start's default without a classifier, the next batch's with one.
SELECT_STRATEGIES = ("auto", *COLD_START, *UNCERTAINTY)
