"""The encoder graph of an exported file: token ids and mask -> ``features``.

:func:`export_encoder` exports the encoder, cut at the deepest layer used, with the
estimator's own pooling and normalisation traced into it (``torch.onnx.export`` with
``dynamo=True``); :func:`int8_embeddings` stores the word-embedding table of a
quantised encoder as int8 with one scale per row.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EMBEDDING_ROWS", "export_encoder", "int8_embeddings"]

# With quantize="int8", embedding tables with at least this many rows (the word
# embeddings) are stored as int8 too.
EMBEDDING_ROWS = 1024


def _feature_module(loaded, spec):
    import torch

    from .._core.encoding import pooled_features
    from .._core.forward import capture_layers

    class Features(torch.nn.Module):
        """Token ids and mask -> the estimator's features, as the Python path computes them."""

        def __init__(self):
            super().__init__()
            self.network = loaded.model if spec.head else loaded.body
            self.blocks = loaded.blocks
            self.n_body = spec.n_body_features(loaded.hidden_size)

        def forward(self, input_ids, attention_mask):
            captured, output = capture_layers(
                self.network,
                self.blocks,
                input_ids,
                attention_mask,
                spec.layers,
                stop_early=False,
            )
            logits = output.logits if spec.head else None
            features = pooled_features(
                loaded, input_ids, attention_mask, spec, outputs=(captured, logits)
            )
            if spec.normalize and self.n_body:
                body = features[:, : self.n_body]
                norm = torch.linalg.vector_norm(body, dim=1, keepdim=True).clamp(min=1e-12)
                features = torch.cat([body / norm, features[:, self.n_body :]], dim=1)
            return features

    return Features().eval()


def export_encoder(loaded, spec, path: str) -> None:
    """Write the float32 encoder graph (token ids and mask -> ``features``) to ``path``."""
    from .._core.onnx_backend import export_encoder_module

    module = _feature_module(loaded, spec)
    depth = loaded.n_layers if spec.head else max(1, max(spec.layers))
    export_encoder_module(loaded, module, path, output_names=["features"], depth=depth)


def int8_embeddings(model) -> int:
    """Store large float Gather tables (the word embeddings) as int8, one scale per row.

    ``Gather(table, ids)`` becomes ``Gather(table_int8, ids) * Gather(scales, ids)``;
    returns how many tables were rewritten. The int8 matrix multiplies decide most of
    the int8 file's differences, not this table (see docs/deploy.md, "int8").
    """
    from onnx import TensorProto, numpy_helper
    from onnx import helper as h

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    users: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    compact: dict[str, str] = {}  # table -> its compact initializer
    new_nodes = []
    for node in graph.node:
        table = initializers.get(node.input[0]) if node.op_type == "Gather" and node.input else None
        if (
            table is None
            or table.data_type != TensorProto.FLOAT
            or len(table.dims) != 2
            or table.dims[0] < EMBEDDING_ROWS
            or any(user.op_type != "Gather" for user in users[table.name])
            or any(
                dict((a.name, a.i) for a in user.attribute).get("axis", 0) != 0
                for user in users[table.name]
            )
        ):
            new_nodes.append(node)
            continue
        name, ids, out = table.name, node.input[1], node.output[0]
        if name not in compact:
            values = numpy_helper.to_array(table).astype(np.float32)
            compact[name] = f"{name}_int8"
            scales = np.maximum(np.abs(values).max(axis=1, keepdims=True), 1e-12) / 127.0
            quantized = np.clip(np.rint(values / scales), -127, 127).astype(np.int8)
            graph.initializer.append(numpy_helper.from_array(quantized, compact[name]))
            graph.initializer.append(
                numpy_helper.from_array(scales.astype(np.float32), f"{name}_scale")
            )
        new_nodes += [
            h.make_node("Gather", [compact[name], ids], [out + "_q"], axis=0),
            h.make_node("Cast", [out + "_q"], [out + "_f"], to=TensorProto.FLOAT),
            h.make_node("Gather", [f"{name}_scale", ids], [out + "_s"], axis=0),
            h.make_node("Mul", [out + "_f", out + "_s"], [out]),
        ]
    if compact:
        del graph.node[:]
        graph.node.extend(new_nodes)
        kept = [init for init in graph.initializer if init.name not in compact]
        del graph.initializer[:]
        graph.initializer.extend(kept)
    return len(compact)
