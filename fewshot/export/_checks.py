"""The checks of an export: how closely the file matches the Python estimator.

:func:`compare` runs a file on the check texts and measures the largest probability
(or feature) difference and the label agreement; :func:`tokenizer_agreement` measures
how often the in-graph tokenizer gives the Hugging Face tokenizer's ids;
:func:`default_check_texts` supplies the texts.
"""

from __future__ import annotations

import numpy as np

from ..runtime._classifier import CUSTOM_DOMAIN
from ._file import onnx_session

__all__ = ["compare", "default_check_texts", "tokenizer_agreement"]


def default_check_texts() -> list[str]:
    """The 80 demo texts of :func:`fewshot.data.load_customer_feedback` and a few edge cases."""
    from ..data._datasets import load_customer_feedback

    texts, _ = load_customer_feedback(return_X_y=True)
    return list(texts) + [
        "",
        "ok",
        "The courier left my parcel in the rain, AGAIN!!! 3rd time this month...",
        "Ünïcödé text — naïve café ☕",
    ]


def _run_file(session, texts, ids, inputs: str, outputs, pad: int, batch_size: int = 32):
    """Run a session over texts (or their token ids) in batches; rows in input order."""
    results = [[] for _ in outputs]
    for start in range(0, len(texts), batch_size):
        if inputs == "text":
            feeds = {"text": np.asarray(texts[start : start + batch_size], dtype=object)}
        else:
            batch = ids[start : start + batch_size]
            width = max(len(seq) for seq in batch)
            input_ids = np.full((len(batch), width), pad, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, seq in enumerate(batch):
                input_ids[row, : len(seq)] = seq
                mask[row, : len(seq)] = 1
            feeds = {"input_ids": input_ids, "attention_mask": mask}
        for k, value in enumerate(session.run(outputs, feeds)):
            results[k].append(value)
    return [np.concatenate(chunks) for chunks in results]


def tokenizer_agreement(tokenizer_parts, texts, ids, opset: int) -> float:
    """Share of ``texts`` whose in-graph token ids equal the Hugging Face tokenizer's."""
    import onnx
    from onnx import TensorProto
    from onnx import helper as h

    nodes, initializers = tokenizer_parts
    graph = h.make_graph(
        nodes,
        "tokenizer",
        [h.make_tensor_value_info("text", TensorProto.STRING, [None])],
        [
            h.make_tensor_value_info("input_ids", TensorProto.INT64, [None, None]),
            h.make_tensor_value_info("attention_mask", TensorProto.INT64, [None, None]),
        ],
        initializer=initializers,
    )
    model = h.make_model(
        graph, opset_imports=[h.make_opsetid("", opset), h.make_opsetid(CUSTOM_DOMAIN, 1)]
    )
    onnx.checker.check_model(model)
    session = onnx_session(model)
    same = 0
    for start in range(0, len(texts), 32):
        got, mask = session.run(None, {"text": np.asarray(texts[start : start + 32], dtype=object)})
        for row, expected in enumerate(ids[start : start + 32]):
            same += got[row][mask[row] == 1].tolist() == list(expected)
    return same / max(len(texts), 1)


def compare(session, parts, texts, ids, inputs, expected, pad: int) -> dict:
    """Max difference (and label agreement) between a file and the Python estimator."""
    if parts.classes is None:
        (features,) = _run_file(session, texts, ids, inputs, ["features"], pad)
        reference = expected
        diff = float(np.abs(features - reference).max()) if len(texts) else 0.0
        cosine = (features * reference).sum(1) / np.maximum(
            np.linalg.norm(features, axis=1) * np.linalg.norm(reference, axis=1), 1e-12
        )
        return {"max_abs_diff": diff, "min_cosine": float(cosine.min()) if len(texts) else 1.0}
    labels, proba = _run_file(session, texts, ids, inputs, ["label", "probabilities"], pad)
    ref_labels, ref_proba = expected
    if parts.classes.dtype.kind == "b":
        labels = labels.astype(bool)
    agree = np.asarray([a == b for a, b in zip(labels.tolist(), np.asarray(ref_labels).tolist())])
    return {
        "max_abs_diff": float(np.abs(proba - ref_proba).max()) if len(texts) else 0.0,
        "label_agreement": float(agree.mean()) if len(texts) else 1.0,
    }
