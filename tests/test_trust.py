"""Issue 10: inputs are read by position, and every first-hour edge has a clear answer."""

import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from fewshot import DistilEmbedder, SetFitClassifier, probe_layers
from fewshot._core.encoding import TruncationWarning
from fewshot._estimator.validation import check_labels
from fewshot.data import load_customer_feedback, sample_per_class
from fewshot.evaluation import evaluate_few_shot


@pytest.fixture(scope="module")
def table():
    texts, topics = load_customer_feedback(return_X_y=True)
    return pd.DataFrame({"text": texts, "label": topics})


def _truth(table):
    return dict(zip(table["text"], table["label"]))


# -- positional inputs (never again: wrong labels from a shuffled DataFrame) -----------


def test_sample_per_class_on_a_shuffled_frame_keeps_every_label(table):
    shuffled = table.sample(frac=1.0, random_state=3)  # index now 0..79 in a random order
    X, y = sample_per_class(shuffled.text, shuffled.label, 4, random_state=0)
    assert len(X) == 16
    truth = _truth(table)
    assert [truth[text] for text in X] == list(y)  # the exact attack: 10 of 16 were wrong


@pytest.mark.parametrize("index", ["strings", "floats", "split"])
def test_sample_per_class_with_non_integer_and_split_indexes(table, index):
    if index == "split":
        frame, _ = train_test_split(table, test_size=0.25, random_state=0, stratify=table.label)
    elif index == "strings":
        frame = table.set_axis([f"row-{i}" for i in range(len(table))])
    else:
        frame = table.set_axis(np.linspace(0.5, 99.5, len(table)))
    X, y = sample_per_class(frame["text"], frame["label"], 3, random_state=1)
    truth = _truth(table)
    assert [truth[text] for text in X] == list(y)


@pytest.mark.parametrize(
    "make",
    [
        list,
        tuple,
        lambda v: np.asarray(v, dtype=object),
        lambda v: np.asarray(v, dtype=str),
        lambda v: iter(list(v)),
        lambda v: pd.Series(v, index=range(len(v), 0, -1)),
    ],
    ids=["list", "tuple", "object-array", "str-array", "generator", "reversed-series"],
)
def test_every_container_is_read_by_position(table, make):
    X, y = sample_per_class(
        make(table.text.tolist()), make(table.label.tolist()), 2, random_state=0
    )
    truth = _truth(table)
    assert [truth[str(text)] for text in X] == [str(label) for label in y]


def test_int_labels_and_an_object_label_array_from_the_issue():
    X, y = sample_per_class(["a", "b", "c", "d"], np.array([1, 1, 0, 0]), 1, random_state=0)
    assert sorted(y.tolist()) == [0, 1]
    with pytest.raises(ValueError, match="class 'y' has 1 examples, fewer than the 2"):
        sample_per_class(["a", "b", "c"], np.array(["x", "x", "y"], dtype=object), 2)


def test_texts_and_labels_of_different_lengths_are_refused(table):
    with pytest.raises(ValueError, match="X has 80 rows but y has 79 labels"):
        sample_per_class(table.text, table.label[:79], 2)
    with pytest.raises(ValueError, match="X has 80 rows but y has 79 labels"):
        evaluate_few_shot(LogisticRegression(), table.text, table.label[:79], [], [], seeds=[0])


def test_evaluate_few_shot_with_series_from_train_test_split(tiny_model, table):
    train, test = train_test_split(table, test_size=0.5, random_state=0, stratify=table.label)
    clf = Pipeline(
        [
            ("embed", DistilEmbedder(model=tiny_model, layers=2)),
            ("lr", LogisticRegression(max_iter=500)),
        ]
    )
    runs = evaluate_few_shot(
        clf,
        train.text,
        train.label,
        test.text,
        test.label,
        n_per_class=2,
        seeds=[0, 1],
        scoring="balanced_accuracy",
    )
    assert runs["metric"].unique().tolist() == ["balanced_accuracy"]
    assert runs["score"].between(0, 1).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=30), st.randoms())
def test_check_labels_is_positional_whatever_the_index(labels, random):
    index = list(range(len(labels)))
    random.shuffle(index)
    assert check_labels(pd.Series(labels, index=index)).tolist() == labels


def test_setfit_and_probe_read_shuffled_series_by_position(tiny_model, table):
    shuffled = table.sample(frac=1.0, random_state=5)
    few = shuffled.groupby("label").head(3)
    clf = SetFitClassifier(model=tiny_model, n_iterations=1, random_state=0)
    clf.fit(few.text, few.label)
    reference = SetFitClassifier(model=tiny_model, n_iterations=1, random_state=0)
    reference.fit(few.text.tolist(), few.label.tolist())
    np.testing.assert_array_equal(
        clf.predict_proba(few.text), reference.predict_proba(list(few.text))
    )
    a = probe_layers(shuffled.text, shuffled.label, model=tiny_model, layers=[1], cv=2)
    b = probe_layers(
        shuffled.text.tolist(), shuffled.label.tolist(), model=tiny_model, layers=[1], cv=2
    )
    assert a.table.equals(b.table)


# -- edges -------------------------------------------------------------------------------


def test_fit_transform_reads_a_generator_once(tiny_model):
    texts = ["good", "bad", "fine"]
    embedder = DistilEmbedder(model=tiny_model, layers=2)
    X = embedder.fit_transform(text for text in texts)
    np.testing.assert_allclose(X, embedder.transform(texts), atol=1e-6)


def test_a_path_is_a_model(tiny_model):
    path = pathlib.Path(tiny_model)
    X = DistilEmbedder(model=path, layers=1).fit_transform(["ok"])
    assert X.shape == (1, 32)
    clf = SetFitClassifier(model=path, n_iterations=1, random_state=0).fit(
        ["a", "b", "c", "d"], [0, 0, 1, 1]
    )
    assert clf.predict(["a"]).shape == (1,)


def test_cuda_without_a_cuda_device_says_so(tiny_model):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(ValueError, match="no such CUDA device is available.*available: cpu"):
        DistilEmbedder(model=tiny_model, device="cuda").fit()


def test_a_regressor_head_is_refused_before_training(tiny_model, monkeypatch):
    monkeypatch.setattr("fewshot.setfit._fit.train_body", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(TypeError, match="is not a classifier"):
        SetFitClassifier(model=tiny_model, head=Ridge()).fit(["a", "b", "c", "d"], [0, 0, 1, 1])


def test_an_empty_cache_path_is_refused(tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="cache='' is an empty path"):
        DistilEmbedder(model=tiny_model, cache="").fit()
    assert list(tmp_path.iterdir()) == []


def test_a_failing_scorer_fails_loudly(tiny_model, table):
    with pytest.raises(ValueError, match="average"):  # binary f1 on four classes
        probe_layers(table.text, table.label, model=tiny_model, layers=[1], cv=2, scoring="f1")
    result = probe_layers(
        table.text, table.label, model=tiny_model, layers=[1], cv=2, scoring="f1_macro"
    )
    assert np.isfinite(result.table["mean"]).all()


def test_probe_is_deterministic_by_default(tiny_model, table):
    a = probe_layers(table.text, table.label, model=tiny_model, layers=[1, 2], cv=3)
    b = probe_layers(table.text, table.label, model=tiny_model, layers=[1, 2], cv=3)
    assert a.scores.equals(b.scores)


def test_truncation_warns_once_with_the_count(tiny_model):
    long = " ".join(["word"] * 300)
    embedder = DistilEmbedder(model=tiny_model, layers=1, max_length=16)
    with pytest.warns(TruncationWarning, match="2 of 3 texts .* long_text='chunk'") as record:
        embedder.transform([long, "short", long + " more"])
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DistilEmbedder(
            model=tiny_model, layers=1, max_length=16, long_text="chunk", stride=4
        ).transform([long])


def test_probe_with_a_cache_runs_no_forward_pass_the_second_time(
    tiny_model, table, tmp_path, monkeypatch
):
    import fewshot._core.encoding as encoding

    calls = []
    real = encoding.forward_layers

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(encoding, "forward_layers", counting)
    template = DistilEmbedder(model=tiny_model, cache=tmp_path / "cache")
    first = probe_layers(table.text, table.label, model=template, layers=[1, 3], cv=2)
    assert calls  # the first call embeds
    calls.clear()
    second = probe_layers(table.text, table.label, model=template, layers=[1, 3], cv=2)
    assert calls == [] and first.scores.equals(second.scores)


@pytest.mark.parametrize("spelling", ["batch_size", "inference_batch_size"])
def test_setfit_batch_size_is_texts_per_forward_pass(tiny_model, monkeypatch, spelling):
    import fewshot._core.encoding as encoding

    sizes = []
    real = encoding.forward_layers

    def recording(loaded, input_ids, *args, **kwargs):
        sizes.append(int(input_ids.shape[0]))
        return real(loaded, input_ids, *args, **kwargs)

    clf = SetFitClassifier(
        model=tiny_model, n_iterations=1, pairs_per_step=4, random_state=0, **{spelling: 3}
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(["a", "b", "c", "d", "e", "f"], [0, 0, 0, 1, 1, 1])
    renamed = [w for w in caught if issubclass(w.category, FutureWarning)]
    # The old name still acts, and says the new one; the new name says nothing.
    assert len(renamed) == (spelling == "inference_batch_size")
    monkeypatch.setattr(encoding, "forward_layers", recording)
    clf.transform(["one", "two", "three", "four", "five", "six", "seven"])
    assert sizes == [3, 3, 1]
