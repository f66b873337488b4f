"""Embed and predict over datasets larger than one machine, with Ray Data.

Ray Data streams a dataset through a pool of actors; each actor loads the model once and
then receives batch after batch (the pattern Ray documents for batch inference). These
helpers wrap that pattern around any fewshot (or scikit-learn) estimator that takes a
list of texts:

- :func:`embed_dataset` adds ``estimator.transform(texts)`` as a vector column;
- :func:`predict_dataset` adds ``estimator.predict(texts)`` and, where the estimator has
  it, ``predict_proba``.

The estimator travels to the actors once, through Ray's object store: a
:class:`~fewshot.DistilEmbedder` (or a pipeline around one) pickles without pretrained
weights, so each actor loads them itself; a fitted :class:`~fewshot.SetFitClassifier`
pickles with its fine-tuned weights (as safetensors bytes), which are stored once and
read by each actor, not sent with every batch.

Install with ``pip install 'fewshot[ray]'``. See ``docs/scaling.md``.
"""

from ._datasets import embed_dataset, predict_dataset

__all__ = ["embed_dataset", "predict_dataset"]
