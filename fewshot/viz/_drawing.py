"""Drawing helpers behind :mod:`fewshot.viz`: projections, colours, legends, scatter styles.

The same class always gets the same colour; continuous labels get a colour map and a
colour bar; legends are capped so many classes do not swamp a figure.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

from .._core.optional import require
from .._estimator.validation import check_labels

METHODS = ("umap", "pca", "tsne")
METHOD_LABELS = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}


def pyplot():
    return require("matplotlib.pyplot", extra="viz", feature="fewshot.viz (figures)")


# -- projection -----------------------------------------------------------------------


def make_projector(method, n_samples: int, random_state):
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
            n_components=2,
            perplexity=perplexity,
            init="pca",
            metric="cosine",
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


def project_2d(X, method, random_state) -> np.ndarray:
    if method is None:
        if X.shape[1] != 2:
            raise ValueError(
                f"method=None plots X as it is, so X needs 2 columns; it has {X.shape[1]}. "
                f"Use method='umap', 'pca' or 'tsne' to project it."
            )
        return X.astype(np.float64, copy=False)
    projector = make_projector(method, X.shape[0], random_state)
    return np.asarray(projector.fit_transform(X), dtype=np.float64)


def method_label(method) -> str:
    if method is None:
        return "embedding"
    if isinstance(method, str):
        return METHOD_LABELS[method]
    return type(method).__name__


# -- labels and colours ---------------------------------------------------------------


def distinct_labels(y) -> list:
    """The distinct labels, sorted when they can be."""
    distinct = list(dict.fromkeys(y.tolist()))
    try:
        return sorted(distinct)
    except TypeError:
        return distinct


def label_name(label, target_names) -> str:
    if target_names is None:
        return str(label)
    if isinstance(target_names, dict):
        return str(target_names.get(label, label))
    if isinstance(label, (int, np.integer)) and 0 <= label < len(target_names):
        return str(target_names[label])
    return str(label)


# More distinct values than this in numeric labels means a quantity, not classes.
MAX_CLASSES = 20
# Legends list at most this many classes, then "... and N more".
MAX_LEGEND = 12


def is_continuous(y) -> bool:
    """Numeric labels with fractions, or with more distinct values than classes would have."""
    if y is None or y.dtype.kind not in "fiu":
        return False
    distinct = np.unique(y)
    return len(distinct) > MAX_CLASSES or (
        y.dtype.kind == "f" and not np.all(np.equal(np.mod(distinct, 1), 0))
    )


class ContinuousColours:
    """Colours for a continuous label: one colour map and its range (drawn with a colour bar)."""

    def __init__(self, y):
        matplotlib = require("matplotlib", extra="viz", feature="fewshot.viz")
        self.cmap = matplotlib.colormaps["viridis"]
        self.norm = matplotlib.colors.Normalize(vmin=float(np.min(y)), vmax=float(np.max(y)))
        self.mappable = matplotlib.cm.ScalarMappable(norm=self.norm, cmap=self.cmap)


def colours_for(y):
    """``{}`` without labels, a :class:`ContinuousColours` for quantities, else a palette."""
    if y is None:
        return {}
    if is_continuous(y):
        return ContinuousColours(y)
    return class_palette(distinct_labels(y))


def legend_entries(ax):
    """Handles and labels of ``ax``, capped at ``MAX_LEGEND`` classes."""
    handles, labels = ax.get_legend_handles_labels()
    if len(labels) > MAX_LEGEND:
        from matplotlib.lines import Line2D

        extra = len(labels) - (MAX_LEGEND - 1)
        handles = handles[: MAX_LEGEND - 1] + [Line2D([], [], linestyle="none")]
        labels = labels[: MAX_LEGEND - 1] + [f"... and {extra} more"]
    return handles, labels


def figure_legend(fig, ax) -> None:
    """One legend for a figure of several panels, below them, from ``ax``'s classes."""
    handles, labels = legend_entries(ax)
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=max(1, min(len(labels), 8)),
        frameon=False,
        markerscale=1.5,
    )


def class_palette(classes) -> dict:
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


def check_point_labels(y, n_samples):
    """Labels for the colours (optional): one per point, by position."""
    return None if y is None else check_labels(y, n_samples, noun="point")


def point_size(n_samples: int) -> float:
    return float(np.clip(3000.0 / max(n_samples, 1), 4.0, 40.0))


def scatter_labelled(ax, Z, y, colours, target_names):
    size = point_size(len(Z))
    if y is None:
        ax.scatter(Z[:, 0], Z[:, 1], s=size, color="tab:blue", alpha=0.85, linewidths=0)
        return
    if isinstance(colours, ContinuousColours):
        ax.scatter(
            Z[:, 0],
            Z[:, 1],
            s=size,
            c=y,
            cmap=colours.cmap,
            norm=colours.norm,
            alpha=0.85,
            linewidths=0,
        )
        return
    for label, colour in colours.items():
        mask = y == label
        if mask.any():
            ax.scatter(
                Z[mask, 0],
                Z[mask, 1],
                s=size,
                color=colour,
                alpha=0.85,
                linewidths=0,
                label=label_name(label, target_names),
            )


def style_axes(ax, title, method):
    ax.set_xticks([])
    ax.set_yticks([])
    label = method_label(method)
    ax.set_xlabel(f"{label} 1", fontsize="small")
    ax.set_ylabel(f"{label} 2", fontsize="small")
    if title:
        ax.set_title(title, fontsize="medium")


def label_silhouette(X, y, random_state) -> float | None:
    """Cosine silhouette of the labels in the full feature space (None if undefined)."""
    from sklearn.metrics import silhouette_score

    if y is None or is_continuous(y):
        return None
    n_classes = len(np.unique(y))
    if not 2 <= n_classes < len(y):
        return None
    return float(
        silhouette_score(
            X, y, metric="cosine", sample_size=min(len(y), 2000), random_state=random_state
        )
    )
