"""The picture functions of :mod:`fewshot.viz` (projections, layer grids, before/after)."""

from __future__ import annotations

import math

import numpy as np

from .._core.choices import DEFAULT_MODEL
from .._core.encoding import l2_normalize
from .._core.loading import short_model_name
from .._estimator.validation import check_texts
from ..embedder import DistilEmbedder, as_embedder
from ._calibration import plot_calibration
from ._drawing import (
    METHODS,
    ContinuousColours,
    check_point_labels,
    colours_for,
    figure_legend,
    label_silhouette,
    legend_entries,
    method_label,
    project_2d,
    pyplot,
    scatter_labelled,
    style_axes,
)

__all__ = [
    "METHODS",
    "plot_before_after",
    "plot_calibration",
    "plot_embeddings",
    "plot_layers",
    "plot_probe",
]


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
    plt = pyplot()

    features = _features(X, embedder)
    y = check_point_labels(y, len(features))
    Z = project_2d(features, method, random_state)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.5))
    colours = colours_for(y)
    scatter_labelled(ax, Z, y, colours, target_names)
    if title is None:
        title = f"{method_label(method)} of {len(Z)} points"
    style_axes(ax, title, method)
    if legend and isinstance(colours, ContinuousColours):
        ax.figure.colorbar(colours.mappable, ax=ax, shrink=0.8)
    elif legend and y is not None:
        ax.legend(*legend_entries(ax), fontsize="small", markerscale=1.5, frameon=False, loc="best")
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
    plt = pyplot()

    if not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be an int >= 1, got {ncols!r}.")
    texts = check_texts(texts, name="texts", allow_empty=False)
    y = check_point_labels(y, len(texts))
    embedder = _as_embedder(model, layers=layers, pooling=pooling)
    # Per layer below, not over the concatenation.
    normalize = embedder._encoding_plan().spec.normalize
    embedder.set_params(normalize=False, progress=bool(progress or embedder.progress))
    features = embedder.fit_transform(texts)  # every layer from one forward pass
    chosen = embedder.layers_
    width = features.shape[1] // len(chosen)

    ncols = min(ncols, len(chosen))
    nrows = math.ceil(len(chosen) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, 3.0 * nrows + 0.6), squeeze=False)
    colours = colours_for(y)
    for i, layer in enumerate(chosen):
        ax = axes.flat[i]
        columns = features[:, i * width : (i + 1) * width]
        if normalize:
            columns = l2_normalize(columns.copy())
        Z = project_2d(columns, method, random_state)
        scatter_labelled(ax, Z, y, colours, target_names)
        title = f"layer {layer} (embeddings)" if layer == 0 else f"layer {layer}"
        score = label_silhouette(columns, y, random_state)
        if score is not None:
            title += f" · silhouette {score:.2f}"
        style_axes(ax, title, method)
        ax.set_xlabel("")
        ax.set_ylabel("")
    for ax in axes.flat[len(chosen) :]:
        fig.delaxes(ax)
    fig.suptitle(
        f"{method_label(method)} per layer · {short_model_name(embedder.model)} · "
        f"{embedder.pooling_} pooling"
    )
    if isinstance(colours, ContinuousColours):
        fig.colorbar(colours.mappable, ax=fig.axes, shrink=0.8)
    elif y is not None:
        figure_legend(fig, axes.flat[0])
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
    plt = pyplot()
    from sklearn.utils.validation import check_is_fitted

    for name in ("model", "layer", "pooling", "transform"):
        if not hasattr(clf, name):
            raise TypeError(
                f"clf must be a fitted SetFitClassifier (or have model, layer, pooling and "
                f"transform); {type(clf).__name__} has no {name!r}."
            )
    check_is_fitted(clf)
    texts = check_texts(texts, name="texts", allow_empty=False)
    y = check_point_labels(y, len(texts))
    if y is None:
        raise TypeError("y is None; the picture colours texts by their labels.")

    # The pretrained body exactly as clf embeds before fine-tuning (float32 weights:
    # a SetFitClassifier's dtype is its arithmetic's precision, not a weight format).
    shared = ("revision", "device", "max_length", "trust_remote_code")
    params = {k: getattr(clf, k) for k in shared if hasattr(clf, k)}
    pretrained = DistilEmbedder(
        model=clf.model,
        layers=clf.layer,
        pooling=clf.pooling,
        normalize=bool(getattr(clf, "normalize_", False)),
        **params,
    )
    before = pretrained.fit_transform(texts)
    after = np.asarray(clf.transform(texts))
    if after.shape[0] != len(texts):
        raise ValueError(f"clf.transform returned {after.shape[0]} rows for {len(texts)} texts.")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    colours = colours_for(y)
    layer_note = f"layer {clf.layer}, {clf.pooling} pooling"
    panels = (("pretrained", before), ("fine-tuned (SetFit)", after))
    for ax, (name, features) in zip(axes, panels):
        Z = project_2d(features, method, random_state)
        scatter_labelled(ax, Z, y, colours, target_names)
        title = f"{name} · {layer_note}"
        score = label_silhouette(features, y, random_state)
        if score is not None:
            title += f"\nsilhouette {score:.2f}"
        style_axes(ax, title, method)
    fig.suptitle(f"{short_model_name(clf.model)}: before and after fine-tuning")
    figure_legend(fig, axes[0])
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
    plt = pyplot()

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    means, stds = result.pivot("mean"), result.pivot("std")
    layers = means.index.to_numpy()
    # Nudge each pooling sideways a little so overlapping error bars stay readable.
    offsets = (np.arange(len(means.columns)) - (len(means.columns) - 1) / 2) * 0.08
    for offset, pooling in zip(offsets, means.columns):
        ax.errorbar(
            layers + offset,
            means[pooling].to_numpy(),
            yerr=stds[pooling].to_numpy(),
            marker="o",
            markersize=4,
            capsize=3,
            label=pooling,
        )
    best = result.best
    best_x = best["layer"] + offsets[list(means.columns).index(best["pooling"])]
    ax.plot(
        [best_x],
        [best["mean"]],
        marker="*",
        markersize=16,
        color="gold",
        markeredgecolor="black",
        linestyle="none",
        label=f"best: layer {best['layer']}, {best['pooling']}",
    )
    if result.chance is not None:
        ax.axhline(result.chance, color="grey", linestyle="--", linewidth=1, label="majority class")
    ax.set_xticks(layers)
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel(f"{result.scoring} ({result.n_splits}-fold CV)")
    ax.set_title(f"Layer probe · {short_model_name(result.model)}", fontsize="medium")
    # Outside the axes: inside, the legend covered error bars of the top layers.
    ax.legend(
        fontsize="small",
        frameon=False,
        title="pooling",
        title_fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
    )
    ax.grid(alpha=0.3)
    return ax
