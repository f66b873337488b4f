"""The model-folder format's parts: manifest, encoder weights, head, and the trust rule.

Knows no estimator: :mod:`fewshot.model_folder` (which writes and reads whole folders)
and each estimator's own ``save``/``load`` use these pieces, so there is one manifest,
one way to store weights and a head, and one trust rule. See :mod:`fewshot.model_folder`
for the layout.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ._prompt import prompt_parts

__all__ = [
    "ENCODER_FOLDER",
    "FORMAT",
    "FORMAT_VERSION",
    "HEAD_FILE",
    "MANIFEST",
    "check_remote_code",
    "encoder_from_bytes",
    "encoder_to_bytes",
    "load_head",
    "new_manifest",
    "read_manifest",
    "write_encoder",
    "write_json",
]

MANIFEST = "fewshot.json"
FORMAT = "fewshot-model"
FORMAT_VERSION = 2
HEAD_FILE = "head.skops"
ENCODER_FOLDER = "encoder"
_LEGACY_SETFIT = "fewshot_setfit.json"
_LEGACY_CLI = "fewshot-model.json"
_TRUSTED_PREFIXES = ("sklearn.", "numpy.")


def new_manifest(kind: str, metadata=None, **fields) -> dict:
    """The manifest every kind of folder starts from."""
    from . import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fewshot_version": __version__,
        "kind": kind,
        "metadata": dict(metadata or {}),
        **fields,
    }


def write_encoder(
    loaded, folder: Path, *, pooling: str | None = None, max_length=None, prompt=None
) -> None:
    """Save a loaded encoder as a Hugging Face folder (safetensors + tokenizer).

    With ``pooling``, also the sentence-transformers module files, so
    ``SentenceTransformer(folder)`` embeds as fewshot does; a ``prompt`` that is a
    prefix becomes the folder's default prompt there (sentence-transformers has no
    text after the input, so a template with some is only in fewshot's manifest).
    """
    from ._loading import quiet_transformers

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
    from ._loading import load_saved_body

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
    if manifest.get("format") != FORMAT or int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{str(folder)!r} holds format {manifest.get('format')!r} version "
            f"{manifest.get('format_version')!r}; this fewshot reads {FORMAT!r} up to "
            f"version {FORMAT_VERSION}. Upgrade fewshot."
        )
    return manifest


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


def load_head(folder: Path):
    import skops.io

    file = folder / HEAD_FILE
    if not file.is_file():
        raise ValueError(f"{str(folder)!r} has no {HEAD_FILE}; the folder is incomplete.")
    untrusted = skops.io.get_untrusted_types(file=file)
    foreign = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if foreign:
        raise ValueError(
            f"The head in {str(folder)!r} uses types outside scikit-learn and numpy "
            f"({foreign}); refusing to load them. Load it with skops yourself if you trust it."
        )
    return skops.io.load(file, trusted=untrusted)


def check_remote_code(folder: Path, params: dict, trust_remote_code: bool) -> None:
    if params.get("trust_remote_code") and not trust_remote_code:
        raise ValueError(
            f"{str(folder)!r} was saved with trust_remote_code=True: loading it could run "
            "Python code from a model folder, so it is refused. If you have read that code "
            "and trust it, pass trust_remote_code=True to load_model (--trust-remote-code "
            "on the command line)."
        )
