"""What a model folder is: the files that identify its weights, and its own settings.

Also what a sentence-transformers folder says about its embedding.

The fingerprint (a hash of the files that decide the vectors) keys the embedding cache
and the ONNX exports, and lets a saved model check it is given the same base weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading

from .prompt import escape_prefix

__all__ = [
    "file_stats",
    "hash_files",
    "is_local_folder",
    "model_folder",
    "sentence_transformers_settings",
]


# Files that decide the vectors: weights, config and tokenizer. READMEs and other
# formats' weights (onnx/, pytorch_model.bin) are left out so hashing stays cheap.
_IDENTITY_SUFFIXES = (".safetensors", ".json", ".txt", ".model")


def is_local_folder(name: str) -> bool:
    """Whether ``name`` is a folder on this machine (else a hub id)."""
    return os.path.isdir(os.path.expanduser(name))


def file_stats(folder: str) -> dict:
    stats = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file() and entry.name.endswith(_IDENTITY_SUFFIXES):
                info = entry.stat()
                stats[entry.name] = (info.st_size, info.st_mtime_ns)
    return stats


# (folder, its files' (size, mtime)) -> hash: a model loaded again for another fit (see
# ``get_model(keep=False)``) is not read through again while its files are unchanged.
_HASHES: dict[tuple, str] = {}
_HASHES_LOCK = threading.Lock()


def hash_files(folder: str, stats: dict) -> str:
    """SHA-256 over the files named in ``stats`` (``file_stats``), remembered per stat state."""
    key = (folder, tuple(sorted(stats.items())))
    with _HASHES_LOCK:
        known = _HASHES.get(key)
    if known is None:
        known = _hash_contents(folder, stats)
        with _HASHES_LOCK:
            _HASHES[key] = known
    return known


def _hash_contents(folder: str, stats: dict) -> str:
    digest = hashlib.sha256()
    for name in sorted(stats):
        digest.update(name.encode() + b"\0")
        with open(os.path.join(folder, name), "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def model_folder(name: str, revision) -> str | None:
    """The folder holding the model's files: the local folder, or the hub cache snapshot."""
    if is_local_folder(name):
        return os.path.realpath(os.path.expanduser(name))
    try:
        from transformers.utils import cached_file

        config = cached_file(name, "config.json", revision=revision, local_files_only=True)
    except Exception:  # noqa: BLE001 - no identity just means no caching
        return None
    # The snapshot folder itself (``.../snapshots/<commit>``), not where its files'
    # links point: the blobs there are named by hash, so they would hash as nothing.
    return os.path.realpath(os.path.dirname(config)) if config else None


def sentence_transformers_settings(folder) -> dict:
    """What a sentence-transformers folder says about its embedding, for the defaults.

    ``{"pooling": ..., "normalize": ..., "max_length": ..., "prompt": ...}`` for the
    parts the folder states (its ``1_Pooling`` mode when it is mean, CLS or max; whether
    a ``Normalize`` module follows; ``max_seq_length``; the prompt that
    ``config_sentence_transformers.json``'s ``default_prompt_name`` names, as a prefix
    with its braces escaped); empty when the folder is not such a model. A folder with
    prompts but no ``default_prompt_name`` gets no prompt: which one fits is the
    caller's choice, not ours to guess.
    """

    def read(name):
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    modules = read("modules.json")
    if not isinstance(modules, list):
        return {}
    types = [str(m.get("type", "")) for m in modules if isinstance(m, dict)]
    settings = {"normalize": any(t.endswith("models.Normalize") for t in types)}
    for module in modules:
        if isinstance(module, dict) and str(module.get("type", "")).endswith("models.Pooling"):
            config = read(os.path.join(module.get("path", ""), "config.json")) or {}
            modes = [
                m
                for m in ("cls", "mean", "max")
                if config.get(f"pooling_mode_{m}_token") or config.get(f"pooling_mode_{m}_tokens")
            ]
            if len(modes) == 1 and not config.get("pooling_mode_mean_sqrt_len_tokens"):
                settings["pooling"] = modes[0]
    length = (read("sentence_bert_config.json") or {}).get("max_seq_length")
    if isinstance(length, int) and length > 1:
        settings["max_length"] = length
    config = read("config_sentence_transformers.json") or {}
    prompts, default = config.get("prompts"), config.get("default_prompt_name")
    if isinstance(prompts, dict) and isinstance(prompts.get(default), str) and prompts[default]:
        settings["prompt"] = escape_prefix(prompts[default])
    return settings
