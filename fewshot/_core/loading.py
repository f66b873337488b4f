"""Resolve a model id or folder and load its tokenizer and weights once per process.

Every estimator asks :func:`get_model` for what it needs; the loaded copy is shared by
all estimators (and clones, and unpickled copies) with the same model, revision,
device and dtype, so a grid search never reloads weights per candidate. Weights come
from safetensors only and remote code stays off unless the caller asks for it.
"""

from __future__ import annotations

__all__ = [
    "LoadedModel",
    "clear_loaded_models",
    "find_blocks",
    "get_model",
    "load_saved_body",
    "model_max_length",
    "quiet_transformers",
    "shared_copy",
    "short_model_name",
    "trainable_copy",
    "wrap_private",
]

import contextlib
import copy
import os
import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import urlparse

import torch

from .choices import DEFAULT_MODEL
from .devices import resolve_device, resolve_dtype
from .errors import ModelNotFoundError, first_line
from .model_files import (
    file_stats,
    hash_files,
    is_local_folder,
    model_folder,
    sentence_transformers_settings,
)


@dataclass
class LoadedModel:
    """A tokenizer and model loaded once and shared inside the process.

    ``model`` is the full model (with its sequence-classification head when the
    checkpoint has one); ``body`` is the bare encoder inside it and ``blocks`` its
    list of transformer layers, which the encoding path hooks into.
    """

    name: str
    tokenizer: object
    model: torch.nn.Module
    body: torch.nn.Module
    blocks: torch.nn.ModuleList
    device: torch.device
    dtype: torch.dtype
    has_head: bool
    # Hooks on a shared model are not re-entrant: one forward at a time.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # The folder the weights came from and its files' (size, mtime) at load time; None
    # for a private copy (fine-tuned weights have no identity on disk).
    folder: str | None = field(default=None, repr=False)
    file_stats: dict | None = field(default=None, repr=False)
    # A sentence-transformers folder's own pooling, normalisation and length (see
    # :func:`sentence_transformers_settings`); empty for other models.
    st_settings: dict = field(default_factory=dict, repr=False)
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def config(self):
        return self.model.config

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def hidden_size(self) -> int:
        return int(self.config.hidden_size)

    @property
    def id2label(self) -> dict[int, str]:
        labels = getattr(self.config, "id2label", None) or {}
        return {int(k): str(v) for k, v in labels.items()}

    @property
    def max_length(self) -> int:
        """Longest token sequence (special tokens included) the model accepts."""
        return model_max_length(self.tokenizer, self.config)

    def fingerprint(self) -> str | None:
        """A hash of the files the model was loaded from (weights, config, tokenizer).

        Identifies the weights actually in memory, so caches keyed on it cannot serve
        vectors of another model, another revision, or a folder overwritten in place.
        None when there is no such identity: a private (fine-tuned) copy, or a folder
        whose files changed after loading (call :func:`fewshot.clear_caches` to reload).
        """
        # Re-checked on every call (a few stat calls): the folder may change under us.
        if self.folder is None or file_stats(self.folder) != self.file_stats:
            return None
        if self._fingerprint is None:
            self._fingerprint = hash_files(self.folder, self.file_stats)
        return self._fingerprint


_CACHE: dict[tuple, LoadedModel] = {}
_CACHE_LOCK = threading.Lock()


def model_max_length(tokenizer, config) -> int:
    """The model's own limit: the tokenizer's if it states one, else the positions."""
    limit = getattr(tokenizer, "model_max_length", None)
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and getattr(config, "model_type", "") in (
        "roberta",
        "xlm-roberta",
        "camembert",
        "mpnet",
        "longformer",
        "xlm-roberta-xl",
    ):
        # These models reserve the first position ids for padding.
        positions -= int(getattr(config, "pad_token_id", 1) or 1) + 1
    if limit is None or limit > 1_000_000:  # transformers' "no limit" sentinel
        limit = positions
    elif positions is not None:
        limit = min(limit, positions)
    return int(limit or 512)


def find_blocks(body: torch.nn.Module, config) -> torch.nn.ModuleList:
    """The encoder's list of transformer layers, found by its length."""
    n_layers = getattr(config, "num_hidden_layers", None)
    candidates = [
        module
        for module in body.modules()
        if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers
    ]
    if not candidates:
        raise ValueError(
            f"Could not find the {n_layers} transformer layers of "
            f"{type(body).__name__}; only encoder models with a list of layers "
            "(BERT, DistilBERT, RoBERTa, MPNet, ...) are supported."
        )
    return candidates[0]


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~", ".\\")) or os.sep + os.sep in name


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check, so an offline machine fails in seconds rather than retrying."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_env() -> bool:
    return any(
        os.environ.get(var, "").lower() in ("1", "true", "yes", "on")
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _not_found(name: str, reason: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"Could not load model {name!r}: {reason} Pass model='/path/to/folder' with a "
        "local copy (a folder holding config.json, the tokenizer files and "
        "model.safetensors, as written by save_pretrained), or connect to the "
        "Hugging Face hub."
    )


def _from_pretrained(factory, name, **kwargs):
    """Call ``factory.from_pretrained`` trying the local cache first, then the hub."""
    if is_local_folder(name):
        try:
            return factory.from_pretrained(os.path.expanduser(name), **kwargs)
        except (OSError, ValueError) as exc:
            raise _not_found(
                name, f"the folder is not a readable model folder ({first_line(exc)})."
            ) from exc
    if _looks_like_path(name):
        raise _not_found(name, "no such folder.")
    try:
        return factory.from_pretrained(name, local_files_only=True, **kwargs)
    except OSError:
        pass
    if _offline_env():
        raise _not_found(name, "it is not in the local cache and HF_HUB_OFFLINE is set.")
    if not _hub_reachable():
        raise _not_found(
            name, "it is not in the local cache and the Hugging Face hub cannot be reached."
        )
    try:
        return factory.from_pretrained(name, **kwargs)
    except OSError as exc:
        raise _not_found(name, first_line(exc)) from exc


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' load report and weight-loading bar, restoring them after."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _load(name, revision, device, dtype, trust_remote_code) -> LoadedModel:
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    common = {"revision": revision, "trust_remote_code": trust_remote_code}
    config = _from_pretrained(AutoConfig, name, **common)
    tokenizer = _from_pretrained(AutoTokenizer, name, **common)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"Model {name!r} has no fast tokenizer (tokenizer.json); fewshot needs one "
            "for offsets and long-text windows."
        )
    architectures = getattr(config, "architectures", None) or []
    has_head = any(arch.endswith("ForSequenceClassification") for arch in architectures)
    factory = AutoModelForSequenceClassification if has_head else AutoModel
    with quiet_transformers():
        model = _from_pretrained(factory, name, use_safetensors=True, dtype=dtype, **common)
    model.eval().to(device)
    folder = model_folder(name, revision)
    return _assemble(name, tokenizer, model, device, dtype, has_head=has_head, folder=folder)


def _assemble(name, tokenizer, model, device, dtype, *, has_head, folder=None) -> LoadedModel:
    """The one place a :class:`LoadedModel` is put together from a model and tokenizer."""
    body = model.base_model if has_head else model
    return LoadedModel(
        name=name,
        tokenizer=tokenizer,
        model=model,
        body=body,
        blocks=find_blocks(body, model.config),
        device=device,
        dtype=dtype,
        has_head=has_head,
        folder=folder,
        file_stats=file_stats(folder) if folder else None,
        st_settings=sentence_transformers_settings(folder) if folder else {},
    )


def get_model(
    name: str = DEFAULT_MODEL,
    *,
    revision: str | None = None,
    device="auto",
    dtype="float32",
    trust_remote_code: bool = False,
    keep: bool = True,
) -> LoadedModel:
    """Return the process-wide loaded copy of ``name``, loading it on first use.

    Parameters
    ----------
    name : str
        Hugging Face model id or local folder.
    revision : str, optional
        Branch, tag or commit on the hub.
    device : "auto", str or torch.device
    dtype : {"float32", "float16", "bfloat16"}
    trust_remote_code : bool, default=False
        Only set this for models whose code you have read.
    keep : bool, default=True
        Keep a newly loaded model for the rest of the process. False returns the kept
        copy if there is one, else a model loaded for the caller alone (which
        :func:`trainable_copy` then trains in place instead of copying).

    Returns
    -------
    LoadedModel
    """
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"model must be a str or path, got {type(name).__name__}.")
    name = os.fspath(name)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    key_name = os.path.realpath(os.path.expanduser(name)) if is_local_folder(name) else name
    key = (key_name, revision, str(torch_device), str(torch_dtype), bool(trust_remote_code))
    with _CACHE_LOCK:
        loaded = _CACHE.get(key)
        if loaded is None:
            loaded = _load(name, revision, torch_device, torch_dtype, trust_remote_code)
            if keep:
                _CACHE[key] = loaded
    return loaded


def is_shared(loaded: LoadedModel) -> bool:
    """Whether ``loaded`` is the process-wide copy other estimators use."""
    with _CACHE_LOCK:
        return any(kept is loaded for kept in _CACHE.values())


def trainable_copy(pretrained: LoadedModel, layer: int) -> LoadedModel:
    """A private float32 encoder with the blocks above ``layer`` removed, for fine-tuning.

    A copy when ``pretrained`` is the shared one (which stays as it was); a model loaded
    for this caller alone (``get_model(..., keep=False)``) is used itself, so fitting
    holds one copy of the weights, not two.
    """
    body = pretrained.body if not is_shared(pretrained) else _copy_body(pretrained)
    return wrap_private(pretrained, _cut(body, layer).float())


def shared_copy(pretrained: LoadedModel, layer: int) -> LoadedModel:
    """The encoder's structure cut at ``layer``, over the pretrained weight tensors themselves.

    Modules are new objects (adapters can be injected and hooks registered on them
    without touching the shared model) but every parameter is a new ``Parameter``
    (``requires_grad=False``) on the same storage as the shared one, and buffers are the
    shared ones: the copy costs no weight memory. Nothing may write to those weights.
    """
    memo = {
        id(p): torch.nn.Parameter(p.detach(), requires_grad=False)
        for p in pretrained.body.parameters()
    }
    memo.update({id(b): b for b in pretrained.body.buffers()})
    return wrap_private(pretrained, _cut(_copy_body(pretrained, memo), layer))


def _copy_body(pretrained: LoadedModel, memo=None) -> torch.nn.Module:
    # Under the lock: a forward running now has hooks on the blocks, not to be copied.
    with pretrained.lock:
        return copy.deepcopy(pretrained.body, memo)


def _cut(body: torch.nn.Module, layer: int) -> torch.nn.Module:
    """``body`` with the blocks above ``layer`` removed (they would never run)."""
    del find_blocks(body, body.config)[layer:]
    body.config.num_hidden_layers = layer
    return body


def wrap_private(pretrained: LoadedModel, body: torch.nn.Module) -> LoadedModel:
    """A :class:`LoadedModel` around ``body``, a private encoder made from ``pretrained``.

    It has no identity on disk (no fingerprint, no embedding cache) and its own lock.
    """
    dtype = next(body.parameters()).dtype
    return _assemble(
        pretrained.name, pretrained.tokenizer, body, pretrained.device, dtype, has_head=False
    )


def load_saved_body(folder, device="auto") -> LoadedModel:
    """An encoder rebuilt from weights fewshot saved.

    A local folder only, weights from safetensors, never remote code.
    """
    from transformers import AutoModel, AutoTokenizer

    folder = os.fspath(folder)
    with quiet_transformers():
        model = AutoModel.from_pretrained(
            folder,
            use_safetensors=True,
            local_files_only=True,
            trust_remote_code=False,
            dtype=torch.float32,  # as saved; transformers 5 would otherwise follow config
        )
    tokenizer = AutoTokenizer.from_pretrained(
        folder, local_files_only=True, trust_remote_code=False
    )
    device = resolve_device(device)
    model.eval().to(device)
    return _assemble(folder, tokenizer, model, device, torch.float32, has_head=False)


def short_model_name(name) -> str:
    """A readable model name for titles: hub ids as they are, folders by their tail."""
    name = os.fspath(name)
    if not os.path.isdir(os.path.expanduser(name)):
        return name
    parts = os.path.normpath(os.path.abspath(os.path.expanduser(name))).split(os.sep)
    return "/".join(parts[-2:]) if parts[-1] in ("model", "models", "snapshot") else parts[-1]


def clear_loaded_models() -> None:
    """Forget every loaded model (frees memory; the next use loads again)."""
    with _CACHE_LOCK:
        _CACHE.clear()
