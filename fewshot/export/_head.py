"""The head graph of an exported file: ``features`` -> ``label``, ``probabilities``.

A ``LogisticRegression`` becomes plain ONNX ops in float64, a ``HeadClassifier``'s head
(:class:`~fewshot._estimator.head_calibration.TemperatureHead`) a temperature-scaled
softmax over its classes' logits, and any other scikit-learn head (or Pipeline of steps)
goes through ``skl2onnx``. :func:`head_nodes` picks the way; :func:`check_head` refuses a
head without class probabilities before any work is done.
"""

from __future__ import annotations

import numpy as np

from .._estimator.head_calibration import TemperatureHead
from ._file import opset_of

__all__ = ["SUPPORTED_HEADS", "check_head", "head_nodes"]

SUPPORTED_HEADS = (
    "LogisticRegression (binary or multiclass) as ONNX ops; any other scikit-learn "
    "classifier or Pipeline of scikit-learn steps that skl2onnx converts and that has "
    "predict_proba"
)
_HEAD_PREFIX = "fewshot_head_"


def _label_tensor(classes: np.ndarray):
    """The classes as an ONNX constant, and the manifest's name for their type."""
    from onnx import numpy_helper

    if classes.dtype.kind in "UO":
        values = np.asarray([str(c) for c in classes], dtype=object)
        kind = "str"
    elif classes.dtype.kind == "b":
        values, kind = classes.astype(np.int64), "bool"
    elif classes.dtype.kind in "iu":
        values, kind = classes.astype(np.int64), "int"
    elif classes.dtype.kind == "f":
        values, kind = classes.astype(np.float64), "float"
    else:
        raise TypeError(f"classes of dtype {classes.dtype} cannot be stored in ONNX.")
    return numpy_helper.from_array(values, _HEAD_PREFIX + "classes"), kind


def _linear_head(head, classes: np.ndarray):
    """LogisticRegression -> nodes and initializers: ``features`` -> ``label``, ``probabilities``.

    Computed in float64 like scikit-learn: binary ``sigmoid(x w + b)`` as the second
    column, multiclass ``softmax(x W^T + b)``.
    """
    from onnx import TensorProto, numpy_helper
    from onnx import helper as h

    p = _HEAD_PREFIX
    coef = np.asarray(head.coef_, dtype=np.float64)
    intercept = np.asarray(head.intercept_, dtype=np.float64).reshape(-1)
    labels, kind = _label_tensor(classes)
    nodes = [
        h.make_node("Cast", ["features"], [p + "x"], to=TensorProto.DOUBLE),
        h.make_node("MatMul", [p + "x", p + "coef"], [p + "xw"]),
        h.make_node("Add", [p + "xw", p + "intercept"], [p + "z"]),
    ]
    if len(classes) == 2 and coef.shape[0] == 1:
        nodes += [
            h.make_node("Sigmoid", [p + "z"], [p + "p1"]),
            h.make_node("Sub", [p + "one", p + "p1"], [p + "p0"]),
            h.make_node("Concat", [p + "p0", p + "p1"], ["probabilities"], axis=1),
        ]
    else:
        nodes.append(h.make_node("Softmax", [p + "z"], ["probabilities"], axis=-1))
    nodes += [
        h.make_node("ArgMax", ["probabilities"], [p + "index"], axis=1, keepdims=0),
        h.make_node("Gather", [p + "classes", p + "index"], ["label"], axis=0),
    ]
    initializers = [
        numpy_helper.from_array(np.ascontiguousarray(coef.T), p + "coef"),
        numpy_helper.from_array(intercept, p + "intercept"),
        labels,
    ]
    if len(classes) == 2 and coef.shape[0] == 1:
        initializers.append(numpy_helper.from_array(np.ones((1, 1), dtype=np.float64), p + "one"))
    return nodes, initializers, [], kind


def _skl2onnx_head(head, n_features: int, classes: np.ndarray, opset: int):
    """Any head skl2onnx converts -> nodes, initializers and extra opset imports."""
    from onnx import TensorProto, compose
    from onnx import helper as h

    from .._core.optional import require

    require("skl2onnx", extra="all", feature=f"exporting a {type(head).__name__} head")
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    final = head.steps[-1][1] if hasattr(head, "steps") else head
    try:
        converted = convert_sklearn(
            head,
            initial_types=[("features", FloatTensorType([None, n_features]))],
            options={id(final): {"zipmap": False}},
            target_opset={"": min(opset, 21), "ai.onnx.ml": 3},
        )
    except Exception as exc:  # skl2onnx raises many types for what it cannot convert
        raise ValueError(_unsupported_head(head, f"skl2onnx cannot convert it: {exc}")) from exc
    if converted.opset_import and opset_of(converted, "") != opset:
        from onnx import version_converter

        converted = version_converter.convert_version(converted, opset)
    outputs = [o.name for o in converted.graph.output]
    graph = compose.add_prefix_graph(converted.graph, _HEAD_PREFIX, rename_inputs=False)
    label_out, proba_out = (_HEAD_PREFIX + name for name in outputs[:2])
    p = _HEAD_PREFIX
    nodes = list(graph.node) + [
        h.make_node("Identity", [label_out], [p + "label_raw"]),
        h.make_node("Cast", [proba_out], ["probabilities"], to=TensorProto.DOUBLE),
    ]
    # skl2onnx labels are int64 or strings already; keep them, typed like the classes.
    _, kind = _label_tensor(classes)
    if kind == "bool":
        nodes.append(h.make_node("Cast", [p + "label_raw"], ["label"], to=TensorProto.INT64))
    else:
        nodes.append(h.make_node("Identity", [p + "label_raw"], ["label"]))
    extra = [o for o in converted.opset_import if o.domain not in ("", "ai.onnx")]
    return nodes, list(graph.initializer), extra, kind


def check_head(head) -> None:
    """Refuse a head without class probabilities before any work is done."""
    final = head.steps[-1][1] if hasattr(head, "steps") else head
    if not hasattr(final, "predict_proba"):
        raise ValueError(_unsupported_head(head, "it has no predict_proba"))


def _unsupported_head(head, why: str) -> str:
    return (
        f"cannot export the head {type(head).__name__} ({why}). Supported heads: {SUPPORTED_HEADS}."
    )


def _temperature_head(head: TemperatureHead, classes: np.ndarray):
    """HeadClassifier -> nodes: ``softmax(features[:, indices] / T)``, argmax, class label."""
    from onnx import TensorProto, numpy_helper
    from onnx import helper as h

    p = _HEAD_PREFIX
    labels, kind = _label_tensor(classes)
    nodes = [
        h.make_node("Cast", ["features"], [p + "logits"], to=TensorProto.DOUBLE),
        h.make_node("Gather", [p + "logits", p + "indices"], [p + "picked"], axis=1),
        h.make_node("Div", [p + "picked", p + "temperature"], [p + "z"]),
        h.make_node("Softmax", [p + "z"], ["probabilities"], axis=-1),
        h.make_node("ArgMax", ["probabilities"], [p + "index"], axis=1, keepdims=0),
        h.make_node("Gather", [p + "classes", p + "index"], ["label"], axis=0),
    ]
    initializers = [
        numpy_helper.from_array(np.asarray(head.indices, dtype=np.int64), p + "indices"),
        numpy_helper.from_array(np.asarray(head.temperature, dtype=np.float64), p + "temperature"),
        labels,
    ]
    return nodes, initializers, [], kind


def head_nodes(head, n_features: int, classes: np.ndarray, opset: int):
    """Nodes, initializers, extra opsets and class type of the head graph."""
    from sklearn.linear_model import LogisticRegression

    if isinstance(head, TemperatureHead):
        return _temperature_head(head, classes)
    if isinstance(head, LogisticRegression) and getattr(head, "multi_class", "auto") != "ovr":
        return _linear_head(head, classes)
    return _skl2onnx_head(head, n_features, classes, opset)
