"""A static student in the one-file ONNX format: tokenizer, embedding bag, head.

:func:`write_static_encoder` writes the features graph every exported file is built
around, ``(input_ids, attention_mask) -> features``, here an embedding bag: a Gather of
the int8 rows and of their scales, a masked weighted mean (tokens of scale 0, the
special tokens, left out, as :func:`fewshot.distill._static.bag_features` does in
Python) and the L2 normalisation. :func:`student_parts` hands that graph, the
teacher's WordPiece tokenizer and the head to :func:`fewshot.export.to_onnx`, which
puts the tokenizer in front (onnxruntime-extensions' ``BertTokenizer``) and the head
behind (the same head graph as every other export), measures the file against the
Python student and writes it; :func:`export_student` is that call. The table is int8
already, so ``quantize="int8"`` gives the same file.
"""

from __future__ import annotations

import os
import shutil

import numpy as np

__all__ = ["OPSET", "export_student", "student_parts", "write_static_encoder"]

#: The ONNX opset of the embedding-bag graph.
OPSET = 18
_PREFIX = "fewshot_bag_"


def write_static_encoder(student, path) -> None:
    """Write ``(input_ids, attention_mask) -> features`` of a fitted student to ``path``.

    Inputs are int64 ``[batch, tokens]``, the output float32 ``[batch, n_dims]``: the
    interface of the transformer export's features graph, so the same tokenizer and
    head graphs attach to it.
    """
    import onnx
    from onnx import TensorProto, numpy_helper
    from onnx import helper as h
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(student, "embeddings_")
    p = _PREFIX
    n_dims = int(student.embeddings_.shape[1])
    nodes = [
        h.make_node("Gather", [p + "table", "input_ids"], [p + "rows_q"], axis=0),
        h.make_node("Cast", [p + "rows_q"], [p + "rows"], to=TensorProto.FLOAT),
        h.make_node("Gather", [p + "scales", "input_ids"], [p + "scale"], axis=0),
        # A scale of 0 marks a token the mean leaves out (the special tokens).
        h.make_node("Greater", [p + "scale", p + "zero"], [p + "kept_b"]),
        h.make_node("Cast", [p + "kept_b"], [p + "kept"], to=TensorProto.FLOAT),
        h.make_node("Cast", ["attention_mask"], [p + "mask"], to=TensorProto.FLOAT),
        h.make_node("Mul", [p + "mask", p + "kept"], [p + "counted"]),
        h.make_node("Mul", [p + "counted", p + "scale"], [p + "weight"]),
        h.make_node("Unsqueeze", [p + "weight", p + "axis1"], [p + "weight_row"]),
        h.make_node("MatMul", [p + "weight_row", p + "rows"], [p + "summed_row"]),
        h.make_node("Squeeze", [p + "summed_row", p + "axis1"], [p + "summed"]),
        h.make_node("ReduceSum", [p + "counted", p + "axis1"], [p + "count"], keepdims=1),
        h.make_node("Max", [p + "count", p + "one"], [p + "count1"]),
        h.make_node("Div", [p + "summed", p + "count1"], [p + "mean"]),
    ]
    if student.normalize:
        nodes += [
            h.make_node("ReduceL2", [p + "mean", p + "axis1"], [p + "norm"], keepdims=1),
            h.make_node("Max", [p + "norm", p + "eps"], [p + "norm1"]),
            h.make_node("Div", [p + "mean", p + "norm1"], ["features"]),
        ]
    else:
        nodes.append(h.make_node("Identity", [p + "mean"], ["features"]))
    initializers = [
        numpy_helper.from_array(np.ascontiguousarray(student.embeddings_), p + "table"),
        numpy_helper.from_array(student.scales_.astype(np.float32), p + "scales"),
        numpy_helper.from_array(np.asarray(0.0, dtype=np.float32), p + "zero"),
        numpy_helper.from_array(np.asarray(1.0, dtype=np.float32), p + "one"),
        numpy_helper.from_array(np.asarray(1e-12, dtype=np.float32), p + "eps"),
        numpy_helper.from_array(np.asarray([1], dtype=np.int64), p + "axis1"),
    ]
    graph = h.make_graph(
        nodes,
        "fewshot_static_student",
        [
            h.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            h.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [h.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", n_dims])],
        initializer=initializers,
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)])
    model.ir_version = 8  # what ONNX Runtime releases from 1.14 on read
    onnx.checker.check_model(model)
    onnx.save_model(model, os.fspath(path))


def _same_file(fp32_path, int8_path) -> None:
    """The int8 form of a student's graph: the table is int8 already."""
    shutil.copyfile(fp32_path, int8_path)


def hf_tokenizer(student):
    """The student's tokenizer as a transformers fast tokenizer (what the export reads)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    specials = {f"{name}_token": token for name, token in student.special_tokens_.items() if token}
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(student.tokenizer_.to_str()),
        model_max_length=int(student.max_length),
        **specials,
    )


def student_parts(student):
    """The :class:`~fewshot.export._parts.ExportParts` of a fitted student."""
    from sklearn.utils.validation import check_is_fitted

    from ..export._manifest import provenance
    from ..export._parts import ExportParts, classifier_reference

    check_is_fitted(student, "head_")
    return ExportParts(
        kind="static-student",
        tokenizer=hf_tokenizer(student),
        max_length=int(student.max_length),
        prompt=None,
        n_features=int(student.embeddings_.shape[1]),
        write_features=lambda path: write_static_encoder(student, path),
        token_ids=lambda texts: [ids.tolist() for ids in student._token_ids(list(texts))],
        head=student.head_,
        classes=np.asarray(student.classes_),
        reference=classifier_reference(student),
        source={
            "estimator": type(student).__name__,
            "teacher": (student.teacher_ or {}).get("estimator"),
            "n_dims": int(student.embeddings_.shape[1]),
            "normalize": bool(student.normalize),
            "embedding": "static, int8 with a scale per row",
            "prompt": None,
        },
        provenance=provenance(student, None),
        quantize=_same_file,
    )


def export_student(student, path, *, inputs: str = "text", check_texts=None, verbose=True):
    """Write a fitted student as one ONNX file for :class:`~fewshot.runtime.OnnxClassifier`.

    Parameters
    ----------
    student : StaticStudentClassifier
        Fitted.
    path : str or path-like
        The ``.onnx`` file to write (replaced atomically).
    inputs : {"text", "token_ids"}, default="text"
        ``"text"``: the graph tokenises (onnxruntime-extensions at run time).
    check_texts : sequence of str, optional
        Texts to compare the file with the Python student on (default: the export's
        80 demo texts and edge cases).
    verbose : bool, default=True
        Print the export's summary.

    Returns
    -------
    ExportReport
        Path, size, manifest and the measured agreement (``report.checks``).
    """
    from ..export import to_onnx

    return to_onnx(student, path, inputs=inputs, check_texts=check_texts, verbose=verbose)
