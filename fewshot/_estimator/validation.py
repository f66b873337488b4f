"""Input checks for texts and labels, shared by every estimator, helper and command.

Everything that embeds text goes through :func:`check_texts`, and everything that reads
labels through :func:`check_labels` or :func:`check_class_labels`, so every entry point
accepts the same inputs and rejects bad ones with the same messages. Inputs are read by
position: a pandas Series or DataFrame is taken in row order whatever its index, and a
generator is read once.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np

__all__ = [
    "as_rows",
    "check_class_labels",
    "check_labels",
    "check_texts",
    "plain",
    "take_rows",
]

_EXPECTED = (
    "a list or tuple of str, a 1-D numpy array of str/object, a pandas Series "
    "or a one-column DataFrame"
)


def _describe(value) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _check_ordered(values, name: str, expected: str, hint: str = "") -> None:
    """Refuse None, a lone string and unordered sets: one message shape for texts and labels."""
    if values is None:
        raise TypeError(f"{name} is None; {expected}.")
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} is a single {type(values).__name__}; {expected}.{hint}")
    if isinstance(values, (set, frozenset)):
        raise TypeError(
            f"{name} is a {type(values).__name__}, which has no order; outputs follow input "
            f"order, so {expected}."
        )


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
    >>> from fewshot._estimator.validation import check_texts
    >>> check_texts(("great product", ""))
    ['great product', '']
    >>> check_texts(["fine", None])
    Traceback (most recent call last):
    ...
    TypeError: X[1] is NoneType None, but every element must be a str. ...
    """
    _check_ordered(X, name, f"pass {_EXPECTED}", f" Wrap one text in a list: [{X!r:.40}].")
    if isinstance(X, dict) or not isinstance(X, Iterable) and not hasattr(X, "shape"):
        raise TypeError(f"{name} is {type(X).__name__}; pass {_EXPECTED}.")

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


# -- labels ----------------------------------------------------------------------------


def plain(value):
    """A numpy scalar as the Python value it holds (``np.str_('a')`` -> ``'a'``).

    Examples
    --------
    >>> plain(np.int64(3)), plain("a")
    (3, 'a')
    """
    return value.item() if isinstance(value, np.generic) else value


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def check_labels(
    y,
    n_samples: int | None = None,
    *,
    name: str = "y",
    x_name: str = "X",
    noun: str = "text",
    multilabel: bool = False,
):
    """Validate labels and return them as a numpy array, in input (positional) order.

    Parameters
    ----------
    y : list, tuple, numpy array, pandas Series/DataFrame or iterable
        One label per text; with ``multilabel`` also a 0/1 indicator matrix.
    n_samples : int, optional
        The number of texts; a different number of labels is an error.
    name : str, default="y"
        Name of the argument, used in error messages.
    x_name, noun : str, default="X", "text"
        What the labels belong to, for the length message ("X has 4 texts but ...").
    multilabel : bool, default=False
        Accept a 2-D indicator matrix (returned as a 2-D int array).

    Returns
    -------
    ndarray
        1-D (or 2-D for an indicator matrix), with numpy's plain dtype for the labels
        (ints, floats or str).

    Raises
    ------
    TypeError
        For None, a single string, or labels of mixed types.
    ValueError
        For a length that does not match ``n_samples``, a missing label (None/NaN, named
        by position), or a 2-D ``y`` where only one label per text is allowed.

    Examples
    --------
    >>> import pandas as pd
    >>> check_labels(pd.Series(["b", "a"], index=[7, 3]), 2).tolist()
    ['b', 'a']
    >>> check_labels([1, None], 2)
    Traceback (most recent call last):
    ...
    ValueError: y[1] is missing (None); every text needs a label. ...
    """
    _check_ordered(y, name, f"pass one label per {noun} (a list or array)")
    if isinstance(y, dict):
        raise TypeError(f"{name} is a dict; pass one label per {noun} (a list or array).")
    values = y.to_numpy() if hasattr(y, "to_numpy") else y  # pandas: positions, not index
    if not hasattr(values, "ndim"):
        values = list(values)
    array = np.asarray(values, dtype=object)
    if array.ndim == 2 and array.shape[1] == 1 and not multilabel:
        array = array[:, 0]
    if array.ndim == 2 and multilabel:
        array = np.asarray(array.tolist())
    elif array.ndim != 1:
        shape = "a single value" if array.ndim == 0 else f"shape {array.shape}"
        raise ValueError(f"{name} must hold one label per {noun} (1-D), got {shape}.")
    got = len(array)
    if n_samples is not None and got != n_samples:
        raise ValueError(
            f"{x_name} has {n_samples} {noun}s but {name} has {got} labels; give one label "
            f"per {noun}."
        )
    if array.ndim == 1:
        for i, label in enumerate(array):
            if _is_missing(label):
                raise ValueError(
                    f"{name}[{i}] is missing ({label!r}); every text needs a label. "
                    "Drop or fill those rows first."
                )
        kinds = {type(plain(label)) for label in array}
        numeric = all(issubclass(k, (numbers.Real, np.bool_)) for k in kinds)
        if len(kinds) > 1 and not numeric:
            raise TypeError(
                f"{name} mixes label types {sorted(k.__name__ for k in kinds)}; use one type."
            )
        array = np.asarray([plain(label) for label in array])
    return array


def check_class_labels(
    y, n_samples: int, *, name: str = "y", min_per_class: int = 1, why: str = ""
):
    """Class labels for a classifier: ``(classes, encoded y, is_multilabel)``.

    ``y`` is single-label (ints or strings) or a 0/1 multi-label indicator matrix;
    ``encoded`` holds class indices into ``classes`` (single-label) or the 0/1 matrix
    (multi-label, with ``classes = arange(n_labels)``). At least two classes, and
    ``min_per_class`` examples of each, are required (``why`` is added to that message).

    Examples
    --------
    >>> classes, encoded, multilabel = check_class_labels(["b", "a", "b"], 3)
    >>> classes.tolist(), encoded.tolist(), multilabel
    (['a', 'b'], [1, 0, 1], False)
    """
    from sklearn.utils.multiclass import type_of_target

    array = check_labels(y, n_samples, name=name, multilabel=True)
    target_type = type_of_target(array)
    if target_type == "multilabel-indicator":
        indicator = array.astype(int)
        if indicator.shape[1] < 2:
            raise ValueError(f"A multi-label {name} needs at least two label columns.")
        return np.arange(indicator.shape[1]), indicator, True
    if target_type not in ("binary", "multiclass"):
        raise ValueError(
            f"{name} looks {target_type}; a classifier takes class labels (ints or strings) "
            "or a 0/1 multi-label indicator matrix."
        )
    classes, encoded = np.unique(array, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            f"{name} has a single class ({plain(classes[0])!r}); a classifier needs at least two."
        )
    counts = np.bincount(encoded)
    if counts.min() < min_per_class:
        rare, count = plain(classes[counts.argmin()]), counts.min()
        has = "a single example" if count == 1 else f"{count} examples"
        raise ValueError(
            f"class {rare!r} has {has}, fewer than the {min_per_class} needed{why}; add "
            "examples of it or drop the class."
        )
    return classes, encoded, False


def as_rows(X):
    """``X`` as something :func:`take_rows` can index by position (a generator is read once)."""
    if hasattr(X, "iloc") or isinstance(X, np.ndarray) or isinstance(X, (list, tuple)):
        return X
    if isinstance(X, (str, bytes)) or X is None or not isinstance(X, Iterable):
        raise TypeError(f"X must be a sequence of samples, got {type(X).__name__}.")
    return list(X)


def take_rows(X, positions):
    """The rows of ``X`` at ``positions`` (pandas by position, never by index label).

    A Series gives a list of its values, a DataFrame a DataFrame with a fresh index, a
    numpy array an array, anything else a list.
    """
    positions = np.asarray(positions, dtype=np.intp)
    if hasattr(X, "iloc"):
        rows = X.iloc[positions]
        return rows.tolist() if getattr(X, "ndim", 1) == 1 else rows.reset_index(drop=True)
    if isinstance(X, np.ndarray):
        return X[positions]
    return [X[i] for i in positions]
