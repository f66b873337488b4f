"""Text to features: loading, the forward pass, pooling, prompts, encoding, the ONNX backend.

Knows nothing of scikit-learn. Estimators resolve their parameters into an
:class:`~fewshot._core.plan.EncodingPlan`; :meth:`EncodingPlan.encode` is the one path
from texts to features that everything in fewshot embeds through.
"""

__all__: list[str] = []
