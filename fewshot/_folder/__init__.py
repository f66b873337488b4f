"""The model-folder format: manifest, weights, head, the trust rule, provenance, model card.

Knows no estimator: each estimator writes and reads its own fields through these parts,
and :mod:`fewshot.model_folder` maps each folder kind to its reader and writer.
"""

__all__: list[str] = []
