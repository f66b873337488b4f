"""One call for the labelling loop: cold start without a classifier, the next batch with one.

What ``fewshot select`` runs. A person's loop::

    picked = texts_to_label(pool, 32, embedder=encoder)           # label these
    clf = SetFitClassifier(...).fit(labelled_texts, labels)
    picked = texts_to_label(pool, 32, classifier=clf, labelled=labelled_texts)
"""

from __future__ import annotations

from .._core.choices import COLD_START
from .._core.choices import SELECT_STRATEGIES as STRATEGIES
from .._estimator.constraints import Options
from ._cold_start import cold_start
from ._selection import Selection
from ._uncertainty import next_batch

__all__ = ["STRATEGIES", "texts_to_label"]


def texts_to_label(
    X,
    k,
    *,
    classifier=None,
    labelled=None,
    strategy="auto",
    diversity=True,
    embedder=None,
    random_state=None,
    progress=False,
) -> Selection:
    """Choose the ``k`` pool texts to label next: the Python side of ``fewshot select``.

    Parameters
    ----------
    X : list, tuple, 1-D array, pandas Series or one-column DataFrame of str
        The unlabelled pool, read by position; a repeated text is offered once.
    k : int
        How many texts to choose.
    classifier : fitted classifier with ``predict_proba``, optional
        A model trained on the texts labelled so far. Without one the choice is a cold
        start from embeddings.
    labelled : sequence of str, optional
        Texts labelled already; never chosen again (with a :class:`SelectionWarning`
        when the pool holds some).
    strategy : {"auto", "density", "kmeans", "random", "margin", "entropy", \
"least-confident"}, default="auto"
        "auto": "density" (:func:`cold_start`) without a classifier, "margin"
        (:func:`next_batch`) with one. The uncertainty strategies need a classifier.
    diversity : bool, default=True
        For the uncertainty strategies: spread the batch over clusters of the most
        uncertain texts (see :func:`next_batch`).
    embedder : None, str, path-like or object with ``transform``, default=None
        Embeds the texts for the clustering strategies (see :func:`cold_start`); with a
        classifier that has a feature step, its own embedding is used instead.
    random_state : int, RandomState or None
    progress : bool, default=False

    Returns
    -------
    Selection

    Examples
    --------
    >>> import tempfile
    >>> from fewshot import DistilEmbedder
    >>> from fewshot.data import load_customer_feedback
    >>> from fewshot.select import texts_to_label
    >>> from fewshot.testing import make_tiny_distilbert
    >>> path = str(make_tiny_distilbert(tempfile.mkdtemp()))    # a tiny random model
    >>> pool = load_customer_feedback().text
    >>> first = texts_to_label(pool, 8, embedder=DistilEmbedder(model=path), random_state=0)
    >>> first.strategy, len(first.to_frame())
    ('density', 8)
    """
    Options(*STRATEGIES).check("strategy", strategy)
    # "auto" leaves the choice to the called function's own default (written there once).
    chosen = {} if strategy == "auto" else {"strategy": strategy}
    if strategy in COLD_START or (strategy == "auto" and classifier is None):
        return cold_start(
            X,
            k,
            **chosen,
            embedder=embedder,
            labelled=labelled,
            random_state=random_state,
            progress=progress,
        )
    if classifier is None:
        raise ValueError(
            f"strategy={strategy!r} ranks texts by a classifier's uncertainty; pass "
            f"classifier= (a model fitted on the texts labelled so far), or choose a "
            f"cold-start strategy: {', '.join(COLD_START)}."
        )
    return next_batch(
        classifier,
        X,
        k,
        **chosen,
        diversity=diversity,
        labelled=labelled,
        embedder=embedder,
        random_state=random_state,
        progress=progress,
    )
