"""Turn the many shapes a column of text can take into a plain ``list[str]``.

Everything that embeds text goes through :func:`check_texts`, so every estimator
accepts the same inputs and rejects bad ones with the same messages.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np

_EXPECTED = (
    "a list or tuple of str, a 1-D numpy array of str/object, a pandas Series "
    "or a one-column DataFrame"
)


def _describe(value) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _column_from_2d(X, name):
    """Return the single column of a 2-D container, or raise if it has several."""
    n_columns = X.shape[1]
    if n_columns != 1:
        raise ValueError(
            f"{name} has {n_columns} columns, but text input must be a single column. "
            "Select the text column first (for example df['text']) or use a "
            "ColumnTransformer to route one column to this step."
        )
    if hasattr(X, "iloc"):  # pandas DataFrame
        return X.iloc[:, 0]
    return np.asarray(X)[:, 0]


def check_texts(X, *, name: str = "X", allow_empty: bool = True) -> list[str]:
    """Validate text input and return it as a list of ``str`` in input order.

    Parameters
    ----------
    X : list, tuple, numpy array, pandas Series or one-column DataFrame
        The texts. Empty strings and any Unicode are valid.
    name : str, default="X"
        Name of the argument, used in error messages.
    allow_empty : bool, default=True
        If False, an input holding no texts raises ``ValueError``.

    Returns
    -------
    list of str

    Raises
    ------
    TypeError
        If ``X`` is None, a single string, not a sequence, or holds anything that is
        not a ``str`` (None, NaN, bytes, numbers, nested lists). The message names
        the first bad position.
    ValueError
        If ``X`` is 2-D with more than one column, or empty when ``allow_empty`` is
        False.

    Examples
    --------
    >>> from fewshot._validation import check_texts
    >>> check_texts(("great product", ""))
    ['great product', '']
    >>> check_texts(["fine", None])
    Traceback (most recent call last):
    ...
    TypeError: X[1] is NoneType None, but every element must be a str. ...
    """
    if X is None:
        raise TypeError(f"{name} is None; expected {_EXPECTED}.")
    if isinstance(X, (str, bytes)):
        raise TypeError(
            f"{name} is a single {type(X).__name__}; expected {_EXPECTED}. "
            f"Wrap one text in a list: [{X!r:.40}]."
        )
    if isinstance(X, (set, frozenset)):
        raise TypeError(
            f"{name} is a {type(X).__name__}, which has no order; outputs follow input "
            f"order, so pass {_EXPECTED}."
        )
    if isinstance(X, dict) or not isinstance(X, Iterable) and not hasattr(X, "shape"):
        raise TypeError(f"{name} is {type(X).__name__}; expected {_EXPECTED}.")

    ndim = getattr(X, "ndim", None)
    if ndim is not None:
        if ndim == 0:
            raise TypeError(f"{name} is a 0-d array; expected {_EXPECTED}.")
        if ndim == 2:
            X = _column_from_2d(X, name)
        elif ndim > 2:
            raise ValueError(f"{name} has {ndim} dimensions; text input must be 1-D.")

    if hasattr(X, "iloc"):  # pandas Series: positions, not index labels
        values = X.tolist()
    elif isinstance(X, np.ndarray):
        values = X.tolist()
    else:
        values = list(X)

    for i, value in enumerate(values):
        if type(value) is str or isinstance(value, str):
            continue
        hint = ""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            hint = " Missing texts must be filled or dropped first (for example fillna(''))."
        elif isinstance(value, bytes):
            hint = " Decode bytes first, for example value.decode('utf-8')."
        elif isinstance(value, (list, tuple, np.ndarray)):
            hint = " Nested sequences are not texts; pass a flat sequence of strings."
        elif isinstance(value, numbers.Number):
            hint = " Convert numbers to text explicitly if they are meant as text."
        raise TypeError(
            f"{name}[{i}] is {_describe(value)}, but every element must be a str.{hint}"
        )
    # numpy str_ is a str subclass: normalise so downstream code sees plain str.
    values = [str(v) for v in values]
    if not allow_empty and not values:
        raise ValueError(f"{name} is empty; at least one text is needed.")
    return values
