"""HeadClassifier: the model's own head, checked against transformers' logits computed here."""

import io
import json
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, StratifiedKFold

import fewshot
from fewshot import DistilEmbedder, EmbeddingCache, HeadClassifier, load_model, save_model
from fewshot._estimator.head_calibration import fit_temperature
from fewshot.evaluation import expected_calibration_error
from fewshot.testing import make_tiny_distilbert, tiny_vocabulary

# Head classes in index order; deliberately unsorted and of mixed case.
SHARP_LABELS = ("positive", "Negative", "neutral")
SORTED = [1, 2, 0]  # head index of "negative", "neutral", "positive" (sorted user labels)


@pytest.fixture(scope="module")
def sharp_model(tmp_path_factory):
    """A tiny random 3-class DistilBERT whose head logits vary from text to text.

    A random tiny model's [CLS] state is dominated by the [CLS] and position embeddings,
    so its logits hardly depend on the text. Here those embeddings are zeroed (the [CLS]
    state then mixes the text's tokens) and the pre-classifier is re-centred and scaled
    on the [CLS] states of random texts, so logits differ by about a unit between texts.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = make_tiny_distilbert(tmp_path_factory.mktemp("sharp"), seed=1, labels=SHARP_LABELS)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    rng = np.random.default_rng(0)
    words = tiny_vocabulary()[5:200]
    sample = [" ".join(rng.choice(words, size=rng.integers(1, 8))) for _ in range(64)]
    with torch.no_grad():
        model.distilbert.embeddings.word_embeddings.weight[tokenizer.cls_token_id].zero_()
        model.distilbert.embeddings.position_embeddings.weight.zero_()
        states = model.distilbert(**tokenizer(sample, return_tensors="pt", padding=True))
        cls = states.last_hidden_state[:, 0]
        weight = model.pre_classifier.weight
        weight.div_(cls.std(0)[None, :])
        model.pre_classifier.bias.copy_(-weight @ cls.mean(0))
        model.classifier.weight.mul_(150)
        model.classifier.bias.zero_()
    model.save_pretrained(folder)
    return str(folder)


def reference_logits(folder, texts):
    """Logits of AutoModelForSequenceClassification, one text at a time (no padding)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    rows = []
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer(text, return_tensors="pt", truncation=True, max_length=128)
            rows.append(model(**encoded).logits[0].double().numpy())
    return np.stack(rows)


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


TEXTS = [
    "good",
    "bad",
    "the movie was great",
    "awful service",
    "",
    "fine",
    "i love it",
    "never again",
    "late delivery",
    "Ünïcödé text — naïve café ☕ 日本語",
    "the support staff were friendly and helpful",
    "it broke after a week",
]


@pytest.fixture(scope="module")
def ref(sharp_model):
    return reference_logits(sharp_model, TEXTS)


def labels_from(ref, wrong_every=4):
    """Sorted-label names of the head's argmax, with every ``wrong_every``-th one changed."""
    names = np.asarray(["positive", "negative", "neutral"])
    y = names[ref.argmax(axis=1)].copy()
    y[::wrong_every] = names[(ref.argmax(axis=1)[::wrong_every] + 1) % 3]
    return y


# -- probabilities against transformers ---------------------------------------------------


def test_zero_shot_probabilities_equal_softmax_of_transformers_logits(sharp_model, ref):
    clf = HeadClassifier(model=sharp_model, batch_size=3).fit(TEXTS)
    assert clf.classes_.tolist() == ["Negative", "neutral", "positive"]  # sorted id2label
    assert clf.head_indices_.tolist() == SORTED
    assert clf.head_labels_ == list(SHARP_LABELS)
    assert clf.temperature_ == 1.0
    X = TEXTS + TEXTS[:4] + ["good"]  # duplicates, and batches of 3 across them
    expected = softmax(np.vstack([ref, ref[:4], ref[:1]])[:, SORTED])
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert clf.predict(X).tolist() == clf.classes_[expected.argmax(axis=1)].tolist()
    assert len(set(clf.predict(TEXTS))) > 1  # the fixture's head is not constant


def test_fitted_probabilities_equal_softmax_of_logits_over_temperature(sharp_model, ref):
    y = labels_from(ref)
    clf = HeadClassifier(model=sharp_model, batch_size=5).fit(TEXTS, y)
    assert clf.classes_.tolist() == ["negative", "neutral", "positive"]
    assert clf.temperature_ != 1.0
    z = ref[:, SORTED] / clf.temperature_
    np.testing.assert_allclose(clf.predict_proba(TEXTS), softmax(z), atol=1e-5)
    np.testing.assert_allclose(clf.decision_function(TEXTS), z, atol=1e-5)
    assert clf.predict(TEXTS).tolist() == clf.classes_[z.argmax(axis=1)].tolist()
    # The fitted temperature is the minimum of the log-loss on the labelled texts.
    loss = [
        log_loss(y, softmax(ref[:, SORTED] / t), labels=clf.classes_)
        for t in clf.temperature_ * np.array([0.9, 1.0, 1.1])
    ]
    assert loss[1] < loss[0] and loss[1] < loss[2]


def test_logits_are_distil_embedders_head_columns_and_share_its_cache(sharp_model, tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    clf = HeadClassifier(model=sharp_model, cache=cache).fit(TEXTS)
    first = clf.predict_proba(TEXTS)
    assert len(cache) == len(set(TEXTS))
    logits = DistilEmbedder(model=sharp_model, layers=[], head="logits", cache=cache).fit_transform(
        TEXTS
    )
    assert len(cache) == len(set(TEXTS))  # served from the rows HeadClassifier stored
    np.testing.assert_allclose(softmax(logits[:, SORTED].astype(float)), first, atol=1e-6)
    np.testing.assert_array_equal(clf.predict_proba(TEXTS), first)


def test_onnx_backend_gives_the_same_probabilities(sharp_model, ref):
    pytest.importorskip("onnxruntime")
    clf = HeadClassifier(model=sharp_model, backend="onnx", n_threads=1).fit(TEXTS[:4])
    np.testing.assert_allclose(clf.predict_proba(TEXTS), softmax(ref[:, SORTED]), atol=1e-4)


# -- temperature ---------------------------------------------------------------------------


def _synthetic(n, rng, overconfidence=4.0):
    """Labels drawn from softmax(z) and logits ``overconfidence * z``: too sharp by that factor."""
    z = rng.normal(scale=1.5, size=(n, 3))
    p = softmax(z)
    y = np.array([rng.choice(3, p=row) for row in p])
    return overconfidence * z, y


def test_temperature_fit_repairs_overconfident_logits():
    rng = np.random.default_rng(0)
    train_logits, train_y = _synthetic(40, rng)  # a few-shot calibration set
    test_logits, test_y = _synthetic(5000, rng)
    T = fit_temperature(train_logits, train_y)
    assert 2.0 < T < 8.0  # the truth is 4
    raw, calibrated = softmax(test_logits), softmax(test_logits / T)
    assert log_loss(test_y, calibrated) < 0.8 * log_loss(test_y, raw)
    assert expected_calibration_error(test_y, calibrated) < 0.5 * expected_calibration_error(
        test_y, raw
    )
    assert fit_temperature(train_logits, train_y) == T  # deterministic


def test_estimator_fits_the_temperature_on_its_logits(tiny_model, monkeypatch):
    rng = np.random.default_rng(1)
    logits, y = _synthetic(2040, rng)
    logits, y = logits[:, :2], np.minimum(y, 1)  # two classes for the 2-class tiny head
    names = np.asarray(["NEGATIVE", "POSITIVE"])
    texts = [f"text {i}" for i in range(len(y))]
    rows = {text: row for text, row in zip(texts, logits)}
    monkeypatch.setattr(
        HeadClassifier, "_head_logits", lambda self, X: np.stack([rows[t] for t in X])
    )
    fitted = HeadClassifier(model=tiny_model).fit(texts[:40], names[y[:40]])
    raw = HeadClassifier(model=tiny_model, temperature=1.0).fit(texts[:40], names[y[:40]])
    assert fitted.temperature_ > 1.5 and raw.temperature_ == 1.0
    test, y_test = texts[40:], names[y[40:]]
    assert log_loss(y_test, fitted.predict_proba(test)) < log_loss(y_test, raw.predict_proba(test))
    assert expected_calibration_error(y_test, fitted.predict_proba(test)) < (
        expected_calibration_error(y_test, raw.predict_proba(test))
    )
    np.testing.assert_array_equal(fitted.predict(test), raw.predict(test))


def test_fixed_temperature_is_respected_and_zero_shot_stays_at_one(sharp_model, ref):
    y = labels_from(ref)
    clf = HeadClassifier(model=sharp_model, temperature=2.5).fit(TEXTS, y)
    assert clf.temperature_ == 2.5
    np.testing.assert_allclose(clf.predict_proba(TEXTS), softmax(ref[:, SORTED] / 2.5), atol=1e-5)
    assert HeadClassifier(model=sharp_model).fit(TEXTS).temperature_ == 1.0
    assert HeadClassifier(model=sharp_model, temperature=0.5).fit(TEXTS).temperature_ == 0.5


def test_a_temperature_on_its_bound_warns(sharp_model, ref):
    names = np.asarray(["positive", "negative", "neutral"])
    y = names[ref.argmax(axis=1)]  # every text right: sharper is always better
    with pytest.warns(ConvergenceWarning, match="reached its bound T=0.05"):
        clf = HeadClassifier(model=sharp_model).fit(TEXTS, y)
    assert clf.temperature_ == pytest.approx(0.05)


# -- label mapping ---------------------------------------------------------------------------


def test_labels_match_head_names_in_any_case(sharp_model, ref):
    y = np.asarray(["POSITIVE", "negative", "Neutral"] * 4)
    clf = HeadClassifier(model=sharp_model, temperature=1.0).fit(TEXTS, y)
    assert clf.classes_.tolist() == ["Neutral", "POSITIVE", "negative"]  # the user's labels
    assert clf.head_indices_.tolist() == [2, 0, 1]
    np.testing.assert_allclose(clf.predict_proba(TEXTS), softmax(ref[:, [2, 0, 1]]), atol=1e-5)


def test_integer_labels_are_head_indices(sharp_model, ref):
    clf = HeadClassifier(model=sharp_model, temperature=1.0).fit(TEXTS, [0, 1, 2] * 4)
    assert clf.classes_.tolist() == [0, 1, 2] and clf.head_indices_.tolist() == [0, 1, 2]
    np.testing.assert_allclose(clf.predict_proba(TEXTS), softmax(ref), atol=1e-5)
    assert clf.predict(TEXTS).tolist() == ref.argmax(axis=1).tolist()
    with pytest.raises(ValueError, match=r"match no class of the model's head: \[5\]"):
        HeadClassifier(model=sharp_model).fit(TEXTS, [0, 5] * 6)


def test_explicit_label_map(sharp_model, ref):
    label_map = {"good": "POSITIVE", "bad": 1}  # by name in any case, or by index
    clf = HeadClassifier(model=sharp_model, label_map=label_map, temperature=1.0)
    clf.fit(TEXTS, ["good", "bad"] * 6)
    assert clf.classes_.tolist() == ["bad", "good"] and clf.head_indices_.tolist() == [1, 0]
    np.testing.assert_allclose(clf.predict_proba(TEXTS), softmax(ref[:, [1, 0]]), atol=1e-5)
    # The map's keys are the classes even when y lacks one, and it renames a zero-shot fit.
    assert clf.fit(TEXTS[:2], ["good", "good"]).classes_.tolist() == ["bad", "good"]
    zero_shot = HeadClassifier(model=sharp_model, label_map=label_map).fit(TEXTS)
    assert set(zero_shot.predict(TEXTS)) <= {"bad", "good"}


def test_labels_covering_some_head_classes_renormalise_over_them(sharp_model, ref):
    y = np.asarray(["positive", "negative"] * 6)
    clf = HeadClassifier(model=sharp_model, temperature=1.5).fit(TEXTS, y)
    assert clf.classes_.tolist() == ["negative", "positive"]
    z = ref[:, [1, 0]] / 1.5
    np.testing.assert_allclose(clf.predict_proba(TEXTS), softmax(z), atol=1e-5)
    np.testing.assert_allclose(clf.decision_function(TEXTS), z[:, 1] - z[:, 0], atol=1e-5)


@pytest.mark.parametrize(
    ("params", "y", "message"),
    [
        (
            {},
            ["positive", "meh"] * 6,
            r"match no class of the model's head: \['meh'\]\. The head's classes are "
            r"0: 'positive', 1: 'Negative', 2: 'neutral'",
        ),
        ({}, [0.0, 1.0] * 6, r"match no class of the model's head: \[0\.0, 1\.0\]"),
        ({}, ["positive"] * 12, "single class"),
        (
            {"label_map": {"a": "positive", "b": "nope"}},
            ["a", "b"] * 6,
            r"label_map\['b'\] = 'nope' is not a class of the model's head",
        ),
        (
            {"label_map": {"a": "positive", "b": "neutral"}},
            ["a", "c"] * 6,
            r"y holds labels that label_map does not name: \['c'\]",
        ),
        (
            {"label_map": {"a": "positive", "b": 0}},
            ["a", "b"] * 6,
            r"labels \['a', 'b'\] all map to the head class 'positive'",
        ),
        ({}, ["positive", "POSITIVE"] * 6, r"all map to the head class 'positive'"),
        ({}, [[0, 1], [1, 0]] * 6, "one label per text"),
    ],
)
def test_labels_that_cannot_be_mapped_are_refused(sharp_model, params, y, message):
    with pytest.raises(ValueError, match=message):
        HeadClassifier(model=sharp_model, **params).fit(TEXTS, y)


# -- parameters and errors -------------------------------------------------------------------


def test_a_model_without_a_head_is_refused_with_the_alternatives(tiny_body_only):
    with pytest.raises(ValueError, match="has no sequence-classification head") as error:
        HeadClassifier(model=tiny_body_only).fit(["good"])
    assert "DistilEmbedder" in str(error.value) and "SetFitClassifier" in str(error.value)


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"temperature": 0}, ValueError, "temperature must be None or a finite float > 0"),
        ({"temperature": float("inf")}, ValueError, "finite float > 0"),
        ({"temperature": "hot"}, ValueError, "finite float > 0"),
        ({"label_map": ["a", "b"]}, TypeError, "label_map must be None or a dict"),
        ({"label_map": {"a": 0}}, ValueError, "at least two classes"),
        ({"label_map": {"a": 0, "b": 1.5}}, TypeError, r"label_map\['b'\] is 1.5"),
        ({"label_map": {"a": 0, 1: 1}}, TypeError, r"label_map's keys mix types \['int', 'str'\]"),
        ({"batch_size": 0}, ValueError, "batch_size must be an int >= 1"),
        ({"quantize": "int8"}, ValueError, "backend='onnx'"),
    ],
)
def test_bad_parameters_fail_in_fit_not_init(tiny_model, params, error, message):
    clf = HeadClassifier(model=tiny_model, **params)  # __init__ only stores
    with pytest.raises(error, match=message):
        clf.fit(["good", "bad"])


def test_fit_with_labels_needs_texts_and_predict_needs_fit(tiny_model):
    with pytest.raises(TypeError, match="no texts X"):
        HeadClassifier(model=tiny_model).fit(None, ["POSITIVE"])
    with pytest.raises(NotFittedError):
        HeadClassifier(model=tiny_model).predict(["good"])


def test_empty_input(tiny_model):
    clf = HeadClassifier(model=tiny_model).fit()
    assert clf.predict_proba([]).shape == (0, 2)
    assert clf.predict([]).shape == (0,)
    assert clf.decision_function([]).shape == (0,)


# -- scikit-learn -------------------------------------------------------------------------------


def test_tags_clone_and_no_set_output(tiny_model):
    clf = HeadClassifier(model=tiny_model, temperature=2.0, label_map={"n": 0, "p": 1})
    assert is_classifier(clf)
    tags = clf.__sklearn_tags__()
    assert tags.input_tags.string and not tags.input_tags.two_d_array
    copy = clone(clf.fit(["good"]))
    assert copy.get_params() == clf.get_params() and not hasattr(copy, "temperature_")
    # A classifier has no transform, so scikit-learn's set_output does not apply (documented).
    assert not hasattr(clf, "set_output") and not hasattr(clf, "transform")


def test_grid_search_over_temperature_picks_the_lowest_log_loss(sharp_model, ref):
    y = np.asarray(["negative", "neutral", "positive"] * 4)
    grid = [0.5, 1.0, 3.0]
    cv = StratifiedKFold(4, shuffle=True, random_state=0)  # every class in every test fold
    search = GridSearchCV(
        HeadClassifier(model=sharp_model), {"temperature": grid}, cv=cv, scoring="neg_log_loss"
    ).fit(TEXTS, y)
    classes = np.asarray(["negative", "neutral", "positive"])
    mean_loss = []
    for t in grid:  # the same folds, computed here from transformers' logits
        losses = [
            log_loss(y[test], softmax(ref[test][:, SORTED] / t), labels=classes)
            for train, test in cv.split(TEXTS, y)
        ]
        mean_loss.append(np.mean(losses))
    np.testing.assert_allclose(-search.cv_results_["mean_test_score"], mean_loss, rtol=1e-5)
    assert search.best_params_["temperature"] == grid[int(np.argmin(mean_loss))]
    assert search.best_estimator_.temperature_ == search.best_params_["temperature"]


def test_pickle_carries_no_weights_and_reloads_the_model(sharp_model, ref):
    clf = HeadClassifier(model=sharp_model).fit(TEXTS, labels_from(ref))
    blob = pickle.dumps(clf)
    modules = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            modules.add(module)
            return super().find_class(module, name)

    fewshot.clear_caches()  # the copy must load the model again by itself
    copy = Recorder(io.BytesIO(blob)).load()
    assert len(blob) < 5_000  # parameters and a few fitted numbers, no weights
    assert not [m for m in modules if m.split(".")[0] in ("torch", "transformers", "safetensors")]
    assert copy.temperature_ == clf.temperature_
    np.testing.assert_array_equal(copy.classes_, clf.classes_)
    np.testing.assert_allclose(copy.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-7)


# -- model folders ---------------------------------------------------------------------------


def test_save_model_and_load_model_round_trip(sharp_model, ref, tmp_path):
    label_map = {0: "positive", 1: "negative"}  # int keys survive the JSON manifest
    y = (ref[:, 1] > ref[:, 0]).astype(int)
    y[::4] = 1 - y[::4]  # some wrong, so the temperature is inside its bounds
    clf = HeadClassifier(model=sharp_model, label_map=label_map, batch_size=4).fit(TEXTS, y)
    folder = save_model(clf, tmp_path / "head")
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert "encoder/model.safetensors" in files and "fewshot.json" in files
    assert not [f for f in files if f.endswith((".pkl", ".skops", ".bin"))]
    manifest = json.loads((folder / "fewshot.json").read_text())
    assert manifest["kind"] == "head" and manifest["classes"] == [0, 1]
    assert manifest["fitted"]["temperature"] == clf.temperature_

    loaded = load_model(folder)
    assert isinstance(loaded, HeadClassifier) and loaded.label_map == label_map
    assert loaded.batch_size == 4 and loaded.temperature_ == clf.temperature_
    assert loaded.classes_.tolist() == [0, 1] and loaded.classes_.dtype.kind == "i"
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-6)
    assert loaded.predict(TEXTS).tolist() == clf.predict(TEXTS).tolist()


def test_load_model_keeps_the_trust_rule(sharp_model, tiny_model, tmp_path):
    clf = HeadClassifier(model=sharp_model, trust_remote_code=True).fit()
    folder = save_model(clf, tmp_path / "trusting")
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        load_model(folder)
    assert load_model(folder, trust_remote_code=True).classes_.tolist() == clf.classes_.tolist()
    plain_folder = save_model(HeadClassifier(model=sharp_model).fit(), tmp_path / "plain")
    with pytest.raises(ValueError, match="is not the encoder"):
        load_model(plain_folder, model=tiny_model)


def test_exported_from_the_package():
    assert "HeadClassifier" in fewshot.__all__ and fewshot.HeadClassifier is HeadClassifier


def test_doctest_style_zero_shot_on_the_two_class_tiny_model(tiny_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warnings on the plain path
        clf = HeadClassifier(model=tiny_model).fit(["good", "bad"])
    assert clf.classes_.tolist() == ["NEGATIVE", "POSITIVE"]
    assert clf.predict(["great"])[0] in {"NEGATIVE", "POSITIVE"}
