"""Datasets: the shipped customer-feedback demo set, dataset files, few-shot sampling."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._estimator.validation import as_rows, check_labels, plain, take_rows

__all__ = ["load_customer_feedback", "read_dataset", "read_split", "sample_per_class"]


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
    source = resources.files("fewshot.data") / "customer_feedback.jsonl"
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


def read_split(
    path, split: str | None = None, *, text_column: str = "text", label_column: str = "label"
):
    r"""Read one split of a dataset as a DataFrame with ``text``, ``label`` (and ``label_text``).

    Parameters
    ----------
    path : str or Path
        A ``.jsonl``/``.csv`` file, or a dataset folder holding ``{split}.jsonl`` or
        ``{split}.csv`` (the layout of ``{"text", "label", "label_text"}`` rows that
        fewshot's benchmarks use).
    split : str, optional
        ``"train"``, ``"test"``, ... when ``path`` is a folder.
    text_column, label_column : str
        Columns to read as text and label (renamed to ``text`` and ``label``).

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "train.csv").write_text("text,label\ngood,1\nbad,0\n")
    >>> read_split(folder, "train")["label"].tolist()
    [1, 0]
    """
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        if split is None:
            raise ValueError(
                f"{str(path)!r} is a folder; name the split to read, e.g. split='train'."
            )
        candidates = [path / f"{split}.jsonl", path / f"{split}.csv"]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise FileNotFoundError(
                f"No {split}.jsonl or {split}.csv in {str(path)!r}; files there: "
                f"{sorted(p.name for p in path.iterdir())}."
            )
        path = found[0]
    elif not path.is_file():
        raise FileNotFoundError(f"No such dataset file or folder: {str(path)!r}.")
    if path.suffix == ".jsonl":
        frame = pd.read_json(path, lines=True, dtype=False)
    elif path.suffix == ".csv":
        frame = pd.read_csv(path, keep_default_na=False)
    else:
        raise ValueError(f"{path.name!r}: expected a .jsonl or .csv file.")
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path.name!r} has no column {missing[0]!r}; columns: {list(frame.columns)}."
        )
    return frame.rename(columns={text_column: "text", label_column: "label"})


def read_dataset(path, splits=("train", "test"), **kwargs) -> dict:
    """Read several splits of a dataset folder: ``{split: DataFrame}`` (see :func:`read_split`)."""
    return {split: read_split(path, split, **kwargs) for split in splits}


def sample_per_class(X, y, n: int, *, random_state=None):
    """Draw ``n`` examples of every class, without replacement (the few-shot training set).

    Parameters
    ----------
    X : sequence, numpy array, pandas Series/DataFrame or iterable
        Texts (or any samples). Read by position: a pandas index is ignored, so a
        shuffled or filtered DataFrame's column works as it is.
    y : array-like of shape (n_samples,)
        One label per sample, also read by position.
    n : int
        Examples per class.
    random_state : int, RandomState or None

    Returns
    -------
    X_sample : list, ndarray or DataFrame
        A list for lists, tuples, iterables and Series; an array for an array; a
        DataFrame (with a fresh index) for a DataFrame.
    y_sample : ndarray
        Shuffled, ``n * n_classes`` rows; ``y_sample[i]`` is the label of ``X_sample[i]``.

    Raises
    ------
    ValueError
        When a class has fewer than ``n`` examples.

    Examples
    --------
    >>> X, y = sample_per_class(list("abcdef"), [0, 0, 0, 1, 1, 1], 2, random_state=0)
    >>> len(X), sorted(y.tolist())
    (4, [0, 0, 1, 1])
    """
    from sklearn.utils import check_random_state

    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}.")
    X = as_rows(X)
    y = check_labels(y, len(X), noun="row")
    rng = check_random_state(random_state)
    chosen = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) < n:
            raise ValueError(
                f"class {plain(label)!r} has {len(members)} examples, fewer than the {n} per "
                "class asked for."
            )
        chosen.append(rng.choice(members, size=n, replace=False))
    chosen = rng.permutation(np.concatenate(chosen))
    return take_rows(X, chosen), y[chosen]
