"""fewshot: Hugging Face encoders as scikit-learn building blocks for few labelled texts."""

from ._encoding import TruncationWarning
from ._loading import DEFAULT_MODEL, ModelNotFoundError
from .cache import CacheWarning, EmbeddingCache
from .embedder import DistilEmbedder
from .head_classifier import HeadClassifier
from .model_folder import load_model, save_model
from .probe import ProbeResult, probe_layers
from .sampling import sample_pairs
from .setfit import SetFitClassifier

__version__ = "0.1.0"

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
    from ._backends import clear_sessions
    from ._loading import clear_loaded_models
    from ._plan import clear_cache_handles

    clear_loaded_models()
    clear_sessions()
    clear_cache_handles()


def clear_model_cache() -> None:
    """Same as :func:`clear_caches` (the name fewshot 0.1 used)."""
    clear_caches()
