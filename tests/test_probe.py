"""Layer probing: one forward pass, correct scores on shared folds, a sensible best choice."""

import dataclasses

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

from fewshot import DistilEmbedder, ProbeResult, probe_layers
from fewshot._core.encoding import encode
from fewshot._core.loading import get_model
from fewshot.data import load_customer_feedback

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def feedback():
    texts, topics = load_customer_feedback(return_X_y=True)
    return texts[::2], np.asarray(topics[::2])  # 40 texts, 10 per topic: keeps the CV fast


@pytest.fixture(scope="module")
def probed(tiny_model, feedback):
    texts, topics = feedback
    return probe_layers(texts, topics, model=tiny_model, cv=4, random_state=0)


class _ForwardCounter:
    """Counts forward calls of the shared model's encoder body."""

    def __init__(self, model):
        self.body = get_model(model).body
        self.calls = 0

    def __enter__(self):
        self.handle = self.body.register_forward_pre_hook(self._count)
        return self

    def _count(self, *args):
        self.calls += 1

    def __exit__(self, *exc):
        self.handle.remove()


def test_several_poolings_come_from_one_forward_pass_and_match_separate_embedders(
    tiny_model, texts, spec_of
):
    loaded = get_model(tiny_model)
    spec = dataclasses.replace(
        spec_of(tiny_model, layers=[0, 3, 6], max_length=128), pooling=("mean", "cls", "max")
    )
    with _ForwardCounter(tiny_model) as counter:
        together = encode(
            loaded, texts, spec, batch_size=len(texts), progress=False, n_threads=None
        )
    assert counter.calls == 1
    width = loaded.hidden_size
    assert together.shape == (len(texts), 9 * width)
    names = spec.feature_names(loaded)
    assert names[0] == "layer0_mean_0" and names[3 * width] == "layer0_cls_0"
    for p, pooling in enumerate(("mean", "cls", "max")):
        alone = DistilEmbedder(model=tiny_model, layers=[0, 3, 6], pooling=pooling).transform(texts)
        np.testing.assert_allclose(
            together[:, p * 3 * width : (p + 1) * 3 * width], alone, atol=1e-5
        )


def test_probe_runs_one_forward_pass_per_batch_for_all_layers_and_poolings(tiny_model, feedback):
    texts, topics = feedback
    embedder = DistilEmbedder(model=tiny_model, batch_size=8)
    with _ForwardCounter(tiny_model) as counter:
        result = probe_layers(
            texts, topics, model=embedder, cv=3, random_state=0, estimator=DummyClassifier()
        )
    assert counter.calls == len(texts) // 8  # 5 batches, not 5 x 7 layers x 3 poolings
    assert len(result.table) == 7 * 3


def test_table_is_tidy_and_ordered_by_layer_then_pooling(probed):
    table = probed.table
    assert list(table.columns) == ["layer", "pooling", "mean", "std"]
    assert table["layer"].tolist() == [layer for layer in range(7) for _ in range(3)]
    assert table["pooling"].tolist() == ["mean", "cls", "max"] * 7
    assert table["mean"].between(0, 1).all() and (table["std"] >= 0).all()
    assert len(probed.scores) == 7 * 3 * 4
    assert probed.n_splits == 4 and probed.scoring == "accuracy"
    assert probed.chance == pytest.approx(0.25)


def test_scores_equal_a_plain_cross_validation_on_the_same_folds(tiny_model, feedback, probed):
    texts, topics = feedback
    folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=0)
    for layer, pooling in [(2, "cls"), (6, "max")]:
        X = DistilEmbedder(model=tiny_model, layers=layer, pooling=pooling).transform(texts)
        expected = cross_val_score(LogisticRegression(max_iter=1000), X, topics, cv=folds)
        row = probed.table.query("layer == @layer and pooling == @pooling").iloc[0]
        assert row["mean"] == pytest.approx(expected.mean())
        assert row["std"] == pytest.approx(expected.std())


def test_best_is_the_highest_mean(probed):
    top = probed.table["mean"].max()
    assert probed.best["mean"] == pytest.approx(top)
    assert probed.best_params == {"layers": probed.best["layer"], "pooling": probed.best["pooling"]}
    DistilEmbedder(**probed.best_params)  # usable as is


def test_ties_go_to_the_shallower_layer_then_the_first_pooling():
    scores = pd.DataFrame(
        [
            (layer, pooling, fold, score)
            for layer, pooling, score in [
                (1, "mean", 0.5),
                (1, "cls", 0.9),
                (2, "mean", 0.9),
                (3, "cls", 0.9),
                (3, "mean", 0.9),
            ]
            for fold in range(2)
        ],
        columns=["layer", "pooling", "fold", "score"],
    )
    result = ProbeResult(scores=scores, model="m", scoring="accuracy", n_splits=2, chance=None)
    assert (result.best["layer"], result.best["pooling"]) == (1, "cls")
    scores = scores[scores["layer"] != 1]
    result = ProbeResult(scores=scores, model="m", scoring="accuracy", n_splits=2, chance=None)
    assert (result.best["layer"], result.best["pooling"]) == (2, "mean")


def test_same_random_state_gives_the_same_table(tiny_model, feedback, probed):
    texts, topics = feedback
    again = probe_layers(
        texts,
        topics,
        model=tiny_model,
        layers=[2, 5],
        poolings=("cls", "max"),
        cv=4,
        random_state=0,
    )
    expected = probed.table.query("layer in [2, 5] and pooling != 'mean'").reset_index(drop=True)
    pd.testing.assert_frame_equal(again.table, expected)


def test_custom_scoring_layers_and_estimator(tiny_model, feedback):
    texts, topics = feedback
    result = probe_layers(
        texts,
        topics,
        model=tiny_model,
        layers=[-1, 0],
        poolings="max",
        estimator=LogisticRegression(C=0.1, max_iter=500),
        cv=2,
        scoring="f1_macro",
        random_state=1,
    )
    assert result.table["layer"].tolist() == [0, 6]
    assert result.scoring == "f1_macro" and result.chance is None


def test_to_string_lists_every_layer_and_the_best(probed):
    text = probed.to_string()
    lines = text.splitlines()
    assert lines[1].split() == ["layer", "mean", "cls", "max"]
    assert [line.split()[0] for line in lines[2:9]] == [str(layer) for layer in range(7)]
    assert f"best: layer {probed.best['layer']}" in text
    assert "majority class: 0.250" in text
    assert "<table" in probed._repr_html_()


def test_plot_draws_one_line_per_pooling_with_error_bars(probed, tmp_path):
    ax = probed.plot()
    path = tmp_path / "probe.png"
    ax.figure.savefig(path)
    assert path.stat().st_size > 1000
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"mean", "cls", "max"} <= set(labels)
    assert f"best: layer {probed.best['layer']}, {probed.best['pooling']}" in labels
    assert "majority class" in labels
    bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(bars) == 3
    for bar in bars:
        assert len(bar.lines[0].get_xdata()) == 7  # one point per layer
    assert ax.get_xlabel() == "layer (0 = embeddings)"
    assert ax.get_ylabel() == "accuracy (4-fold CV)"
    assert ax.get_title().startswith("Layer probe")
    matplotlib.pyplot.close(ax.figure)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"y": ["a"] * 5}, ValueError, "texts has 40 texts but y has 5 labels"),
        ({"poolings": ("mean", "mean")}, ValueError, "same pooling twice"),
        ({"poolings": ("avg",)}, ValueError, "choose from"),
        ({"poolings": ()}, ValueError, "poolings is empty"),
        ({"cv": 30}, ValueError, "has only 10 texts but cv=30"),
        ({"cv": 1}, ValueError, "at least 2 folds"),
        ({"y": ["a"] * 40}, ValueError, "single class"),
        ({"model": 3}, TypeError, "model must be"),
        ({"layers": 9}, ValueError, "out of range"),
        ({"estimator": "lr"}, TypeError, "estimator must be"),
    ],
)
def test_bad_input_gives_a_clear_error(tiny_model, feedback, kwargs, error, match):
    texts, topics = feedback
    params = {"model": tiny_model, "y": topics, **kwargs}
    y = params.pop("y")
    with pytest.raises(error, match=match):
        probe_layers(texts, y, **params)


def test_normalize_scales_each_layer_on_its_own(tiny_model, feedback, monkeypatch):
    import fewshot.probe

    texts, topics = feedback
    seen = []

    def record(estimator, X, y, **kwargs):
        seen.append(X)
        return np.zeros(2)

    monkeypatch.setattr(fewshot.probe, "cross_val_score", record)
    template = DistilEmbedder(model=tiny_model, normalize=True)
    probe_layers(texts, topics, model=template, layers=[1, 5], poolings=("mean", "max"), cv=2)
    assert len(seen) == 4  # (mean, 1), (mean, 5), (max, 1), (max, 5)
    X = DistilEmbedder(model=tiny_model, layers=5, pooling="max", normalize=True).transform(texts)
    np.testing.assert_allclose(seen[3], X, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(seen[0], axis=1), 1, atol=1e-5)
