"""Datasets: the customer-feedback demo set shipped with fewshot."""

from __future__ import annotations

import json
from importlib import resources

from sklearn.utils import Bunch


def load_customer_feedback(*, return_X_y: bool = False):
    """Load 80 short customer-feedback texts written for fewshot's demos and tests.

    Four topics (``"billing"``, ``"delivery"``, ``"product"``, ``"service"``), 20
    texts each, half of them positive and half negative in tone.

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(texts, topics)`` instead of a Bunch.

    Returns
    -------
    Bunch with ``text`` (list of str), ``target`` (list of topic names),
    ``sentiment`` (list of "positive"/"negative") and ``target_names``;
    or ``(text, target)`` when ``return_X_y`` is True.

    Examples
    --------
    >>> from fewshot.data import load_customer_feedback
    >>> data = load_customer_feedback()
    >>> len(data.text), data.target_names
    (80, ['billing', 'delivery', 'product', 'service'])
    """
    source = resources.files("fewshot") / "resources" / "customer_feedback.jsonl"
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line]
    texts = [row["text"] for row in rows]
    topics = [row["label"] for row in rows]
    if return_X_y:
        return texts, topics
    return Bunch(
        text=texts,
        target=topics,
        sentiment=[row["sentiment"] for row in rows],
        target_names=sorted(set(topics)),
    )
