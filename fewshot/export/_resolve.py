"""What :func:`fewshot.export.to_onnx` exports: the parts a fitted estimator names.

An estimator answers for itself (its ``_export_parts`` hook gives an
:class:`~fewshot.export._parts.ExportParts`); a scikit-learn ``Pipeline`` is the parts
of its first step (the features) with the steps after it as the head.
"""

from __future__ import annotations

import dataclasses

from ._head import check_head
from ._parts import ExportParts, classifier_reference

__all__ = ["resolve"]


def resolve(estimator) -> ExportParts:
    """The parts of a fitted estimator to export, or a TypeError naming what is supported."""
    ask = getattr(estimator, "_export_parts", None)
    if ask is not None:
        parts = ask()
        if parts.head is not None:
            check_head(parts.head)
        return parts
    steps = getattr(estimator, "steps", None)
    if steps and len(steps) >= 2 and hasattr(steps[0][1], "_export_parts"):
        return _pipeline_parts(estimator)
    raise TypeError(
        "to_onnx exports a fitted DistilEmbedder, SetFitClassifier, HeadClassifier or "
        "Pipeline([DistilEmbedder, ..., classifier]) (any fewshot estimator that can be "
        f"exported); got {type(estimator).__name__}"
        + (f" with steps {[type(s).__name__ for _, s in steps]}" if steps else "")
        + "."
    )


def _pipeline_parts(pipeline) -> ExportParts:
    """A Pipeline: its first step's features, the rest as the head."""
    from sklearn.utils.validation import check_is_fitted

    from .._folder.provenance import estimator_record, seed_record

    rest = pipeline[1:]
    head = rest.steps[0][1] if len(rest.steps) == 1 else rest
    check_is_fitted(rest.steps[-1][1])
    check_head(head)
    features = pipeline.steps[0][1]._export_parts()
    if features.classes is not None:  # a classifier as the first step: its embedding only
        features = dataclasses.replace(features, head=None, classes=None)
    return dataclasses.replace(
        features,
        kind="pipeline",
        head=head,
        classes=pipeline.classes_,
        reference=classifier_reference(pipeline),
        provenance={
            **features.provenance,
            "seeds": seed_record(pipeline),
            "estimator": estimator_record(pipeline),
        },
    )
