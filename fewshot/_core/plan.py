"""How to embed: a loaded model, the settings that decide the vectors, and how to run.

An :class:`EncodingPlan` is what every estimator and helper resolves its parameters into
(see :func:`fewshot._estimator.resolve.resolve_plan`) and the only way anything embeds texts:
:meth:`EncodingPlan.encode` runs the one encoding path
(:func:`fewshot._core.encoding.encode`), with the on-disk cache in front when the plan has
one. So a cache, thread count or backend set on an estimator is honoured everywhere that
estimator's settings are used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
import warnings
from dataclasses import dataclass

import numpy as np

from ..cache import CacheWarning, EmbeddingCache, check_cache_path
from .encoding import EncodingSpec, check_out, copy_duplicate_rows, encode, unique_texts
from .loading import LoadedModel

__all__ = ["EncodingPlan", "as_cache", "clear_cache_handles"]

# Bump when the meaning of a cached vector changes, so old rows are never served.
_NAMESPACE_FORMAT = 1
_BLOCK = 4096  # distinct texts looked up / embedded per round


@dataclass(frozen=True)
class EncodingPlan:
    """A resolved request to embed: model, feature spec, batch size, threads, cache, bar."""

    loaded: LoadedModel
    spec: EncodingSpec
    batch_size: int
    n_threads: int | None
    cache: EmbeddingCache | None
    progress: bool

    @property
    def n_features(self) -> int:
        return self.spec.n_features(self.loaded)

    def replace(self, **changes) -> EncodingPlan:
        """A copy with some fields changed; ``spec`` fields may be given directly."""
        spec_fields = {f.name for f in dataclasses.fields(EncodingSpec)}
        spec_changes = {k: changes.pop(k) for k in list(changes) if k in spec_fields}
        if spec_changes:
            changes["spec"] = dataclasses.replace(self.spec, **spec_changes)
        return dataclasses.replace(self, **changes)

    def encode(self, texts: list[str], *, out: np.ndarray | None = None) -> np.ndarray:
        """Embed ``texts`` (rows in input order); only cache misses reach the model."""
        options = {
            "batch_size": int(self.batch_size),
            "progress": bool(self.progress),
            "n_threads": self.n_threads,
        }
        if self.cache is None:
            return encode(self.loaded, texts, self.spec, out=out, **options)
        return _cached_encode(self.cache, self.loaded, texts, self.spec, out=out, **options)


# -- cache handles ----------------------------------------------------------------------

_BY_FOLDER: dict[str, EmbeddingCache] = {}
_BY_FOLDER_LOCK = threading.Lock()


def as_cache(cache) -> EmbeddingCache | None:
    """``None``, a folder path or an :class:`EmbeddingCache` -> a cache or None."""
    if cache is None or isinstance(cache, EmbeddingCache):
        if cache is not None:
            check_cache_path(cache.path)
        return cache
    if isinstance(cache, (str, os.PathLike)):
        # One object per folder and process, so its connections are reused across calls.
        folder = check_cache_path(cache)
        with _BY_FOLDER_LOCK:
            return _BY_FOLDER.setdefault(folder, EmbeddingCache(folder))
    raise TypeError(
        f"cache must be None, a folder path or a fewshot.EmbeddingCache, got "
        f"{type(cache).__name__}."
    )


def clear_cache_handles() -> None:
    """Forget the per-folder cache objects (and with them their open connections)."""
    with _BY_FOLDER_LOCK:
        _BY_FOLDER.clear()


# -- the cached path -------------------------------------------------------------------


def _namespace(loaded: LoadedModel, spec: EncodingSpec) -> bytes | None:
    """A digest of everything besides the text that decides a vector, or None.

    None when the model has no identity on disk (a fine-tuned copy, or a folder that
    changed after loading): such vectors must not be cached.
    """
    fingerprint = loaded.fingerprint()
    if fingerprint is None:
        return None
    settings = dataclasses.asdict(spec)
    if spec.long_text != "chunk":
        settings["stride"] = None  # only windows use the stride
    if spec.prompt is None:
        del settings["prompt"]  # keys from before prompts existed stay valid
    namespace = {
        "format": _NAMESPACE_FORMAT,
        "model": fingerprint,
        "dtype": str(loaded.dtype),
        **settings,
    }
    return hashlib.sha256(json.dumps(namespace, sort_keys=True).encode()).digest()


def _text_key(namespace: bytes, text: str) -> bytes:
    return hashlib.blake2b(
        text.encode("utf-8", "surrogatepass"), digest_size=20, key=namespace[:64]
    ).digest()


def _cached_encode(
    cache: EmbeddingCache,
    loaded: LoadedModel,
    texts: list[str],
    spec: EncodingSpec,
    *,
    out: np.ndarray | None = None,
    block_size: int = _BLOCK,
    **encode_kwargs,
) -> np.ndarray:
    """``encode`` with a cache in front: only misses reach the model.

    Distinct texts are looked up; the ones not found are embedded block by block, stored
    and copied to their rows, so memory stays bounded like the uncached path.
    """
    n_features = spec.n_features(loaded)
    namespace = _namespace(loaded, spec)
    if namespace is None:
        warnings.warn(
            f"Model {loaded.name!r} has no identity on disk (a fine-tuned copy, or its "
            "folder changed after loading; call fewshot.clear_caches() to reload "
            "it), so its vectors are not cached.",
            CacheWarning,
            stacklevel=3,
        )
        return encode(loaded, texts, spec, out=out, **encode_kwargs)
    out = check_out(out, len(texts), n_features)
    if not texts:
        return out
    unique, first, inverse = unique_texts(texts)
    keys = [_text_key(namespace, text) for text in unique]
    missing = []
    for start in range(0, len(unique), block_size):
        found = _safely(cache.get, keys[start : start + block_size], n_features) or {}
        for offset in range(min(block_size, len(unique) - start)):
            vector = found.get(offset)
            if vector is None:
                missing.append(start + offset)
            else:
                out[first[start + offset]] = vector
    for start in range(0, len(missing), block_size):
        chunk = missing[start : start + block_size]
        vectors = encode(loaded, [unique[i] for i in chunk], spec, **encode_kwargs)
        out[first[chunk]] = vectors
        _safely(cache.put, [keys[i] for i in chunk], vectors)
    if len(unique) < len(texts):
        copy_duplicate_rows(out, first, inverse)
    return out


def _safely(operation, *args):
    """Run a cache operation; a cache that cannot be used is skipped with a warning.

    Locked too long or a full disk: the vectors are still computed and returned.
    """
    try:
        return operation(*args)
    except sqlite3.Error as exc:
        warnings.warn(
            f"Embedding cache skipped for this block ({exc}); vectors are computed without it.",
            CacheWarning,
            stacklevel=3,
        )
        return None
