"""DistilEmbedder as a scikit-learn citizen: pipelines, search, clone, pickle, checks."""

import io
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils import estimator_checks as checks

from fewshot import DistilEmbedder, clear_model_cache
from fewshot._core import loading as _loading
from fewshot.data import load_customer_feedback


@pytest.fixture
def count_loads(monkeypatch):
    """Counts real model loads (the shared per-process copy is not reloaded)."""
    loads = []
    original = _loading._load

    def counting(*args, **kwargs):
        loads.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(_loading, "_load", counting)
    clear_model_cache()
    return loads


def test_pipeline_with_logistic_regression(tiny_model):
    texts, topics = load_customer_feedback(return_X_y=True)
    clf = Pipeline(
        [("embed", DistilEmbedder(model=tiny_model, layers=4)), ("lr", LogisticRegression())]
    )
    clf.fit(texts, topics)
    predicted = clf.predict(texts)
    assert predicted.shape == (80,) and set(predicted) <= set(topics)
    assert clf.predict_proba(texts[:3]).shape == (3, 4)


def test_feature_union_of_two_layers(tiny_model, texts):
    union = FeatureUnion(
        [
            ("l2", DistilEmbedder(model=tiny_model, layers=2)),
            ("l5", DistilEmbedder(model=tiny_model, layers=5)),
        ]
    )
    X = union.fit_transform(texts)
    both = DistilEmbedder(model=tiny_model, layers=[2, 5]).fit_transform(texts)
    np.testing.assert_allclose(X, both, atol=1e-6)
    assert list(union.get_feature_names_out()[[0, 32]]) == [
        "l2__layer2_mean_0",
        "l5__layer5_mean_0",
    ]


def test_grid_search_over_layers_and_C_loads_the_model_once(tiny_model, count_loads):
    texts, topics = load_customer_feedback(return_X_y=True)
    pipe = Pipeline(
        [("embed", DistilEmbedder(model=tiny_model)), ("lr", LogisticRegression(max_iter=500))]
    )
    search = GridSearchCV(pipe, {"embed__layers": [1, [3, 6]], "lr__C": [0.1, 1.0]}, cv=3)
    search.fit(texts, topics)
    assert search.best_params_["embed__layers"] in (1, [3, 6])
    assert len(search.cv_results_["mean_test_score"]) == 4
    assert count_loads == [tiny_model]


def test_clone_get_params_and_repr_do_not_load(tiny_model, count_loads):
    embedder = DistilEmbedder(model=tiny_model, layers=[1, 2], pooling="max", head="proba")
    copy = clone(embedder)
    assert copy.get_params() == embedder.get_params()
    assert "pooling='max'" in repr(embedder)
    copy.set_params(layers=3)
    assert copy.layers == 3 and embedder.layers == [1, 2]
    assert count_loads == []


@pytest.mark.parametrize("dump, load", [(pickle.dumps, pickle.loads), ("joblib", "joblib")])
def test_pickle_keeps_parameters_not_weights(tiny_model, minilm_path, texts, dump, load):
    embedder = DistilEmbedder(model=minilm_path, layers=[3, 6]).fit(texts)
    X = embedder.transform(texts)
    if dump == "joblib":
        buffer = io.BytesIO()
        joblib.dump(embedder, buffer)
        payload = buffer.getvalue()
        restored = joblib.load(io.BytesIO(payload))
    else:
        payload = dump(embedder)
        restored = load(payload)
    assert len(payload) < 1_000_000  # the real model has ~90 MB of weights
    clear_model_cache()  # the copy must reload lazily by itself
    assert restored.layers_ == (3, 6)
    np.testing.assert_array_equal(restored.transform(texts), X)


def test_pandas_output(tiny_model):
    series = pd.Series(["good", "bad", "fine"], index=[7, 3, 9])
    embedder = DistilEmbedder(model=tiny_model, layers=[], head="proba").set_output(
        transform="pandas"
    )
    frame = embedder.fit_transform(series)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["head_proba_NEGATIVE", "head_proba_POSITIVE"]
    assert len(frame) == 3
    frame = embedder.transform(pd.DataFrame({"text": ["good", "bad"]}, index=[5, 6]))
    assert list(frame.index) == [5, 6]


def test_transform_without_fit_works_like_hashing_vectorizer(tiny_model, texts):
    fitted = DistilEmbedder(model=tiny_model, layers=2).fit(texts).transform(texts)
    np.testing.assert_array_equal(
        DistilEmbedder(model=tiny_model, layers=2).transform(texts), fitted
    )


def test_tags_say_text_input():
    tags = DistilEmbedder().__sklearn_tags__()
    assert tags.input_tags.string and not tags.input_tags.two_d_array
    assert tags.requires_fit is False


@pytest.mark.parametrize(
    "check",
    [
        checks.check_no_attributes_set_in_init,
        checks.check_get_params_invariance,
        checks.check_set_params,
        checks.check_estimator_cloneable,
        checks.check_estimator_repr,
        checks.check_do_not_raise_errors_in_init_or_set_params,
        checks.check_parameters_default_constructible,
    ],
    ids=lambda c: c.__name__,
)
def test_data_free_estimator_checks(check, count_loads):
    check("DistilEmbedder", DistilEmbedder())
    assert count_loads == []
