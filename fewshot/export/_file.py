"""Assembling an exported file: one ONNX model from its graphs, run and written.

:func:`assemble_model` joins ``[tokenizer ->] encoder -> [head]`` into one model,
:func:`onnx_session` runs an in-memory model with ONNX Runtime (custom ops registered
when used), :func:`opset_of` reads a model's opset and :func:`write_model` writes a
model atomically.
"""

from __future__ import annotations

import os
import tempfile

from ..runtime._classifier import CUSTOM_DOMAIN

__all__ = ["assemble_model", "onnx_session", "opset_of", "write_model"]


def assemble_model(
    encoder, *, inputs: str, tokenizer_parts, head_parts, n_features: int, n_classes
):
    """One model: [tokenizer ->] encoder -> [head]; returns a new ModelProto."""
    import onnx
    from onnx import TensorProto
    from onnx import helper as h

    model = onnx.ModelProto()
    model.CopyFrom(encoder)
    graph = model.graph
    if inputs == "text":
        nodes, initializers = tokenizer_parts
        old_nodes = list(graph.node)
        del graph.node[:]
        graph.node.extend(nodes + old_nodes)
        graph.initializer.extend(initializers)
        del graph.input[:]
        graph.input.append(h.make_tensor_value_info("text", TensorProto.STRING, ["batch"]))
        model.opset_import.append(h.make_opsetid(CUSTOM_DOMAIN, 1))
    features = [o for o in graph.output if o.name == "features"][0]
    features.type.tensor_type.shape.Clear()
    features.type.tensor_type.shape.dim.add().dim_param = "batch"
    features.type.tensor_type.shape.dim.add().dim_value = n_features
    if head_parts is not None:
        nodes, initializers, extra_opsets, kind = head_parts
        graph.node.extend(nodes)
        graph.initializer.extend(initializers)
        label_type = {"str": TensorProto.STRING, "float": TensorProto.DOUBLE}.get(
            kind, TensorProto.INT64
        )
        graph.output.extend(
            [
                h.make_tensor_value_info("label", label_type, ["batch"]),
                h.make_tensor_value_info("probabilities", TensorProto.DOUBLE, ["batch", n_classes]),
            ]
        )
        known = {entry.domain for entry in model.opset_import}
        for entry in extra_opsets:
            if entry.domain not in known:
                model.opset_import.append(h.make_opsetid(entry.domain, entry.version))
    return model


def onnx_session(model) -> object:
    """An ONNX Runtime session on an in-memory model (custom ops registered if used)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if any(entry.domain == CUSTOM_DOMAIN for entry in model.opset_import):
        from onnxruntime_extensions import get_library_path

        options.register_custom_ops_library(get_library_path())
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def opset_of(model, domain: str) -> int:
    """The version of ``domain`` a model imports (0 when it does not)."""
    for entry in model.opset_import:
        if entry.domain in ((domain, "ai.onnx") if domain == "" else (domain,)):
            return int(entry.version)
    return 0


def write_model(model, path: str) -> None:
    """Save ``model`` to ``path`` atomically (a temporary file, then a rename)."""
    import onnx

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".fewshot-export-", suffix=".onnx", dir=folder)
    os.close(handle)
    try:
        onnx.save_model(model, tmp)
        os.replace(tmp, path)  # readers never see a half-written file
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
