"""The model-folder format's parts: manifest, encoder weights, head, and the trust rule.

Knows no estimator: :mod:`fewshot.model_folder` (which writes and reads whole folders)
and each estimator's own ``save``/``load`` use these pieces, so there is one manifest,
one way to store weights and a head, and one trust rule. See :mod:`fewshot.model_folder`
for the layout.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .._core.prompt import prompt_parts

__all__ = [
    "CARD",
    "ENCODER_FOLDER",
    "FORMAT",
    "FORMAT_VERSION",
    "HEAD_FILE",
    "MANIFEST",
    "check_metrics",
    "check_remote_code",
    "dump_head",
    "encoder_from_bytes",
    "encoder_to_bytes",
    "load_head",
    "new_manifest",
    "read_manifest",
    "write_encoder",
    "write_json",
    "write_manifest",
]

MANIFEST = "fewshot.json"
CARD = "README.md"
FORMAT = "fewshot-model"
FORMAT_VERSION = 2
HEAD_FILE = "head.skops"
ENCODER_FOLDER = "encoder"
_LEGACY_SETFIT = "fewshot_setfit.json"
_LEGACY_CLI = "fewshot-model.json"


def new_manifest(
    kind: str, metadata=None, *, estimator=None, loaded=None, metrics=None, **fields
) -> dict:
    """The manifest every kind of folder starts from, with its provenance.

    Parameters
    ----------
    kind : str
        The folder's kind ("setfit", "pipeline", "head", ...).
    metadata : dict, optional
        The caller's JSON-serialisable notes. ``metadata["datasets"]`` (a name or list
        of names) also goes into the model card's ``datasets``.
    estimator : estimator, optional
        The fitted estimator saved: its base model, training data, seeds and every
        parameter are recorded (:func:`fewshot._folder.provenance.provenance_of`).
    loaded : LoadedModel, optional
        The pretrained model, for the base record of an estimator fitted without one.
    metrics : dict, optional
        ``{name: number}`` from an evaluation, recorded as given.
    **fields
        Kind-specific entries (``params``, ``classes``, ``fitted``, ...); a
        ``base_model`` given here replaces the estimator's.

    Returns
    -------
    dict
        Always holds ``format``, ``format_version``, ``fewshot_version``, ``kind``,
        ``created_at`` (UTC), ``versions`` and ``metadata``, and ``metrics``,
        ``base_model``, ``training_data``, ``seeds`` and ``estimator`` (None when not
        known).
    """
    from .provenance import created_at, package_versions, provenance_of

    versions = package_versions()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fewshot_version": versions["fewshot"],
        "kind": kind,
        "created_at": created_at(),
        "versions": versions,
        "metadata": dict(metadata or {}),
        "metrics": check_metrics(metrics),
        "base_model": None,
        "training_data": None,
        "seeds": None,
        "estimator": None,
    }
    if estimator is not None:
        manifest.update(provenance_of(estimator, loaded))
    manifest.update(fields)
    # Exactly what json will write and read back (tuples as lists, numpy as Python).
    return json.loads(json.dumps(manifest, default=_json_default))


def check_metrics(metrics) -> dict | None:
    """``metrics`` as a plain ``{str: float}`` dict, or a clear error."""
    if metrics is None:
        return None
    if not isinstance(metrics, dict):
        raise TypeError(
            f"metrics must be a dict such as {{'accuracy': 0.91}}, got {type(metrics).__name__}."
        )
    checked = {}
    for name, value in metrics.items():
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise TypeError(
                f"metrics[{name!r}] is {type(value).__name__}; metrics hold numbers "
                "({'accuracy': 0.91, 'macro_f1': 0.88})."
            )
        checked[str(name)] = float(value)
    return checked


def write_manifest(folder: Path, manifest: dict) -> None:
    """Write the manifest (``fewshot.json``) and the model card (``README.md``) made from it."""
    from .model_card import model_card

    folder = Path(folder)
    write_json(folder / MANIFEST, manifest)
    (folder / CARD).write_text(model_card(manifest, folder), encoding="utf-8")


def write_encoder(
    loaded,
    folder: Path,
    *,
    pooling: str | None = None,
    max_length=None,
    prompt=None,
    normalize: bool | None = None,
) -> None:
    """Save a loaded encoder as a Hugging Face folder (safetensors + tokenizer).

    With ``pooling``, also the sentence-transformers module files (and a ``Normalize``
    module with ``normalize``), so ``SentenceTransformer(folder)`` embeds as fewshot
    does; a ``prompt`` that is a prefix becomes the folder's default prompt there
    (sentence-transformers has no text after the input, so a template with some is
    only in fewshot's manifest).
    """
    from .._core.loading import quiet_transformers

    folder = Path(folder)
    with quiet_transformers():
        loaded.model.save_pretrained(folder, safe_serialization=True)
    loaded.tokenizer.save_pretrained(folder)
    if pooling is None:
        return
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    if normalize:
        modules.append(
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
    write_json(folder / "modules.json", modules)
    write_json(
        folder / "sentence_bert_config.json", {"max_seq_length": max_length, "do_lower_case": False}
    )
    before, after = prompt_parts(prompt) if prompt else ("", "")
    if before and not after:
        write_json(
            folder / "config_sentence_transformers.json",
            {"prompts": {"fewshot": before}, "default_prompt_name": "fewshot"},
        )
    (folder / "1_Pooling").mkdir(exist_ok=True)
    write_json(
        folder / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": loaded.hidden_size,
            "pooling_mode_cls_token": pooling == "cls",
            "pooling_mode_mean_tokens": pooling == "mean",
            "pooling_mode_max_tokens": pooling == "max",
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    )


def encoder_to_bytes(loaded) -> dict[str, bytes]:
    """An encoder's saved files as ``{relative path: bytes}`` (how a pickle carries weights)."""
    with tempfile.TemporaryDirectory() as tmp:
        write_encoder(loaded, Path(tmp))
        return {
            str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()
        }


def encoder_from_bytes(files: dict, device="auto"):
    """The encoder :func:`encoder_to_bytes` wrote, loaded again (safetensors only)."""
    from .._core.loading import load_saved_body

    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            path = Path(tmp) / name
            if ".." in Path(name).parts or Path(name).is_absolute():
                raise ValueError(f"refusing to write {name!r} outside the temporary folder.")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return load_saved_body(tmp, device)


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, default=_json_default) + "\n", encoding="utf-8")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.random.RandomState):
        return None
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read_manifest(folder, *, what: str = "fewshot model") -> dict:
    """The manifest of a saved folder (a fewshot 0.1 SetFit marker is converted)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {str(folder)!r} does not exist.")
    if (folder / MANIFEST).is_file():
        manifest = _read_json(folder / MANIFEST)
    elif (folder / _LEGACY_SETFIT).is_file():
        manifest = _from_legacy_setfit(_read_json(folder / _LEGACY_SETFIT))
    elif (folder / _LEGACY_CLI).is_file():
        raise ValueError(
            f"{str(folder)!r} was written by fewshot 0.1's `fewshot train`, whose "
            "pipeline.skops could be rewritten to run code when loaded; it is not loaded. "
            "Train it again with this version (`fewshot train ...`)."
        )
    else:
        raise ValueError(
            f"{str(folder)!r} is not a {what} folder saved by fewshot: it has no {MANIFEST}. "
            "Save one with save_model(estimator, folder), SetFitClassifier.save(folder) or "
            "`fewshot train`."
        )
    if manifest.get("format") != FORMAT:
        raise ValueError(
            f"{str(folder)!r} holds format {manifest.get('format')!r}, not a fewshot model "
            f"folder ({FORMAT!r})."
        )
    if _format_version(manifest) > FORMAT_VERSION:
        from .._version import __version__

        raise ValueError(
            f"{str(folder)!r} was made by fewshot {manifest.get('fewshot_version')} with "
            f"format version {manifest.get('format_version')}; this fewshot ({__version__}) "
            f"reads format versions up to {FORMAT_VERSION}. Upgrade fewshot to load it."
        )
    return manifest


def _format_version(manifest: dict) -> int:
    try:
        return int(manifest.get("format_version", 0))
    except (TypeError, ValueError):
        raise ValueError(
            f"the manifest's format_version {manifest.get('format_version')!r} is not a number."
        ) from None


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{str(path)!r} is not readable JSON ({exc}).") from exc


def _from_legacy_setfit(marker: dict) -> dict:
    return {
        "format": FORMAT,
        "format_version": 1,
        "fewshot_version": marker.get("fewshot_version"),
        "kind": "setfit",
        "params": marker["params"],
        "default_head": marker.get("default_head", True),
        "fitted": {
            key: marker[key]
            for key in ("layer", "max_length", "multilabel", "n_pairs", "train_loss")
        },
        "classes": marker["classes"],
        "metadata": {},
    }


def dump_head(head, file: Path) -> None:
    """Write a fitted head with skops, byte for byte the same for the same head.

    skops names each array file and node by ``id()`` of the object (a memory address)
    and stamps each zip member with the current time, so two dumps of equal heads
    differ. Here the ids are renumbered in the order the schema holds them (the same
    bijection for ``__id__`` and file names, so shared objects stay shared) and the
    members are written in that order with a fixed time: a fit repeated with the same
    data and seed gives the same file, which is what makes a folder reproducible.
    """
    import skops.io

    source = zipfile.ZipFile(io.BytesIO(skops.io.dumps(head)))
    schema = json.loads(source.read("schema.json"))
    numbers: dict[int, int] = {}

    def renumber(value: int) -> int:
        return numbers.setdefault(int(value), len(numbers))

    def rename(name: str) -> str:
        match = re.fullmatch(r"(\d+)(\.\w+)", name)
        return f"{renumber(match.group(1))}{match.group(2)}" if match else name

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    node[key] = renumber(value)
                elif key == "file" and isinstance(value, str):
                    node[key] = rename(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    members = {
        rename(name): source.read(name) for name in source.namelist() if name != "schema.json"
    }
    members["schema.json"] = json.dumps(schema, indent=2).encode("utf-8")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as target:
        for name in ["schema.json", *sorted(n for n in members if n != "schema.json")]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o600 << 16
            target.writestr(info, members[name])
    Path(file).write_bytes(buffer.getvalue())
    _warn_if_refused(buffer.getvalue(), type(head).__name__)


def _warn_if_refused(data: bytes, name: str) -> None:
    """Say at save time when the folder's head will need ``trusted=`` to load."""
    import warnings

    from .trust import audit_head

    refused = audit_head(data).refused
    if refused:
        warnings.warn(
            f"The head ({name}) holds types outside fewshot's allow-list: "
            f"{', '.join(refused)}. The folder is written, but loading it will refuse the "
            "head unless the caller passes trusted=[those types] (--trust-type).",
            UserWarning,
            stacklevel=3,
        )


def load_head(folder: Path, trusted=None):
    """The fitted head of a folder, if every type it names is on the allow-list.

    ``trusted`` (the caller's, at this call) adds ``module.Class`` names; see
    :mod:`fewshot._folder.trust`. Nothing from a refused file is imported or run.
    """
    from .trust import load_trusted_head

    file = Path(folder) / HEAD_FILE
    if not file.is_file():
        raise ValueError(f"{str(folder)!r} has no {HEAD_FILE}; the folder is incomplete.")
    return load_trusted_head(file, trusted=trusted, where=repr(str(file)))


def check_remote_code(folder: Path, params: dict, trust_remote_code: bool) -> None:
    if params.get("trust_remote_code") and not trust_remote_code:
        raise ValueError(
            f"{str(folder)!r} was saved with trust_remote_code=True: loading it could run "
            "Python code from a model folder, so it is refused. If you have read that code "
            "and trust it, pass trust_remote_code=True to load_model (--trust-remote-code "
            "on the command line)."
        )
