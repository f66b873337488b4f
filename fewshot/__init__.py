"""fewshot: Hugging Face encoders as scikit-learn building blocks for few labelled texts."""

from ._loading import DEFAULT_MODEL, ModelNotFoundError, clear_model_cache
from .cache import CacheWarning, EmbeddingCache
from .embedder import DistilEmbedder
from .sampling import sample_pairs
from .setfit import SetFitClassifier
from .probe import ProbeResult, probe_layers

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "CacheWarning",
    "DistilEmbedder",
    "EmbeddingCache",
    "ModelNotFoundError",
    "ProbeResult",
    "SetFitClassifier",
    "clear_model_cache",
    "probe_layers",
    "sample_pairs",
    "__version__",
]
