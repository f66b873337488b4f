"""What :func:`fewshot.export.to_onnx` exports: the parts of a fitted estimator.

:func:`resolve` turns a fitted ``DistilEmbedder``, ``SetFitClassifier``,
``HeadClassifier`` or ``Pipeline([DistilEmbedder, ..., classifier])`` into the loaded
model (a float32 copy on the CPU), its encoding spec, its head (a scikit-learn
classifier, a Pipeline of steps, or a :class:`~fewshot.export._head.TemperatureHead`),
its classes, and the Python reference the file is compared with;
:func:`check_spec` refuses what the graph cannot hold.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..setfit._lora import is_adapter
from ._head import TemperatureHead, check_head

__all__ = ["check_spec", "resolve"]


@dataclasses.dataclass
class _Parts:
    kind: str  # "embedder", "setfit", "pipeline", "head"
    loaded: object  # LoadedModel
    spec: object  # EncodingSpec
    head: object  # fitted sklearn classifier (or Pipeline of steps) or None
    classes: np.ndarray | None
    reference: object  # callable texts -> (labels, proba) or features
    source: dict


# The model the graph is exported from: float32 weights on the CPU, run by PyTorch
# (whatever device, dtype and backend the estimator itself predicts with).
_CPU_FLOAT32 = {
    "backend": "torch",
    "quantize": None,
    "cache": None,
    "device": "cpu",
    "dtype": "float32",
}


def resolve(estimator) -> _Parts:
    """The parts of a fitted estimator to export, or a TypeError naming what is supported."""
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    from .._estimator.params import embedding_plan
    from ..embedder import DistilEmbedder
    from ..head_classifier import HeadClassifier
    from ..setfit._classifier import SetFitClassifier, fitted_plan

    if isinstance(estimator, DistilEmbedder):
        plan = embedding_plan(estimator, **_CPU_FLOAT32)
        return _Parts(
            kind="embedder",
            loaded=plan.loaded,
            spec=plan.spec,
            head=None,
            classes=None,
            reference=estimator.transform,
            source=_source(estimator, plan),
        )
    if isinstance(estimator, SetFitClassifier):
        check_is_fitted(estimator, "head_")
        if estimator.multilabel_:
            raise ValueError(
                "to_onnx exports single-label classifiers; this SetFitClassifier was fitted "
                "on multi-label targets."
            )
        check_head(estimator.head_)
        body = None
        if is_adapter(estimator.body_):
            from ..setfit._lora import merged_copy

            # A LoRA adapter goes into the file merged into a copy of its base's weights.
            body = merged_copy(estimator.body_)
        plan = fitted_plan(estimator, body).replace(backend="torch", quantize=None)
        return _Parts(
            kind="setfit",
            loaded=plan.loaded,
            spec=plan.spec,
            head=estimator.head_,
            classes=np.asarray(estimator.classes_),
            reference=_classifier_reference(estimator),
            source=_source(estimator, plan),
        )
    if isinstance(estimator, Pipeline):
        steps = estimator.steps
        if len(steps) < 2 or not isinstance(steps[0][1], DistilEmbedder):
            raise TypeError(
                "to_onnx exports a Pipeline whose first step is a DistilEmbedder and whose "
                f"last step is a classifier; got steps {[type(s).__name__ for _, s in steps]}."
            )
        rest = estimator[1:]
        head = rest.steps[0][1] if len(rest.steps) == 1 else rest
        check_is_fitted(rest.steps[-1][1])
        check_head(head)
        plan = embedding_plan(steps[0][1], **_CPU_FLOAT32)
        return _Parts(
            kind="pipeline",
            loaded=plan.loaded,
            spec=plan.spec,
            head=head,
            classes=np.asarray(estimator.classes_),
            reference=_classifier_reference(estimator),
            source=_source(steps[0][1], plan),
        )
    if isinstance(estimator, HeadClassifier):
        return _resolve_head_classifier(estimator)
    raise TypeError(
        "to_onnx exports a fitted DistilEmbedder, SetFitClassifier, HeadClassifier or "
        f"Pipeline([DistilEmbedder, ..., classifier]); got {type(estimator).__name__}."
    )


def _resolve_head_classifier(estimator) -> _Parts:
    """A HeadClassifier: the model's own classification head, as logits -> probabilities."""
    from sklearn.base import clone
    from sklearn.utils.validation import check_is_fitted

    from ..head_classifier import head_plan

    check_is_fitted(estimator, "temperature_")
    # The plan only needs the parameters: a CPU float32 copy of the model to export.
    plan = head_plan(clone(estimator).set_params(**_CPU_FLOAT32))
    head = TemperatureHead(
        tuple(int(i) for i in estimator.head_indices_), float(estimator.temperature_)
    )
    return _Parts(
        kind="head",
        loaded=plan.loaded,
        spec=plan.spec,
        head=head,
        classes=np.asarray(estimator.classes_),
        reference=_classifier_reference(estimator),
        source=_source(estimator, plan),
    )


def _classifier_reference(estimator):
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


def check_spec(loaded, spec) -> None:
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
