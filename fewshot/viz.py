"""Pictures of embeddings: 2-D projections coloured by label, layer grids, before/after.

Every function draws with matplotlib and returns what it drew on (an Axes, or a Figure
for multi-panel pictures), so a notebook shows it and a script can ``savefig`` it. The
same class always gets the same colour in every panel of a figure. Projections are
deterministic for a given ``random_state``.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import clone

from ._encoding import l2_normalize
from ._loading import DEFAULT_MODEL, short_model_name
from ._optional import require
from ._params import as_embedder, resolved_normalize
from ._validation import check_labels, check_texts
from .embedder import DistilEmbedder

__all__ = ["METHODS", "plot_before_after", "plot_embeddings", "plot_layers", "plot_probe"]

METHODS = ("umap", "pca", "tsne")
_METHOD_LABELS = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}


def _pyplot():
    return require("matplotlib.pyplot", extra="viz", feature="fewshot.viz (figures)")


# -- projection -----------------------------------------------------------------------


def _projector(method, n_samples: int, random_state):
    """A fresh 2-D projector for ``method`` sized for ``n_samples`` points."""
    if not isinstance(method, str):
        if not hasattr(method, "fit_transform"):
            raise TypeError(
                f"method must be one of {list(METHODS)}, None, or an object with "
                f"fit_transform (such as umap.UMAP(...)), got {method!r}."
            )
        return clone(method) if hasattr(method, "get_params") else method
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not valid; choose one of {list(METHODS)} or None.")
    minimum = 2 if method == "pca" else 4
    if n_samples < minimum:
        raise ValueError(
            f"method={method!r} needs at least {minimum} points to project, got {n_samples}."
        )
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=random_state)
    if method == "tsne":
        from sklearn.manifold import TSNE

        # Perplexity must stay below the number of points.
        perplexity = float(min(30.0, max(1.0, (n_samples - 1) / 3)))
        return TSNE(
            n_components=2, perplexity=perplexity, init="pca", metric="cosine",
            random_state=random_state,
        )
    umap = require("umap", extra="viz", feature="method='umap'")

    return umap.UMAP(
        n_components=2,
        n_neighbors=int(min(15, n_samples - 1)),
        metric="cosine",  # sentence embeddings compare by angle
        # Spectral initialisation breaks down on a handful of points.
        init="spectral" if n_samples > 10 else "random",
        random_state=random_state,
        # A seeded UMAP runs single-threaded anyway; saying so avoids its warning.
        n_jobs=1 if random_state is not None else -1,
    )


def _project(X, method, random_state) -> np.ndarray:
    if method is None:
        if X.shape[1] != 2:
            raise ValueError(
                f"method=None plots X as it is, so X needs 2 columns; it has {X.shape[1]}. "
                f"Use method='umap', 'pca' or 'tsne' to project it."
            )
        return X.astype(np.float64, copy=False)
    projector = _projector(method, X.shape[0], random_state)
    return np.asarray(projector.fit_transform(X), dtype=np.float64)


def _method_label(method) -> str:
    if method is None:
        return "embedding"
    if isinstance(method, str):
        return _METHOD_LABELS[method]
    return type(method).__name__


# -- labels and colours ---------------------------------------------------------------


def _classes(y) -> list:
    """The distinct labels, sorted when they can be."""
    distinct = list(dict.fromkeys(y.tolist()))
    try:
        return sorted(distinct)
    except TypeError:
        return distinct


def _label_name(label, target_names) -> str:
    if target_names is None:
        return str(label)
    if isinstance(target_names, dict):
        return str(target_names.get(label, label))
    if isinstance(label, (int, np.integer)) and 0 <= label < len(target_names):
        return str(target_names[label])
    return str(label)


# More distinct values than this in numeric labels means a quantity, not classes.
_MAX_CLASSES = 20
# Legends list at most this many classes, then "... and N more".
_MAX_LEGEND = 12


def _is_continuous(y) -> bool:
    """Numeric labels with fractions, or with more distinct values than classes would have."""
    if y is None or y.dtype.kind not in "fiu":
        return False
    distinct = np.unique(y)
    return len(distinct) > _MAX_CLASSES or (
        y.dtype.kind == "f" and not np.all(np.equal(np.mod(distinct, 1), 0))
    )


class _Continuous:
    """Colours for a continuous label: one colour map and its range (drawn with a colour bar)."""

    def __init__(self, y):
        matplotlib = require("matplotlib", extra="viz", feature="fewshot.viz")
        self.cmap = matplotlib.colormaps["viridis"]
        self.norm = matplotlib.colors.Normalize(vmin=float(np.min(y)), vmax=float(np.max(y)))
        self.mappable = matplotlib.cm.ScalarMappable(norm=self.norm, cmap=self.cmap)


def _colours_for(y):
    """``{}`` without labels, a :class:`_Continuous` for quantities, else a palette."""
    if y is None:
        return {}
    if _is_continuous(y):
        return _Continuous(y)
    return _palette(_classes(y))


def _legend_entries(ax):
    """Handles and labels of ``ax``, capped at ``_MAX_LEGEND`` classes."""
    handles, labels = ax.get_legend_handles_labels()
    if len(labels) > _MAX_LEGEND:
        from matplotlib.lines import Line2D

        extra = len(labels) - (_MAX_LEGEND - 1)
        handles = handles[: _MAX_LEGEND - 1] + [Line2D([], [], linestyle="none")]
        labels = labels[: _MAX_LEGEND - 1] + [f"... and {extra} more"]
    return handles, labels


def _palette(classes) -> dict:
    """One colour per class: tab10, tab20, then an evenly spaced colour map."""
    matplotlib = require("matplotlib", extra="viz", feature="fewshot.viz")

    n = len(classes)
    if n <= 10:
        colours = matplotlib.colormaps["tab10"].colors[:n]
    elif n <= 20:
        colours = matplotlib.colormaps["tab20"].colors[:n]
    else:
        colours = matplotlib.colormaps["turbo"](np.linspace(0.05, 0.95, n))
    return {label: tuple(matplotlib.colors.to_rgba(c)) for label, c in zip(classes, colours)}


def _check_labels(y, n_samples):
    """Labels for the colours (optional): one per point, by position."""
    return None if y is None else check_labels(y, n_samples, noun="point")


def _point_size(n_samples: int) -> float:
    return float(np.clip(3000.0 / max(n_samples, 1), 4.0, 40.0))


def _scatter(ax, Z, y, colours, target_names):
    size = _point_size(len(Z))
    if y is None:
        ax.scatter(Z[:, 0], Z[:, 1], s=size, color="tab:blue", alpha=0.85, linewidths=0)
        return
    if isinstance(colours, _Continuous):
        ax.scatter(Z[:, 0], Z[:, 1], s=size, c=y, cmap=colours.cmap, norm=colours.norm,
                   alpha=0.85, linewidths=0)
        return
    for label, colour in colours.items():
        mask = y == label
        if mask.any():
            ax.scatter(
                Z[mask, 0], Z[mask, 1], s=size, color=colour, alpha=0.85, linewidths=0,
                label=_label_name(label, target_names),
            )


def _style(ax, title, method):
    ax.set_xticks([])
    ax.set_yticks([])
    label = _method_label(method)
    ax.set_xlabel(f"{label} 1", fontsize="small")
    ax.set_ylabel(f"{label} 2", fontsize="small")
    if title:
        ax.set_title(title, fontsize="medium")


def _silhouette(X, y, random_state) -> float | None:
    """Cosine silhouette of the labels in the full feature space (None if undefined)."""
    from sklearn.metrics import silhouette_score

    if y is None or _is_continuous(y):
        return None
    n_classes = len(np.unique(y))
    if not 2 <= n_classes < len(y):
        return None
    return float(
        silhouette_score(X, y, metric="cosine", sample_size=min(len(y), 2000),
                         random_state=random_state)
    )


def _as_embedder(model, *, layers, pooling) -> DistilEmbedder:
    embedder = as_embedder(model)
    return embedder.set_params(layers=layers, pooling=pooling, head=None, combine="concat")


def _features(X, embedder):
    """Numeric 2-D features as they are; texts embedded with ``embedder``."""
    if embedder is None and X is not None and not isinstance(X, (str, bytes)):
        try:
            numeric = np.asarray(X)
        except ValueError:  # ragged nesting: leave the message to check_texts
            numeric = None
        if numeric is not None and numeric.dtype.kind in "biuf":
            if numeric.ndim != 2:
                raise ValueError(
                    f"X must be a 2-D array of embeddings or a sequence of texts; got a "
                    f"numeric array of shape {numeric.shape}."
                )
            return numeric
    texts = check_texts(X, allow_empty=False)
    embedder = DistilEmbedder() if embedder is None else embedder
    return np.asarray(embedder.fit_transform(texts))


# -- public pictures ------------------------------------------------------------------


def plot_embeddings(
    X,
    y=None,
    *,
    embedder=None,
    method="umap",
    ax=None,
    random_state=None,
    target_names=None,
    title=None,
    legend=True,
):
    """Project embeddings (or texts) to 2-D and draw them, one colour per label.

    Parameters
    ----------
    X : array of shape (n_samples, n_features), or sequence of str
        Embeddings, or texts to embed with ``embedder``.
    y : array-like of shape (n_samples,), optional
        Labels; each gets its own colour and legend entry.
    embedder : transformer, optional
        Embeds texts (``fit_transform``); default ``DistilEmbedder()``. Setting it
        means X holds texts.
    method : {"umap", "pca", "tsne"}, None or estimator, default="umap"
        The 2-D projection. UMAP and t-SNE use cosine distances; None plots X as it
        is (it must have 2 columns); an object with ``fit_transform`` (for example
        ``umap.UMAP(n_neighbors=5)``) is used as given.
    ax : matplotlib Axes, optional
        Where to draw; default a new figure.
    random_state : int, optional
        Seed of the projection; the same seed draws the same picture.
    target_names : sequence or dict, optional
        Names for the labels in the legend: indexed by integer label, or a mapping.
    title : str, optional
        Default: "<method> of <n> points".
    legend : bool, default=True

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> from fewshot.viz import plot_embeddings
    >>> X = np.random.default_rng(0).normal(size=(30, 8))
    >>> ax = plot_embeddings(X, ["a", "b", "c"] * 10, method="pca", random_state=0)
    >>> [text.get_text() for text in ax.get_legend().get_texts()]
    ['a', 'b', 'c']
    >>> sum(len(c.get_offsets()) for c in ax.collections)
    30
    """
    plt = _pyplot()

    features = _features(X, embedder)
    y = _check_labels(y, len(features))
    Z = _project(features, method, random_state)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.5))
    colours = _colours_for(y)
    _scatter(ax, Z, y, colours, target_names)
    if title is None:
        title = f"{_method_label(method)} of {len(Z)} points"
    _style(ax, title, method)
    if legend and isinstance(colours, _Continuous):
        ax.figure.colorbar(colours.mappable, ax=ax, shrink=0.8)
    elif legend and y is not None:
        ax.legend(*_legend_entries(ax), fontsize="small", markerscale=1.5, frameon=False,
                  loc="best")
    return ax


def plot_layers(
    texts,
    y=None,
    *,
    model=DEFAULT_MODEL,
    layers="all",
    pooling=None,
    method="umap",
    random_state=None,
    target_names=None,
    ncols=4,
    progress=False,
):
    """A grid of 2-D projections, one per layer, from a single forward pass.

    Shows at which depth the classes come apart. Each panel's title gives the layer and
    the cosine silhouette of the labels in that layer's full feature space (higher:
    classes better separated).

    Parameters
    ----------
    texts : sequence of str
    y : array-like of shape (n_texts,), optional
        Labels for the colours.
    model : str or DistilEmbedder, default="distilbert-base-uncased-finetuned-sst-2-english"
        Model id or folder, or a DistilEmbedder whose settings are used (its
        ``layers`` and ``pooling`` are replaced).
    layers : int, list of int or "all", default="all"
    pooling : {"mean", "cls", "max"} or None, default=None
        None: the model's own pooling (sentence-transformers folders), else "mean".
    method : {"umap", "pca", "tsne"} or estimator, default="umap"
    random_state : int, optional
    target_names : sequence or dict, optional
    ncols : int, default=4
        Panels per row.
    progress : bool, default=False
        Show the embedding progress bar.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per layer (``fig.axes``) and one legend for the figure.

    Examples
    --------
    >>> import tempfile
    >>> from fewshot.testing import make_tiny_distilbert
    >>> from fewshot.viz import plot_layers
    >>> path = str(make_tiny_distilbert(tempfile.mkdtemp()))   # tiny random model
    >>> texts = ["good", "bad", "great", "awful", "fine", "poor"] * 3
    >>> fig = plot_layers(texts, [1, 0] * 9, model=path, layers=[0, 6], method="pca")
    >>> [ax.get_title().split(" ·")[0] for ax in fig.axes]
    ['layer 0 (embeddings)', 'layer 6']
    """
    plt = _pyplot()

    if not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be an int >= 1, got {ncols!r}.")
    texts = check_texts(texts, name="texts", allow_empty=False)
    y = _check_labels(y, len(texts))
    embedder = _as_embedder(model, layers=layers, pooling=pooling)
    normalize = resolved_normalize(embedder)  # per layer below, not over the concatenation
    embedder.set_params(normalize=False, progress=bool(progress or embedder.progress))
    features = embedder.fit_transform(texts)  # every layer from one forward pass
    chosen = embedder.layers_
    width = features.shape[1] // len(chosen)

    ncols = min(ncols, len(chosen))
    nrows = math.ceil(len(chosen) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, 3.0 * nrows + 0.6), squeeze=False)
    colours = _colours_for(y)
    for i, layer in enumerate(chosen):
        ax = axes.flat[i]
        columns = features[:, i * width : (i + 1) * width]
        if normalize:
            columns = l2_normalize(columns.copy())
        Z = _project(columns, method, random_state)
        _scatter(ax, Z, y, colours, target_names)
        title = f"layer {layer} (embeddings)" if layer == 0 else f"layer {layer}"
        score = _silhouette(columns, y, random_state)
        if score is not None:
            title += f" · silhouette {score:.2f}"
        _style(ax, title, method)
        ax.set_xlabel("")
        ax.set_ylabel("")
    for ax in axes.flat[len(chosen) :]:
        fig.delaxes(ax)
    fig.suptitle(
        f"{_method_label(method)} per layer · {short_model_name(embedder.model)} · "
        f"{embedder.pooling_} pooling"
    )
    if isinstance(colours, _Continuous):
        fig.colorbar(colours.mappable, ax=fig.axes, shrink=0.8)
    elif y is not None:
        handles, labels = _legend_entries(axes.flat[0])
        fig.legend(handles, labels, loc="lower center", ncol=max(1, min(len(labels), 8)),
                   frameon=False, markerscale=1.5)
    fig.tight_layout(rect=(0, 0.06 if y is not None else 0, 1, 1))
    return fig


def plot_before_after(
    clf,
    texts,
    y,
    *,
    method="umap",
    random_state=None,
    target_names=None,
):
    """The pretrained encoder and the SetFit-fine-tuned one, side by side.

    Left: the texts as the pretrained body embeds them (same model, layer and pooling
    as ``clf``, through :class:`~fewshot.DistilEmbedder`); right: as the fine-tuned
    body embeds them (``clf.transform``). Titles give the cosine silhouette of the labels
    in each full feature space, so "did fine-tuning help" has a number too. Use texts
    the classifier was not trained on to see whether it generalises.

    Parameters
    ----------
    clf : fitted SetFitClassifier
        Anything with ``model``, ``layer``, ``pooling`` parameters and a
        ``transform(texts)`` giving the fine-tuned embeddings.
    texts : sequence of str
    y : array-like of shape (n_texts,)
    method : {"umap", "pca", "tsne"} or estimator, default="umap"
    random_state : int, optional
    target_names : sequence or dict, optional

    Returns
    -------
    matplotlib.figure.Figure
        Two Axes: "pretrained ..." and "fine-tuned ...".
    """
    plt = _pyplot()
    from sklearn.utils.validation import check_is_fitted

    for name in ("model", "layer", "pooling", "transform"):
        if not hasattr(clf, name):
            raise TypeError(
                f"clf must be a fitted SetFitClassifier (or have model, layer, pooling and "
                f"transform); {type(clf).__name__} has no {name!r}."
            )
    check_is_fitted(clf)
    texts = check_texts(texts, name="texts", allow_empty=False)
    y = _check_labels(y, len(texts))
    if y is None:
        raise TypeError("y is None; the picture colours texts by their labels.")

    # The pretrained body exactly as clf embeds before fine-tuning.
    shared = ("revision", "device", "dtype", "max_length", "trust_remote_code")
    params = {k: getattr(clf, k) for k in shared if hasattr(clf, k)}
    pretrained = DistilEmbedder(
        model=clf.model, layers=clf.layer, pooling=clf.pooling, normalize=False, **params
    )
    before = pretrained.fit_transform(texts)
    after = np.asarray(clf.transform(texts))
    if after.shape[0] != len(texts):
        raise ValueError(
            f"clf.transform returned {after.shape[0]} rows for {len(texts)} texts."
        )

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    colours = _colours_for(y)
    layer_note = f"layer {clf.layer}, {clf.pooling} pooling"
    panels = (("pretrained", before), ("fine-tuned (SetFit)", after))
    for ax, (name, features) in zip(axes, panels):
        Z = _project(features, method, random_state)
        _scatter(ax, Z, y, colours, target_names)
        title = f"{name} · {layer_note}"
        score = _silhouette(features, y, random_state)
        if score is not None:
            title += f"\nsilhouette {score:.2f}"
        _style(ax, title, method)
    fig.suptitle(f"{short_model_name(clf.model)}: before and after fine-tuning")
    handles, labels = _legend_entries(axes[0])
    fig.legend(handles, labels, loc="lower center", ncol=max(1, min(len(labels), 8)), frameon=False,
               markerscale=1.5)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def plot_probe(result, ax=None):
    """Score per layer from :func:`fewshot.probe_layers`: one line per pooling, error bars.

    Error bars are the standard deviation over folds; a star marks the best layer and
    pooling, and a dashed line the majority-class accuracy when the score is accuracy.

    Parameters
    ----------
    result : ProbeResult
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    plt = _pyplot()

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    means, stds = result.pivot("mean"), result.pivot("std")
    layers = means.index.to_numpy()
    # Nudge each pooling sideways a little so overlapping error bars stay readable.
    offsets = (np.arange(len(means.columns)) - (len(means.columns) - 1) / 2) * 0.08
    for offset, pooling in zip(offsets, means.columns):
        ax.errorbar(
            layers + offset, means[pooling].to_numpy(), yerr=stds[pooling].to_numpy(),
            marker="o", markersize=4, capsize=3, label=pooling,
        )
    best = result.best
    best_x = best["layer"] + offsets[list(means.columns).index(best["pooling"])]
    ax.plot([best_x], [best["mean"]], marker="*", markersize=16, color="gold",
            markeredgecolor="black", linestyle="none",
            label=f"best: layer {best['layer']}, {best['pooling']}")
    if result.chance is not None:
        ax.axhline(result.chance, color="grey", linestyle="--", linewidth=1, label="majority class")
    ax.set_xticks(layers)
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel(f"{result.scoring} ({result.n_splits}-fold CV)")
    ax.set_title(f"Layer probe · {short_model_name(result.model)}", fontsize="medium")
    # Outside the axes: inside, the legend covered error bars of the top layers.
    ax.legend(fontsize="small", frameon=False, title="pooling", title_fontsize="small",
              loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    ax.grid(alpha=0.3)
    return ax

