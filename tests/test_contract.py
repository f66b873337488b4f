"""The scikit-learn estimator contract, for every public estimator.

``sklearn.utils.estimator_checks.check_estimator`` skips almost everything for
estimators that take strings, so these checks are ours. A new estimator is covered by
adding one entry to ``ESTIMATORS``.
"""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from fewshot import DistilEmbedder, HeadClassifier, SetFitClassifier
from fewshot.setfit import LoRA

TEXTS = ["love it", "great value", "works well", "broke fast", "awful", "hate it", "fine"]
LABELS = ["pos", "pos", "pos", "neg", "neg", "neg", "pos"]


def _distil(model):
    return DistilEmbedder(model=model, layers=[2, 4], batch_size=3)


def _setfit(model):
    return SetFitClassifier(model=model, layer=3, n_iterations=1, random_state=0)


def _setfit_lora(model):
    pytest.importorskip("peft")
    return SetFitClassifier(
        model=model, layer=3, n_iterations=1, random_state=0, adapter=LoRA(rank=2)
    )


def _head(model):
    # The tiny model's head classes are NEGATIVE / POSITIVE; LABELS are neg / pos.
    return HeadClassifier(model=model, label_map={"neg": "NEGATIVE", "pos": 1}, batch_size=3)


# name -> (factory(model folder), needs labels, is a transformer)
ESTIMATORS = {
    "DistilEmbedder": (_distil, False, True),
    "SetFitClassifier": (_setfit, True, True),
    "SetFitClassifier-lora": (_setfit_lora, True, True),
    "HeadClassifier": (_head, True, False),
}


def _fit(estimator, needs_labels):
    return estimator.fit(TEXTS, LABELS) if needs_labels else estimator.fit(TEXTS)


def _output(estimator, texts=TEXTS):
    if hasattr(estimator, "predict_proba"):
        return np.asarray(estimator.predict_proba(texts))
    return np.asarray(estimator.transform(texts))


@pytest.fixture(params=sorted(ESTIMATORS))
def case(request, tiny_model):
    factory, needs_labels, is_transformer = ESTIMATORS[request.param]
    return factory(tiny_model), needs_labels, is_transformer


def test_init_only_stores_and_get_set_params_round_trip(case):
    estimator, _, _ = case
    params = estimator.get_params(deep=False)
    again = type(estimator)(**params)
    assert again.get_params(deep=False) == params
    assert estimator.set_params(**params) is estimator
    assert estimator.get_params(deep=False) == params


def test_no_fitted_attribute_before_fit(case):
    estimator, _, _ = case
    fitted = [name for name in vars(estimator) if name.endswith("_") and not name.startswith("_")]
    assert fitted == []


def test_fit_changes_no_parameter_and_returns_self(case):
    estimator, needs_labels, _ = case
    before = pickle.dumps(estimator.get_params(deep=False))
    assert _fit(estimator, needs_labels) is estimator
    assert pickle.dumps(estimator.get_params(deep=False)) == before
    assert any(name.endswith("_") for name in vars(estimator))


def test_fit_is_idempotent(case):
    estimator, needs_labels, _ = case
    first = _output(_fit(estimator, needs_labels))
    second = _output(_fit(estimator, needs_labels))
    np.testing.assert_allclose(first, second, atol=1e-6)


def test_clone_is_unfitted_and_fits_the_same(case):
    estimator, needs_labels, _ = case
    fitted = _fit(estimator, needs_labels)
    fresh = clone(fitted)
    assert not [n for n in vars(fresh) if n.endswith("_") and not n.startswith("_")]
    np.testing.assert_allclose(_output(_fit(fresh, needs_labels)), _output(fitted), atol=1e-6)


def test_pickle_round_trip(case):
    estimator, needs_labels, _ = case
    fitted = _fit(estimator, needs_labels)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(_output(restored), _output(fitted), atol=1e-6)


def test_feature_names_and_pandas_output(case):
    estimator, needs_labels, is_transformer = case
    if not is_transformer:
        pytest.skip("not a transformer")
    fitted = _fit(estimator, needs_labels)
    names = fitted.get_feature_names_out()
    X = fitted.transform(TEXTS)
    assert len(names) == X.shape[1] and len(set(names)) == len(names)
    frame = fitted.set_output(transform="pandas").transform(pd.Series(TEXTS, index=range(50, 57)))
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == list(names)
    np.testing.assert_allclose(frame.to_numpy(), X, atol=1e-6)
    fitted.set_output(transform="default")


def test_empty_input_gives_empty_output(case):
    estimator, needs_labels, _ = case
    fitted = _fit(estimator, needs_labels)
    assert _output(fitted, []).shape[0] == 0
    if hasattr(fitted, "predict"):
        assert fitted.predict([]).shape == (0,)
