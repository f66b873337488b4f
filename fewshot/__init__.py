"""fewshot: Hugging Face encoders as scikit-learn building blocks for few labelled texts."""

from ._loading import DEFAULT_MODEL, ModelNotFoundError, clear_model_cache
from .cache import CacheWarning, EmbeddingCache
from .embedder import DistilEmbedder

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "CacheWarning",
    "DistilEmbedder",
    "EmbeddingCache",
    "ModelNotFoundError",
    "clear_model_cache",
    "__version__",
]
