"""Read an ONNX file as data before ONNX Runtime sees it: its metadata and what it may run.

An exported file is loaded by people who did not make it (``fewshot serve``, a
deployment). The graph language itself runs no code, but two things in a file reach
outside it: a custom-op domain (the extensions library holds ``PyOp``, which calls
Python callbacks, and other libraries hold more) and external data (tensors read from
other files). So the file's protobuf is read here, with the standard library only, and
refused unless

- every node, in the main graph, in subgraphs (``Loop`` / ``If`` bodies) and in local
  functions, is a standard ONNX / ONNX-ML / ONNX Runtime op, or one of the
  :data:`CONTRIB_OPS` that fewshot's export writes (the in-graph tokenizer);
- no tensor is stored outside the file.

The bytes checked are the bytes ONNX Runtime gets (no second read of the path).
"""

from __future__ import annotations

__all__ = ["CONTRIB_OPS", "OnnxAudit", "UntrustedGraphError", "audit_onnx"]

# Standard ONNX, ONNX-ML, and ONNX Runtime's own fused/quantised kernels.
_STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
_CONTRIB_DOMAIN = "ai.onnx.contrib"
#: Ops of the onnxruntime-extensions domain a fewshot file may hold: the tokenizers.
CONTRIB_OPS = frozenset({"BertTokenizer", "WordpieceTokenizer", "BasicTokenizer"})

# Field numbers of onnx.proto that lead to nodes, tensors and metadata.
_MODEL_GRAPH, _MODEL_METADATA, _MODEL_FUNCTIONS = 7, 14, 25
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE = 1, 5, 15
_NODE_OP, _NODE_ATTRIBUTE, _NODE_DOMAIN = 4, 5, 7
_ATTR_TENSOR, _ATTR_GRAPH, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE = 5, 6, 10, 11, 22
_FUNCTION_NODE = 7
_TENSOR_LOCATION, _EXTERNAL = 14, 1
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2


class UntrustedGraphError(ValueError):
    """An ONNX file holds an op or a data reference fewshot does not run."""


class OnnxAudit:
    """What an ONNX file holds, read as data: its metadata and its refused parts."""

    def __init__(self, metadata: dict, refused: list):
        self.metadata = metadata
        self.refused = tuple(dict.fromkeys(refused))


def audit_onnx(data: bytes, where: str = "the file") -> OnnxAudit:
    """Read ``data`` (an ONNX ModelProto) and say what it holds that would be refused.

    Parameters
    ----------
    data : bytes
    where : str
        How to name the file in an error about unreadable bytes.

    Returns
    -------
    OnnxAudit
        ``metadata`` (ONNX ``metadata_props`` as a dict) and ``refused`` (one line for
        each op of another domain and each external tensor; empty if the file may run).
    """
    view = memoryview(data)
    metadata, refused = {}, []
    try:
        for field, value in _fields(view):
            if field == _MODEL_GRAPH:
                _graph(value, refused)
            elif field == _MODEL_METADATA:
                entry = dict(_fields(value))
                metadata[_text(entry.get(1, b""))] = _text(entry.get(2, b""))
            elif field == _MODEL_FUNCTIONS:
                for sub, node in _fields(value):
                    if sub == _FUNCTION_NODE:
                        _node(node, refused)
    except (IndexError, ValueError) as exc:
        raise ValueError(f"{where} is not a readable ONNX file ({exc}).") from exc
    return OnnxAudit(metadata, refused)


def _graph(view, refused) -> None:
    for field, value in _fields(view):
        if field == _GRAPH_NODE:
            _node(value, refused)
        elif field == _GRAPH_INITIALIZER:
            _tensor(value, refused)
        elif field == _GRAPH_SPARSE:
            _sparse(value, refused)


def _node(view, refused) -> None:
    op, domain, attributes = "", "", []
    for field, value in _fields(view):
        if field == _NODE_OP:
            op = _text(value)
        elif field == _NODE_DOMAIN:
            domain = _text(value)
        elif field == _NODE_ATTRIBUTE:
            attributes.append(value)
    if domain not in _STANDARD_DOMAINS and not (domain == _CONTRIB_DOMAIN and op in CONTRIB_OPS):
        refused.append(f"op {domain}::{op}")
    for attribute in attributes:
        for field, value in _fields(attribute):
            if field in (_ATTR_GRAPH, _ATTR_GRAPHS):
                _graph(value, refused)
            elif field in (_ATTR_TENSOR, _ATTR_TENSORS):
                _tensor(value, refused)
            elif field == _ATTR_SPARSE:
                _sparse(value, refused)


def _tensor(view, refused) -> None:
    for field, value in _fields(view):
        if field == _TENSOR_LOCATION and value == _EXTERNAL:
            refused.append("a tensor stored outside the file (external data)")


def _sparse(view, refused) -> None:
    for field, value in _fields(view):
        if field in (_SPARSE_VALUES, _SPARSE_INDICES):
            _tensor(value, refused)


def _text(value) -> str:
    if not isinstance(value, (memoryview, bytes)):
        raise ValueError("a text field holds a number")
    return bytes(value).decode("utf-8", "replace")


def _fields(view):
    """``(field number, value)`` of one protobuf message: ints, or memoryviews of bytes."""
    if not isinstance(view, memoryview):
        raise ValueError("a message field holds a number")
    position, end = 0, len(view)
    while position < end:
        key, position = _varint(view, position)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(view, position)
        elif wire == 2:
            length, position = _varint(view, position)
            if position + length > end:
                raise ValueError("a field runs past the end of its message")
            value, position = view[position : position + length], position + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, position = view[position : position + size], position + size
        else:
            raise ValueError(f"wire type {wire} is not used by ONNX")
        yield field, value


def _varint(view, position):
    result = shift = 0
    while True:
        byte = view[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("a varint is too long")
