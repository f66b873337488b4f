"""What the scikit-learn estimators share: parameter constraints, resolution, input checks.

The estimators (:mod:`fewshot.embedder`, :mod:`fewshot.setfit`, :mod:`fewshot.head_classifier`)
store parameters; the modules here check them, resolve them against a loaded model into an
encoding plan, read texts and labels by position, and predict labels and probabilities
with one pass through the encoder.
"""

__all__: list[str] = []
