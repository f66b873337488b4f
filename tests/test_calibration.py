"""Calibration for every fewshot classifier: scikit-learn's own tools, ECE/Brier, the diagram."""

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC
from test_head_classifier import TEXTS, labels_from, reference_logits, sharp_model  # noqa: F401

from fewshot import DistilEmbedder, HeadClassifier, SetFitClassifier
from fewshot.data import load_customer_feedback, sample_per_class
from fewshot.evaluation import evaluate_few_shot, expected_calibration_error, summarize
from fewshot.viz import plot_calibration

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def sentiment():
    """12 training and 20 other demo texts, labelled by tone (positive / negative)."""
    data = load_customer_feedback()
    tone = np.asarray(data.sentiment)
    pos, neg = np.flatnonzero(tone == "positive"), np.flatnonzero(tone == "negative")
    train = np.concatenate([pos[:6], neg[:6]])
    other = np.concatenate([pos[6:16], neg[6:16]])
    text = np.asarray(data.text, dtype=object)
    return list(text[train]), tone[train], list(text[other]), tone[other]


def _check_calibrated(clf, X_cal, y_cal, X_eval, method):
    """Calibrate a fitted binary classifier with scikit-learn; return both probabilities."""
    calibrated = CalibratedClassifierCV(FrozenEstimator(clf), method=method).fit(X_cal, y_cal)
    assert calibrated.classes_.tolist() == clf.classes_.tolist()
    before, after = clf.predict_proba(X_eval)[:, 1], calibrated.predict_proba(X_eval)[:, 1]
    assert not np.allclose(before, after, atol=1e-3)  # the probabilities changed
    order = np.argsort(before, kind="stable")
    assert np.all(np.diff(after[order]) >= -1e-12)  # ... but not their order
    return calibrated, before, after


@pytest.mark.parametrize("method", ["temperature", "sigmoid"])
def test_calibrated_classifier_cv_on_a_fitted_setfit_classifier(tiny_model, sentiment, method):
    X, y, X_other, _ = sentiment
    clf = SetFitClassifier(model=tiny_model, n_iterations=1, random_state=0).fit(X, y)
    # Calibrating on the training texts only keeps the test fast; use held-out texts in practice.
    calibrated, _, _ = _check_calibrated(clf, X, y, X_other, method)
    if method == "temperature":  # a positive temperature keeps every binary decision
        assert calibrated.predict(X_other).tolist() == clf.predict(X_other).tolist()


@pytest.mark.parametrize("method", ["temperature", "sigmoid"])
def test_calibrated_classifier_cv_on_a_distil_embedder_pipeline(tiny_model, sentiment, method):
    X, y, X_other, _ = sentiment
    clf = Pipeline(
        [
            ("embed", DistilEmbedder(model=tiny_model, layers=3)),
            ("lr", LogisticRegression(max_iter=1000)),
        ]
    ).fit(X, y)
    _check_calibrated(clf, X, y, X_other, method)


@pytest.mark.filterwarnings("ignore:The least populated class")  # cv splits, unused when frozen
def test_head_classifier_temperature_equals_scikit_learns(sharp_model):  # noqa: F811
    ref = reference_logits(sharp_model, TEXTS)
    y = labels_from(ref)
    ours = HeadClassifier(model=sharp_model).fit(TEXTS, y)
    raw = HeadClassifier(model=sharp_model, temperature=1.0).fit(TEXTS, y)
    theirs = CalibratedClassifierCV(FrozenEstimator(raw), method="temperature").fit(TEXTS, y)
    np.testing.assert_allclose(theirs.predict_proba(TEXTS), ours.predict_proba(TEXTS), atol=1e-4)


# -- ECE and Brier ----------------------------------------------------------------------------


def _ece_by_hand(y, proba, classes, n_bins):
    """ECE with an explicit loop: bins (k/n, (k+1)/n], the first one also holding 0."""
    confidence = proba.max(axis=1)
    correct = classes[proba.argmax(axis=1)] == y
    total = 0.0
    for k in range(n_bins):
        low, high = k / n_bins, (k + 1) / n_bins
        inside = (confidence > low) & (confidence <= high)
        if k == 0:
            inside |= confidence == 0
        if inside.any():
            total += inside.sum() / len(y) * abs(correct[inside].mean() - confidence[inside].mean())
    return total


@pytest.mark.parametrize("n_bins", [15, 7])
def test_expected_calibration_error_matches_a_direct_computation(n_bins):
    rng = np.random.default_rng(0)
    classes = np.asarray(["a", "b", "c", "d"])
    proba = rng.dirichlet(np.full(4, 0.7), size=500)
    y = classes[rng.integers(0, 4, size=500)]
    expected = _ece_by_hand(y, proba, classes, n_bins)
    assert expected > 0.05
    assert expected_calibration_error(y, proba, n_bins=n_bins) == pytest.approx(expected)


def test_expected_calibration_error_inputs():
    y = np.asarray([0, 1, 1, 0, 1])
    p1 = np.asarray([0.2, 0.7, 0.9, 0.4, 0.3])
    two = np.column_stack([1 - p1, p1])
    assert expected_calibration_error(y, p1) == expected_calibration_error(y, two)
    # Columns in another order, named by classes=.
    assert expected_calibration_error(y, two[:, ::-1], classes=[1, 0]) == pytest.approx(
        expected_calibration_error(y, two)
    )
    assert expected_calibration_error([0, 1], [[0.5, 0.5], [0.5, 0.5]]) == 0.0  # 50 % right
    with pytest.raises(ValueError, match="pass classes="):
        expected_calibration_error([0, 1], [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    with pytest.raises(ValueError, match="n_bins must be an int >= 1"):
        expected_calibration_error(y, two, n_bins=0)


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(["x", "y", "z"], 30)
    X = rng.normal(size=(90, 2)) + np.repeat([[0, 0], [2, 0], [0, 2]], 30, axis=0)
    return X, y


def test_evaluate_few_shot_records_ece_and_brier():
    X, y = _blobs()
    runs = evaluate_few_shot(LogisticRegression(), X, y, X, y, n_per_class=4, seeds=[0, 1])
    X_s, y_s = sample_per_class(X, y, 4, random_state=1)
    model = LogisticRegression(random_state=1).fit(X_s, y_s)
    proba = model.predict_proba(X)
    row = runs.iloc[1]
    assert row["ece"] == pytest.approx(_ece_by_hand(y, proba, model.classes_, 15))
    assert row["brier"] == pytest.approx(brier_score_loss(y, proba, labels=model.classes_))

    table = summarize(runs)
    assert {"ece", "brier"} <= set(table.columns)
    assert table["ece"].iloc[0] == pytest.approx(runs["ece"].mean())
    assert table["brier"].iloc[0] == pytest.approx(runs["brier"].mean())


def test_no_probabilities_or_calibration_off_gives_nan():
    X, y = _blobs()
    svc = evaluate_few_shot(LinearSVC(), X, y, X, y, n_per_class=4, seeds=[0])
    off = evaluate_few_shot(
        LogisticRegression(), X, y, X, y, n_per_class=4, seeds=[0], calibration=False
    )
    assert svc[["ece", "brier"]].isna().all().all() and off[["ece", "brier"]].isna().all().all()
    old = pd.DataFrame(
        {
            "method": "m",
            "n_per_class": 8,
            "seed": [0, 1],
            "metric": "accuracy",
            "score": [0.5, 0.7],
            "fit_seconds": 1.0,
        }
    )  # runs saved before ECE existed
    assert summarize(old)[["ece", "brier"]].isna().all().all()


# -- the reliability diagram -------------------------------------------------------------------


def test_plot_calibration_draws_each_bin_and_names_the_ece():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, size=300)
    sharp = rng.dirichlet(np.full(3, 0.2), size=300)
    flat = np.full((300, 3), 1 / 3)
    ax = plot_calibration({"sharp": sharp, "flat": flat}, y=y, n_bins=10)
    lines = ax.get_lines()
    assert len(lines) == 3  # the diagonal and one line each
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    ece = expected_calibration_error(y, sharp, n_bins=10)
    assert labels == [
        "perfectly calibrated",
        f"sharp (ECE {ece:.3f})",
        f"flat (ECE {expected_calibration_error(y, flat, n_bins=10):.3f})",
    ]
    confidence, correct = sharp.max(axis=1), sharp.argmax(axis=1) == y
    xs, ys = [], []
    for k in range(10):
        inside = (confidence > k / 10) & (confidence <= (k + 1) / 10)
        if inside.any():
            xs.append(confidence[inside].mean())
            ys.append(correct[inside].mean())
    np.testing.assert_allclose(lines[1].get_xdata(), xs)
    np.testing.assert_allclose(lines[1].get_ydata(), ys)


def test_plot_calibration_of_classifiers_on_one_axes(tiny_model):
    X, y = _blobs()
    models = [LogisticRegression().fit(X, y), LogisticRegression(C=0.01).fit(X, y)]
    fig, ax = plt.subplots()
    assert plot_calibration(models, X, y, ax=ax) is ax
    labels = [t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()]
    assert labels == ["perfectly calibrated", "LogisticRegression", "LogisticRegression #2"]
    head = HeadClassifier(model=tiny_model).fit()
    texts, names = ["good", "bad", "great", "awful"], ["POSITIVE", "NEGATIVE"] * 2
    ax = plot_calibration(head, texts, names, title="head")
    assert ax.get_title() == "head"
    assert ax.get_legend().get_texts()[1].get_text().startswith("HeadClassifier (ECE ")


def test_plot_calibration_errors():
    X, y = _blobs()
    model = LogisticRegression().fit(X, y)
    with pytest.raises(TypeError, match="y is None"):
        plot_calibration(model, X)
    with pytest.raises(TypeError, match="X is None"):
        plot_calibration(model, y=y)
    with pytest.raises(ValueError, match="is empty"):
        plot_calibration([], X, y)
