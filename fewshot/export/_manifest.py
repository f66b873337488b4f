"""The manifest of an exported file, stored as ONNX metadata.

:func:`build_manifest` gathers what :mod:`fewshot.runtime` needs to know about a file
(classes, inputs and outputs, tokenizer settings) and the agreement measured at export;
:func:`set_metadata` stores it (and, for ``inputs="token_ids"``, the tokenizer.json)
in the model's ``metadata_props``.
"""

from __future__ import annotations

import json

import numpy as np

from .._core.prompt import prompt_parts
from .._estimator.head_calibration import TemperatureHead
from ..runtime._classifier import CUSTOM_DOMAIN, FORMAT, FORMAT_VERSION, MANIFEST_KEY, TOKENIZER_KEY

__all__ = ["build_manifest", "provenance", "set_metadata"]


def build_manifest(parts, *, inputs, quantize, tokenizer_settings, class_type, checks) -> dict:
    """The manifest of the file (a JSON-serialisable dict).

    ``parts`` are the estimator's :class:`~fewshot.export._parts.ExportParts`;
    ``tokenizer_settings`` the WordPiece settings of a graph that tokenises (None for
    token-id input), ``class_type`` how the head stores its labels, ``checks`` the
    agreement measured at export.
    """
    from .._version import __version__

    settings = tokenizer_settings
    tokenizer = parts.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    manifest = {
        "format": FORMAT,
        # Version 2 added the prompt: a prompted file is refused by older runtimes,
        # which would skip it; files without one stay readable by them.
        "format_version": FORMAT_VERSION if parts.prompt is not None else 1,
        "fewshot_version": __version__,
        "kind": parts.kind,
        "inputs": inputs,
        "input_names": ["text"] if inputs == "text" else ["input_ids", "attention_mask"],
        "outputs": (["label", "probabilities"] if parts.classes is not None else []) + ["features"],
        "n_features": int(parts.n_features),
        "quantize": quantize,
        "max_length": int(parts.max_length),
        "prompt": parts.prompt,
        # The text before and after {text}, braces unescaped: what the runtime joins.
        "prompt_parts": list(prompt_parts(parts.prompt)) if parts.prompt else None,
        "pad_token_id": int(pad_id),
        "tokenizer": (
            {
                "in_graph": True,
                "type": "WordPiece",
                "op": f"{CUSTOM_DOMAIN}.BertTokenizer",
                "lowercase": bool(settings["do_lower_case"]),
            }
            if settings is not None
            else {"in_graph": False, "tokenizer_json": TOKENIZER_KEY}
        ),
        "source": parts.source,
        "checks": checks,
        "provenance": parts.provenance,
    }
    if parts.classes is not None:
        manifest["classes"] = parts.classes.tolist()
        manifest["class_type"] = class_type
        manifest["head"] = _describe(parts.head)
    return manifest


def provenance(estimator, loaded) -> dict:
    """What made the exported estimator, as a saved folder's manifest records it.

    Versions, creation time, base model, training data, seeds and every parameter
    (:mod:`fewshot._folder.provenance`), as plain JSON values.
    """
    from .._folder.provenance import created_at, package_versions, provenance_of

    record = {"created_at": created_at(), "versions": package_versions()}
    record.update(provenance_of(estimator, loaded))
    return json.loads(json.dumps(record, default=_plain))


def _describe(head) -> str:
    if isinstance(head, TemperatureHead):
        return f"HeadClassifier (the model's head, temperature {head.temperature:.6g})"
    if hasattr(head, "steps"):
        return " -> ".join(type(step).__name__ for _, step in head.steps)
    return type(head).__name__


def set_metadata(model, manifest: dict, tokenizer) -> None:
    """Store the manifest (and the tokenizer.json, when given) in the model's metadata."""
    entries = {MANIFEST_KEY: json.dumps(manifest, sort_keys=True, default=_plain)}
    if tokenizer is not None and getattr(tokenizer, "backend_tokenizer", None) is not None:
        entries[TOKENIZER_KEY] = tokenizer.backend_tokenizer.to_str()
    del model.metadata_props[:]
    for key, value in entries.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "fewshot"


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
