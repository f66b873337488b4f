import numpy as np
import pandas as pd
import pytest

from fewshot import DistilEmbedder
from fewshot._estimator.validation import check_texts


@pytest.mark.parametrize(
    "make",
    [
        lambda t: list(t),
        lambda t: tuple(t),
        lambda t: np.asarray(t),
        lambda t: np.asarray(t, dtype=object),
        lambda t: pd.Series(t, index=[10 * i for i in range(len(t))]),
        lambda t: pd.DataFrame({"text": t}),
        lambda t: np.asarray(t, dtype=object).reshape(-1, 1),
        lambda t: iter(t),
    ],
    ids=["list", "tuple", "str-array", "object-array", "series", "dataframe", "column", "iterator"],
)
def test_accepted_inputs_give_plain_strings_in_order(make):
    texts = ["first", "", "drei ✓", "4"]
    result = check_texts(make(texts))
    assert result == texts
    assert all(type(t) is str for t in result)


@pytest.mark.parametrize(
    "X, error, message",
    [
        (None, TypeError, "X is None"),
        ("one text", TypeError, "single str"),
        (b"bytes", TypeError, "single bytes"),
        (42, TypeError, "X is int"),
        ({"a", "b"}, TypeError, "has no order"),
        (["ok", None], TypeError, r"X\[1\] is NoneType None.*fillna"),
        (["ok", "fine", float("nan")], TypeError, r"X\[2\] is float nan"),
        ([b"raw"], TypeError, r"X\[0\] is bytes.*decode"),
        (["a", 3], TypeError, r"X\[1\] is int 3"),
        ([["nested", "list"]], TypeError, r"X\[0\] is list.*Nested"),
        (np.array([["a", "b"], ["c", "d"]]), ValueError, "2 columns"),
        (pd.DataFrame({"a": ["x"], "b": ["y"]}), ValueError, "2 columns"),
        (pd.Series(["a", None]), TypeError, r"X\[1\] is (NoneType|float nan).*fillna"),
        (np.zeros((2, 2, 2)), ValueError, "3 dimensions"),
    ],
    ids=[
        "none",
        "str",
        "bytes",
        "int",
        "set",
        "none-item",
        "nan-item",
        "bytes-item",
        "number-item",
        "nested",
        "2d-array",
        "2-col-frame",
        "series-none",
        "3d",
    ],
)
def test_bad_inputs_name_the_problem(X, error, message):
    with pytest.raises(error, match=message):
        check_texts(X)


def test_empty_not_allowed_when_asked():
    with pytest.raises(ValueError, match="empty"):
        check_texts([], allow_empty=False)


@pytest.mark.parametrize("method", ["fit", "transform", "fit_transform"])
def test_embedder_rejects_bad_input_before_loading(method, monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError("the model must not be loaded for bad input")

    monkeypatch.setattr("fewshot._core.loading._load", no_load)
    with pytest.raises(TypeError, match=r"X\[1\] is NoneType"):
        getattr(DistilEmbedder(), method)(["fine", None])
