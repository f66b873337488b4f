"""Pictures: rendered with Agg to files, checked for what was drawn."""

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from fewshot import DistilEmbedder
from fewshot.data import load_customer_feedback
from fewshot.viz import plot_before_after, plot_embeddings, plot_layers

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def feedback():
    texts, topics = load_customer_feedback(return_X_y=True)
    return texts[::2], np.asarray(topics[::2])  # 40 texts, 10 per topic


def _points(ax):
    return sum(len(c.get_offsets()) for c in ax.collections)


def _colour_by_label(ax):
    """{legend label: the one face colour of its points} for one Axes."""
    colours = {}
    for collection in ax.collections:
        faces = {tuple(np.round(c, 4)) for c in collection.get_facecolor()}
        assert len(faces) == 1, "each class is drawn in a single colour"
        colours[collection.get_label()] = faces.pop()
    return colours


def _saved(fig, path):
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def test_plot_embeddings_draws_every_point_one_colour_per_class(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 8))
    y = np.array(["b", "a", "c"] * 10)
    ax = plot_embeddings(X, y, method="pca", random_state=0)
    _saved(ax.figure, tmp_path / "pca.png")
    assert _points(ax) == 30
    colours = _colour_by_label(ax)
    assert sorted(colours) == ["a", "b", "c"]
    assert len(set(colours.values())) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    assert ax.get_title() == "PCA of 30 points"
    assert ax.get_xlabel() == "PCA 1"
    # The points are where PCA puts them, per class.
    expected = PCA(n_components=2, random_state=0).fit_transform(X)
    a = next(c for c in ax.collections if c.get_label() == "a")
    np.testing.assert_allclose(a.get_offsets(), expected[y == "a"], atol=1e-6)


def test_target_names_name_integer_labels_and_no_labels_means_no_legend():
    X = np.random.default_rng(1).normal(size=(12, 4))
    ax = plot_embeddings(X, [0, 1, 1, 0] * 3, method="pca", target_names=["negative", "positive"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["negative", "positive"]
    ax = plot_embeddings(X, [0, 1, 1, 0] * 3, method="pca", target_names={1: "yes"})
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "yes"]
    ax = plot_embeddings(X, method="pca", title="plain")
    assert ax.get_legend() is None and _points(ax) == 12 and ax.get_title() == "plain"


def test_method_none_plots_coordinates_as_given_on_a_given_axes():
    fig, axes = plt.subplots(1, 2)
    Z = np.arange(12, dtype=float).reshape(6, 2)
    returned = plot_embeddings(Z, [0, 0, 0, 1, 1, 1], method=None, ax=axes[1])
    assert returned is axes[1] and _points(axes[0]) == 0
    offsets = np.vstack([c.get_offsets() for c in axes[1].collections])
    np.testing.assert_allclose(offsets, Z)


def test_texts_with_an_embedder_and_umap_are_deterministic(tiny_model, feedback, tmp_path):
    texts, topics = feedback
    embedder = DistilEmbedder(model=tiny_model, layers=3)
    first = plot_embeddings(texts, topics, embedder=embedder, random_state=0)
    _saved(first.figure, tmp_path / "umap.png")
    second = plot_embeddings(texts, topics, embedder=embedder, random_state=0)
    assert first.get_title() == "UMAP of 40 points" and _points(first) == 40
    for a, b in zip(first.collections, second.collections):
        np.testing.assert_array_equal(a.get_offsets(), b.get_offsets())
    # t-SNE is accepted too, on the same texts.
    ax = plot_embeddings(texts, topics, embedder=embedder, method="tsne", random_state=0)
    assert ax.get_title() == "t-SNE of 40 points" and _points(ax) == 40


@pytest.mark.parametrize(
    "X, kwargs, error, match",
    [
        (np.zeros((5, 3)), {"method": None}, ValueError, "needs 2 columns"),
        (np.zeros((5, 3)), {"method": "mds"}, ValueError, "choose one of"),
        (np.zeros((3, 3)), {"method": "umap"}, ValueError, "at least 4 points"),
        (np.zeros((5, 3)), {"method": object()}, TypeError, "fit_transform"),
        (np.zeros((5, 3)), {"y": [0, 1]}, ValueError, "one label per point"),
        (np.zeros(5), {}, ValueError, "2-D array"),
        (["fine", None], {}, TypeError, "must be a str"),
    ],
)
def test_plot_embeddings_rejects_bad_input(X, kwargs, error, match):
    with pytest.raises(error, match=match):
        plot_embeddings(X, **kwargs)


def test_plot_layers_one_panel_per_layer_from_one_forward_pass(tiny_model, feedback, tmp_path):
    from fewshot._core.loading import get_model

    texts, topics = feedback
    body = get_model(tiny_model).body
    calls = []
    handle = body.register_forward_pre_hook(lambda *args: calls.append(1))
    try:
        fig = plot_layers(texts, topics, model=tiny_model, random_state=0)
    finally:
        handle.remove()
    _saved(fig, tmp_path / "layers.png")
    assert len(calls) == 2  # 40 texts in batches of 32, all 7 layers at once
    assert len(fig.axes) == 7  # the eighth grid cell is removed
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("layer 0 (embeddings) · silhouette ")
    assert [t.split(" ·")[0] for t in titles[1:]] == [f"layer {i}" for i in range(1, 7)]
    assert all(_points(ax) == 40 for ax in fig.axes)
    colours = [_colour_by_label(ax) for ax in fig.axes]
    assert all(c == colours[0] for c in colours)  # a class keeps its colour in every panel
    assert len(set(colours[0].values())) == 4
    assert len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == sorted(set(topics))
    assert "UMAP per layer" in fig._suptitle.get_text()


def test_plot_layers_without_labels_and_with_an_embedder_template(tiny_model, feedback):
    texts, _ = feedback
    template = DistilEmbedder(model=tiny_model, batch_size=4, max_length=16)
    fig = plot_layers(texts, model=template, layers=[1, -1], pooling="max", method="pca", ncols=1)
    assert [ax.get_title() for ax in fig.axes] == ["layer 1", "layer 6"]
    assert not fig.legends
    assert "max pooling" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="ncols"):
        plot_layers(texts, model=tiny_model, ncols=0)


class _FineTuned(BaseEstimator):
    """Stands in for a fitted SetFitClassifier: its 'fine-tuned' embeddings are the labels."""

    def __init__(self, *, model=None, layer=-1, pooling="mean", max_length=256):
        self.model = model
        self.layer = layer
        self.pooling = pooling
        self.max_length = max_length

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def transform(self, X):
        rng = np.random.default_rng(0)
        onehot = (np.asarray(self.labels_for_test_)[:, None] == self.classes_).astype(np.float32)
        return onehot + 0.01 * rng.normal(size=onehot.shape).astype(np.float32)


def test_plot_before_after_shows_pretrained_and_fine_tuned_bodies(tiny_model, feedback, tmp_path):
    texts, topics = feedback
    clf = _FineTuned(model=tiny_model, layer=4, pooling="cls").fit(texts, topics)
    clf.labels_for_test_ = topics
    fig = plot_before_after(clf, texts, topics, method="pca", random_state=0)
    _saved(fig, tmp_path / "before_after.png")
    before, after = fig.axes
    assert before.get_title().startswith("pretrained · layer 4, cls pooling")
    assert after.get_title().startswith("fine-tuned (SetFit) · layer 4, cls pooling")
    assert _points(before) == _points(after) == 40
    assert _colour_by_label(before) == _colour_by_label(after)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == sorted(set(topics))
    # Left: the pretrained body as DistilEmbedder embeds it with clf's layer and pooling.
    pretrained = DistilEmbedder(model=tiny_model, layers=4, pooling="cls").transform(texts)
    expected = PCA(n_components=2, random_state=0).fit_transform(pretrained)
    billing = next(c for c in before.collections if c.get_label() == "billing")
    np.testing.assert_allclose(billing.get_offsets(), expected[topics == "billing"], atol=1e-4)
    # The separated "fine-tuned" classes show in the silhouette numbers.
    silhouettes = [float(ax.get_title().rsplit(" ", 1)[1]) for ax in (before, after)]
    assert silhouettes[1] > 0.9 > silhouettes[0]


def test_plot_before_after_needs_a_fitted_setfit_like_classifier(tiny_model, feedback):
    texts, topics = feedback
    with pytest.raises(NotFittedError):
        plot_before_after(_FineTuned(model=tiny_model), texts, topics)
    with pytest.raises(TypeError, match="has no 'layer'"):
        plot_before_after(DistilEmbedder(model=tiny_model), texts, topics)


def test_embedder_and_umap_chain_in_a_pipeline(tiny_model, feedback):
    import umap

    texts, _ = feedback
    pipe = Pipeline(
        [
            ("embed", DistilEmbedder(model=tiny_model, layers=2)),
            ("umap", umap.UMAP(n_neighbors=5, random_state=0, n_jobs=1)),
        ]
    )
    Z = pipe.fit_transform(texts)
    assert Z.shape == (40, 2) and np.isfinite(Z).all()
    again = Pipeline(
        [
            ("embed", DistilEmbedder(model=tiny_model, layers=2)),
            ("umap", umap.UMAP(n_neighbors=5, random_state=0, n_jobs=1)),
        ]
    ).fit_transform(texts)
    np.testing.assert_allclose(again, Z)
    new = pipe.transform(["the delivery was late", "refund my money"])
    assert new.shape == (2, 2) and np.isfinite(new).all()
    ax = plot_embeddings(Z, method=None)
    assert _points(ax) == 40


def test_palette_gives_distinct_colours_beyond_ten_classes():
    X = np.random.default_rng(2).normal(size=(60, 5))
    y = np.repeat(np.arange(15), 4)
    colours = _colour_by_label(plot_embeddings(X, y, method="pca"))
    assert len(set(colours.values())) == 15
    assert (
        colours["0"][:3] == tuple(np.round(to_rgba(matplotlib.colormaps["tab20"].colors[0]), 4))[:3]
    )


def test_continuous_labels_get_a_colour_bar_not_a_legend():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 5)), rng.uniform(0, 10, size=60)
    ax = plot_embeddings(X, y, method="pca", random_state=0)
    assert ax.get_legend() is None
    assert len(ax.figure.axes) == 2  # the plot and its colour bar
    plt.close(ax.figure)


def test_many_classes_cap_the_legend():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(90, 5)), [f"class {i}" for i in range(30)] * 3
    ax = plot_embeddings(X, y, method="pca", random_state=0)
    entries = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(entries) == 12 and entries[-1] == "... and 19 more"
    plt.close(ax.figure)


def test_probe_legend_sits_outside_the_axes(tiny_model):
    from fewshot import probe_layers
    from fewshot.viz import plot_probe

    texts, topics = load_customer_feedback(return_X_y=True)
    ax = plot_probe(probe_layers(texts, topics, model=tiny_model, layers=[0, 6], cv=2))
    ax.figure.canvas.draw()
    legend_box = ax.get_legend().get_window_extent()
    assert legend_box.x0 >= ax.get_window_extent().x1  # never over the error bars
    plt.close(ax.figure)
