"""The tokenizer graph of an exported file: ``text`` -> ``input_ids``, ``attention_mask``.

:func:`wordpiece_settings` reads a BERT-style WordPiece ``tokenizer.json`` into the
attributes of onnxruntime-extensions' ``BertTokenizer`` custom op (or refuses the
tokenizer with a message naming ``inputs="token_ids"``); :func:`tokenizer_nodes` builds
the ONNX nodes that run it per text in a ``Loop``, truncate at ``max_length`` as
Hugging Face does, and pad.
"""

from __future__ import annotations

import json

import numpy as np

from ..runtime._classifier import CUSTOM_DOMAIN, TOKENIZER_KEY

__all__ = ["SUPPORTED_TOKENIZERS", "tokenizer_nodes", "wordpiece_settings"]

SUPPORTED_TOKENIZERS = (
    "BERT-style WordPiece (tokenizer.json with a WordPiece model, BertNormalizer, "
    "BertPreTokenizer and a [CLS] text [SEP] template: BERT, DistilBERT, MiniLM, MPNet)"
)
_TOKENIZER_PREFIX = "fewshot_tok_"


def wordpiece_settings(tokenizer) -> dict:
    """Attributes of the BertTokenizer custom op equal to ``tokenizer``, or a clear error."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(_unsupported_tokenizer(tokenizer, "it has no tokenizer.json"))
    spec = json.loads(backend.to_str())
    model = spec.get("model") or {}
    normalizer = spec.get("normalizer") or {}
    pre_tokenizer = spec.get("pre_tokenizer") or {}
    post = spec.get("post_processor") or {}
    found = (
        f"model {model.get('type')}, normalizer {normalizer.get('type')}, pre-tokenizer "
        f"{pre_tokenizer.get('type')}, post-processor {post.get('type')}"
    )
    if (
        model.get("type") != "WordPiece"
        or normalizer.get("type") != "BertNormalizer"
        or pre_tokenizer.get("type") != "BertPreTokenizer"
    ):
        raise ValueError(_unsupported_tokenizer(tokenizer, found))
    cls_sep = _template_specials(post)
    if cls_sep is None:
        raise ValueError(
            _unsupported_tokenizer(tokenizer, found + " (not a [CLS] text [SEP] template)")
        )
    vocab = model["vocab"]
    by_id = sorted(vocab.items(), key=lambda item: item[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ValueError(_unsupported_tokenizer(tokenizer, "its WordPiece ids are not 0..n-1"))
    cls, sep = cls_sep
    unk = model.get("unk_token", "[UNK]")
    pad = tokenizer.pad_token or "[PAD]"
    mask = tokenizer.mask_token or "[MASK]"
    for token in (cls, sep, unk):
        if token not in vocab:
            raise ValueError(
                _unsupported_tokenizer(tokenizer, f"{token!r} is not in its vocabulary")
            )
    lowercase = bool(normalizer.get("lowercase", True))
    strip = normalizer.get("strip_accents")
    return {
        "vocab_file": "\n".join(token for token, _ in by_id),
        "do_lower_case": int(lowercase),
        # BertNormalizer strips accents whenever it lowercases, unless told otherwise.
        "strip_accents": int(lowercase if strip is None else bool(strip)),
        "tokenize_chinese_chars": int(bool(normalizer.get("handle_chinese_chars", True))),
        "remove_control_chars": int(bool(normalizer.get("clean_text", True))),
        "unk_token": unk,
        "cls_token": cls,
        "sep_token": sep,
        "pad_token": pad,
        "mask_token": mask,
        "suffix_indicator": model.get("continuing_subword_prefix", "##"),
        "max_input_chars_per_word": int(model.get("max_input_chars_per_word", 100)),
    }


def _template_specials(post: dict):
    """``(cls, sep)`` when the single-text template is ``cls $A sep``, else None."""
    kind = post.get("type")
    if kind in ("BertProcessing", "RobertaProcessing"):
        return post["cls"][0], post["sep"][0]
    if kind == "TemplateProcessing":
        single = post.get("single") or []
        if (
            len(single) == 3
            and "SpecialToken" in single[0]
            and "Sequence" in single[1]
            and "SpecialToken" in single[2]
        ):
            return single[0]["SpecialToken"]["id"], single[2]["SpecialToken"]["id"]
    return None


def _unsupported_tokenizer(tokenizer, why: str) -> str:
    return (
        f"text input needs a tokenizer the graph can hold; {type(tokenizer).__name__} is not "
        f"one ({why}). Supported: {SUPPORTED_TOKENIZERS}. Export with inputs='token_ids' "
        f"instead: the file then takes token ids and stores the tokenizer.json under "
        f"{TOKENIZER_KEY!r} for the Hugging Face tokenizers library to tokenise with."
    )


def tokenizer_nodes(settings: dict, max_length: int, pad_id: int):
    """Nodes and initializers: ``text`` [N] -> ``input_ids``, ``attention_mask`` [N, T].

    The custom op tokenises one text per call (given two it makes a sentence pair), so a
    Loop runs it per text and concatenates the ids; lengths are kept alongside. Then each
    text keeps its first ``min(len, max_length) - 1`` tokens plus its last one ([SEP]),
    which is Hugging Face's right-truncation of a single text, and rows are padded.
    """
    from onnx import TensorProto, numpy_helper
    from onnx import helper as h

    p = _TOKENIZER_PREFIX

    def const(name, value):
        return numpy_helper.from_array(np.asarray(value, dtype=np.int64), p + name)

    body = _per_text_body(settings)
    n = lambda name: p + name  # noqa: E731 - short local names keep the graph readable
    nodes = [
        h.make_node("Shape", ["text"], [n("n_texts1")]),
        h.make_node("Squeeze", [n("n_texts1")], [n("n_texts")]),
        h.make_node(
            "Loop",
            [n("n_texts"), "", n("empty"), n("empty")],
            [n("flat"), n("lens")],
            body=body,
            name=n("Loop"),
        ),
        h.make_node("Min", [n("lens"), n("max_length")], [n("kept")]),
        h.make_node("CumSum", [n("lens"), n("zero")], [n("starts")], exclusive=1),
        h.make_node("ReduceMax", [n("kept")], [n("width")], keepdims=0),
        h.make_node("Range", [n("zero"), n("width"), n("one")], [n("positions")]),
        h.make_node("Unsqueeze", [n("positions"), n("axes0")], [n("col")]),
        h.make_node("Unsqueeze", [n("kept"), n("axes1")], [n("kept_col")]),
        h.make_node("Unsqueeze", [n("starts"), n("axes1")], [n("start_col")]),
        h.make_node("Unsqueeze", [n("lens"), n("axes1")], [n("len_col")]),
        h.make_node("Less", [n("col"), n("kept_col")], [n("real")]),
        h.make_node("Sub", [n("kept_col"), n("one")], [n("last_col")]),
        h.make_node("Equal", [n("col"), n("last_col")], [n("is_last")]),
        h.make_node("Add", [n("start_col"), n("col")], [n("at")]),
        h.make_node("Add", [n("start_col"), n("len_col")], [n("end")]),
        h.make_node("Sub", [n("end"), n("one")], [n("at_last")]),
        h.make_node("Where", [n("is_last"), n("at_last"), n("at")], [n("index1")]),
        h.make_node("Where", [n("real"), n("index1"), n("zero")], [n("index")]),
        h.make_node("Gather", [n("flat"), n("index")], [n("gathered")]),
        h.make_node("Where", [n("real"), n("gathered"), n("pad")], ["input_ids"]),
        h.make_node("Cast", [n("real")], ["attention_mask"], to=TensorProto.INT64),
    ]
    initializers = [
        numpy_helper.from_array(np.zeros(0, dtype=np.int64), n("empty")),
        const("max_length", max_length),
        const("zero", 0),
        const("one", 1),
        const("axes0", [0]),
        const("axes1", [1]),
        const("pad", pad_id),
    ]
    return nodes, initializers


def _per_text_body(settings: dict):
    """The Loop body: tokenise text ``i``, append its ids, and record its length."""
    from onnx import TensorProto, numpy_helper
    from onnx import helper as h

    p = _TOKENIZER_PREFIX

    def const(name, value):
        return numpy_helper.from_array(np.asarray(value, dtype=np.int64), p + name)

    return h.make_graph(
        [
            h.make_node("Unsqueeze", [p + "i", p + "axes0"], [p + "i1"]),
            h.make_node("Add", [p + "i1", p + "one1"], [p + "i2"]),
            h.make_node("Slice", ["text", p + "i1", p + "i2"], [p + "one_text"]),
            h.make_node(
                "BertTokenizer",
                [p + "one_text"],
                [p + "ids", p + "type_ids", p + "mask", p + "offsets"],
                domain=CUSTOM_DOMAIN,
                name=p + "BertTokenizer",
                **settings,
            ),
            h.make_node("Shape", [p + "ids"], [p + "n"]),
            h.make_node("Concat", [p + "ids_in", p + "ids"], [p + "ids_out"], axis=0),
            h.make_node("Concat", [p + "lens_in", p + "n"], [p + "lens_out"], axis=0),
            h.make_node("Identity", [p + "cond"], [p + "cond_out"]),
        ],
        p + "per_text",
        [
            h.make_tensor_value_info(p + "i", TensorProto.INT64, []),
            h.make_tensor_value_info(p + "cond", TensorProto.BOOL, []),
            h.make_tensor_value_info(p + "ids_in", TensorProto.INT64, [None]),
            h.make_tensor_value_info(p + "lens_in", TensorProto.INT64, [None]),
        ],
        [
            h.make_tensor_value_info(p + "cond_out", TensorProto.BOOL, []),
            h.make_tensor_value_info(p + "ids_out", TensorProto.INT64, [None]),
            h.make_tensor_value_info(p + "lens_out", TensorProto.INT64, [None]),
        ],
        initializer=[const("axes0", [0]), const("one1", [1])],
    )
