"""What an estimator hands the export: the parts of its one-file graph.

An estimator that can be exported answers ``_export_parts()`` with an
:class:`ExportParts`: its tokenizer and length, the ONNX graph from token ids to the
features its head sees, the head, the classes, and the Python reference the file is
compared with. :func:`to_onnx <fewshot.export.to_onnx>` only assembles those parts
(tokenizer, features graph, head), measures the file and writes it; it never asks
which estimator it was given. :func:`transformer_parts` builds the parts of an
estimator that embeds through a transformer's encoding plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

__all__ = ["ExportParts", "classifier_reference", "transformer_parts"]


@dataclasses.dataclass
class ExportParts:
    """The parts of one exported file.

    Attributes
    ----------
    kind : str
        The manifest's ``kind`` ("embedder", "setfit", "pipeline", "head", ...).
    tokenizer : transformers tokenizer
        A fast tokenizer; a WordPiece one can be put into the graph (``inputs="text"``).
    max_length : int
        Tokens per text, special tokens included (the graph truncates there).
    prompt : str or None
        Applied to every text before tokenisation (by the runtime).
    n_features : int
        Width of the ``features`` output (what the head sees).
    write_features : callable
        ``write_features(path)`` writes an ONNX model ``(input_ids, attention_mask)
        -> features`` (int64 batch x tokens in, float32 batch x n_features out).
    token_ids : callable
        ``token_ids(texts)``: the ids the Python estimator embeds (the graph's
        tokenizer must give the same).
    head : object or None
        The fitted head on the features (a scikit-learn classifier, a Pipeline of
        steps, or a head with its own ONNX form such as a temperature head).
    classes : ndarray or None
        ``classes_``; None for a file that outputs features only.
    reference : callable
        ``reference(texts)``: ``(labels, probabilities)`` of a classifier, or features.
    source : dict
        What the manifest records about the estimator's settings.
    provenance : dict
        What made the estimator (versions, base model, data, seeds, parameters).
    quantize : callable, optional
        ``quantize(fp32_path, int8_path)`` for ``quantize="int8"``: by default
        ONNX Runtime's dynamic quantisation of the weight multiplies.
    """

    kind: str
    tokenizer: object
    max_length: int
    prompt: str | None
    n_features: int
    write_features: Callable[[str], None]
    token_ids: Callable[[list], list]
    head: object
    classes: np.ndarray | None
    reference: Callable
    source: dict
    provenance: dict
    quantize: Callable[[str, str], None] | None = None


def transformer_parts(estimator, plan, *, kind: str, head=None, classes=None) -> ExportParts:
    """The parts of an estimator that embeds with a transformer ``plan`` (CPU, float32)."""
    from .._core.encoding import tokenize
    from .._core.onnx_backend import quantize_int8
    from ._encoder import export_encoder
    from ._manifest import provenance

    loaded, spec = plan.loaded, plan.spec
    _check_plan(loaded, spec)
    return ExportParts(
        kind=kind,
        tokenizer=loaded.tokenizer,
        max_length=int(spec.max_length),
        prompt=spec.prompt,
        n_features=spec.n_features(loaded),
        write_features=lambda path: export_encoder(loaded, spec, path),
        token_ids=lambda texts: tokenize(loaded.tokenizer, texts, spec)[0],
        head=head,
        classes=None if classes is None else np.asarray(classes),
        reference=estimator.transform if classes is None else classifier_reference(estimator),
        source=_source(estimator, plan),
        provenance=provenance(estimator, loaded),
        quantize=quantize_int8,
    )


def classifier_reference(estimator):
    """``texts -> (labels, probabilities)`` of a fitted classifier, in float32 compute."""
    import copy

    from .._estimator.predict import labels_and_proba

    if getattr(estimator, "dtype_", "float32") != "float32":
        # The graph computes in float32: compare it with the same weights run in float32
        # by PyTorch, not with bfloat16 autocast (see fewshot.setfit._precision).
        estimator = copy.copy(estimator)
        estimator.dtype_ = "float32"

    def reference(texts):
        return labels_and_proba(estimator, texts)

    return reference


def _source(estimator, plan) -> dict:
    spec = plan.spec
    return {
        "estimator": type(estimator).__name__,
        "model": str(getattr(estimator, "model", plan.loaded.name)),
        "layers": list(spec.layers),
        "pooling": spec.pooling,
        "combine": spec.combine,
        "head_output": spec.head,
        "normalize": bool(spec.normalize),
        "prompt": spec.prompt,
    }


def _check_plan(loaded, spec) -> None:
    """Refuse what the graph cannot hold: chunked long texts, weights off the CPU or not float32."""
    import torch

    if spec.long_text == "chunk":
        raise ValueError(
            "long_text='chunk' (overlapping windows averaged per text) is not in the ONNX "
            "graph; export an estimator with long_text='truncate'."
        )
    if loaded.device.type != "cpu" or loaded.dtype != torch.float32:
        raise ValueError(
            f"to_onnx exports float32 weights on the CPU, but the model is on "
            f"{loaded.device} in {loaded.dtype}; fit or load it with device='cpu' and "
            "dtype='float32' (fewshot.load_model(folder, device='cpu'))."
        )
