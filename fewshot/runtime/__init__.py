"""Predict from an exported ONNX file with ONNX Runtime and numpy only.

:class:`OnnxClassifier` runs a file written by :func:`fewshot.export.to_onnx` (or
``fewshot export``): texts in, labels, class probabilities or features out. This module
imports only ``onnxruntime``, ``onnxruntime_extensions`` (for files that tokenise inside
the graph), ``numpy`` and the standard library: no torch, transformers or scikit-learn,
so ``pip install 'fewshot[runtime]'`` is all a deployment needs.

Everything the runtime needs to know about a file is in the file: its manifest is the
JSON string stored under the metadata key ``fewshot.manifest`` (ONNX ``metadata_props``),
holding the classes, the inputs and outputs, the tokenizer settings, the prompt (applied
here to every text before the graph tokenises it) and the agreement with the Python
estimator that the export measured.
"""

from ._classifier import MANIFEST_KEY, TOKENIZER_KEY, OnnxClassifier, read_manifest

__all__ = ["MANIFEST_KEY", "OnnxClassifier", "TOKENIZER_KEY", "read_manifest"]
