"""fewshot: Hugging Face encoders as scikit-learn building blocks for few labelled texts."""

import importlib
from typing import TYPE_CHECKING

from . import _moved
from ._version import __version__

_moved.install()  # fewshot.sampling, fewshot.pooling, fewshot.demo: see fewshot._moved

# Public names load on first use, so ``import fewshot.runtime`` (the torch-free ONNX
# runtime) does not pull in torch, transformers or scikit-learn through this file.
_LAZY = {
    "TruncationWarning": "._core.encoding",
    "DEFAULT_MODEL": "._core.choices",
    "ModelNotFoundError": "._core.errors",
    "CacheWarning": ".cache",
    "EmbeddingCache": ".cache",
    "DistilEmbedder": ".embedder",
    "HeadClassifier": ".head_classifier",
    "load_model": ".model_folder",
    "save_model": ".model_folder",
    "ProbeResult": ".probe",
    "probe_layers": ".probe",
    "sample_pairs": ".setfit",
    "SetFitClassifier": ".setfit",
}

if TYPE_CHECKING:  # what type checkers and the docs see
    from ._core.choices import DEFAULT_MODEL
    from ._core.encoding import TruncationWarning
    from ._core.errors import ModelNotFoundError
    from .cache import CacheWarning, EmbeddingCache
    from .embedder import DistilEmbedder
    from .head_classifier import HeadClassifier
    from .model_folder import load_model, save_model
    from .probe import ProbeResult, probe_layers
    from .setfit import SetFitClassifier, sample_pairs


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fewshot' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DEFAULT_MODEL",
    "CacheWarning",
    "DistilEmbedder",
    "EmbeddingCache",
    "HeadClassifier",
    "ModelNotFoundError",
    "ProbeResult",
    "SetFitClassifier",
    "TruncationWarning",
    "clear_caches",
    "clear_model_cache",
    "load_model",
    "probe_layers",
    "sample_pairs",
    "save_model",
    "__version__",
]


def clear_caches() -> None:
    """Empty every process-wide registry fewshot keeps.

    Forgets the loaded models (shared by all estimators with the same model, revision,
    device and dtype), the ONNX Runtime sessions and private ONNX exports, and the
    per-folder embedding-cache handles. Frees their memory; the next use loads again.
    Cached vectors on disk are kept (see :meth:`EmbeddingCache.clear`).

    Examples
    --------
    >>> import fewshot
    >>> fewshot.clear_caches()
    """
    from ._core.loading import clear_loaded_models
    from ._core.onnx_backend import clear_sessions
    from ._core.plan import clear_cache_handles

    clear_loaded_models()
    clear_sessions()
    clear_cache_handles()


def clear_model_cache() -> None:
    """Same as :func:`clear_caches` (the name fewshot 0.1 used)."""
    clear_caches()
