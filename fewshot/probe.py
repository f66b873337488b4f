"""Layer probing: which layer and pooling of an encoder best separate your labels.

:func:`probe_layers` embeds the texts once, with every requested layer and pooling from a
single forward pass, then cross-validates a small estimator on the columns of each
layer/pooling pair, all on the same folds.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, check_cv, cross_val_score
from threadpoolctl import threadpool_limits

from ._core.choices import DEFAULT_MODEL, POOLINGS
from ._core.encoding import l2_normalize
from ._estimator.validation import check_labels, check_texts
from .embedder import as_embedder

__all__ = ["ProbeResult", "probe_layers"]


class ProbeResult:
    """What :func:`probe_layers` found: one cross-validated score per layer and pooling.

    Attributes
    ----------
    table : pandas.DataFrame
        Tidy table with columns ``layer``, ``pooling``, ``mean``, ``std``: one row per
        layer and pooling, in the order they were requested.
    scores : pandas.DataFrame
        The score of every fold: columns ``layer``, ``pooling``, ``fold``, ``score``.
    best : dict
        The best row of ``table`` as ``{"layer", "pooling", "mean", "std"}``: highest
        mean score; ties go to the shallower layer (cheaper: the forward pass stops
        there), then to the pooling requested first.
    best_params : dict
        ``{"layers": layer, "pooling": pooling}`` of the best row, ready for
        ``DistilEmbedder(model=..., **result.best_params)``.
    model : str
        The encoder that was probed.
    scoring : str
        Name of the score (``"accuracy"`` when ``scoring=None`` and the estimator is a
        classifier).
    n_splits : int
        Number of cross-validation folds.
    chance : float or None
        Accuracy of always predicting the most frequent class, when the score is
        accuracy; else None.
    """

    def __init__(self, *, scores, model, scoring, n_splits, chance):
        self.scores = scores
        self.model = model
        self.scoring = scoring
        self.n_splits = n_splits
        self.chance = chance
        grouped = scores.groupby(["layer", "pooling"], sort=False)["score"]
        # std over folds with ddof=0, like numpy and cross_val_score reports.
        self.table = grouped.agg(mean="mean", std=lambda s: float(np.std(s))).reset_index()
        self.table["layer"] = self.table["layer"].astype(int)
        poolings = list(dict.fromkeys(self.table["pooling"]))
        order = self.table.assign(_rank=self.table["pooling"].map(poolings.index)).sort_values(
            ["mean", "layer", "_rank"], ascending=[False, True, True], kind="stable"
        )
        row = order.iloc[0]
        self.best = {
            "layer": int(row["layer"]),
            "pooling": str(row["pooling"]),
            "mean": float(row["mean"]),
            "std": float(row["std"]),
        }

    @property
    def best_params(self) -> dict:
        """``{"layers": ..., "pooling": ...}`` of the best row, for ``DistilEmbedder(**...)``."""
        return {"layers": self.best["layer"], "pooling": self.best["pooling"]}

    def pivot(self, value: str = "mean"):
        """The table as layers x poolings (``value`` is ``"mean"`` or ``"std"``)."""
        table = self.table.pivot(index="layer", columns="pooling", values=value)
        return table[list(dict.fromkeys(self.table["pooling"]))]

    def to_string(self) -> str:
        """The table as text: one line per layer, ``mean ± std`` per pooling, and the best."""
        means, stds = self.pivot("mean"), self.pivot("std")
        lines = [
            f"{self.scoring}, {self.n_splits}-fold CV, model {self.model}",
            "layer  " + "".join(f"{p:>15}" for p in means.columns),
        ]
        for layer in means.index:
            cells = "".join(
                f"{means.loc[layer, p]:>8.3f} ± {stds.loc[layer, p]:.3f}" for p in means.columns
            )
            lines.append(f"{layer:>5}  {cells}")
        best = self.best
        lines.append(
            f"best: layer {best['layer']}, pooling {best['pooling']!r} "
            f"({best['mean']:.3f} ± {best['std']:.3f})"
        )
        if self.chance is not None:
            lines.append(f"majority class: {self.chance:.3f}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"ProbeResult(best={self.best}, model={self.model!r}, scoring={self.scoring!r})"

    def __str__(self) -> str:
        return self.to_string()

    def _repr_html_(self) -> str:  # notebooks show the table
        return self.table.to_html(index=False, float_format="{:.3f}".format)

    def plot(self, ax=None):
        """Score per layer, one line per pooling, with error bars.

        See :func:`fewshot.viz.plot_probe`.
        """
        from .viz._figures import plot_probe

        return plot_probe(self, ax=ax)


def _check_poolings(poolings) -> tuple[str, ...]:
    if isinstance(poolings, str):
        poolings = (poolings,)
    poolings = tuple(poolings)
    if not poolings:
        raise ValueError(f"poolings is empty; give one or more of {list(POOLINGS)}.")
    for pooling in poolings:
        if pooling not in POOLINGS:
            raise ValueError(f"poolings holds {pooling!r}; choose from {list(POOLINGS)}.")
    if len(set(poolings)) != len(poolings):
        raise ValueError(f"poolings={poolings!r} names the same pooling twice.")
    return poolings


def _make_splits(cv, y, classifier, random_state):
    """Materialise the folds once, so every layer and pooling is scored on the same ones."""
    placeholder = np.zeros((len(y), 1))
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"cv={cv} must be at least 2 folds.")
        if classifier:
            classes, counts = np.unique(y, return_counts=True)
            classes = classes.tolist()  # plain Python values read better in messages
            if len(classes) < 2:
                raise ValueError(
                    f"y holds a single class ({classes[0]!r}); probing needs two or more."
                )
            if counts.min() < cv:
                rare = classes[counts.argmin()]
                raise ValueError(
                    f"class {rare!r} has only {counts.min()} texts but cv={cv} needs at "
                    f"least {cv} per class; lower cv or add texts."
                )
            splitter = StratifiedKFold(n_splits=int(cv), shuffle=True, random_state=random_state)
        else:
            splitter = KFold(n_splits=int(cv), shuffle=True, random_state=random_state)
    else:
        splitter = check_cv(cv, y, classifier=classifier)
    return list(splitter.split(placeholder, y))


def probe_layers(
    texts,
    y,
    *,
    model=DEFAULT_MODEL,
    layers="all",
    poolings=("mean", "cls", "max"),
    estimator=None,
    cv=5,
    scoring=None,
    random_state=0,
    n_jobs=None,
    progress=False,
) -> ProbeResult:
    """Cross-validate a simple estimator on every layer and pooling of an encoder.

    The texts go through the model once: one forward pass yields every requested layer,
    pooled every requested way. Then ``estimator`` is cross-validated on the columns of
    each (layer, pooling) pair, all on the same folds, so the scores compare fairly.

    Parameters
    ----------
    texts : sequence of str
        The texts (list, array, pandas Series or one-column DataFrame).
    y : array-like of shape (n_texts,)
        One label (or target value) per text.
    model : str or DistilEmbedder, default="distilbert-base-uncased-finetuned-sst-2-english"
        Model id or folder; or a :class:`~fewshot.DistilEmbedder` whose settings
        (device, dtype, max_length, batch_size, ...) are used, with its ``layers``,
        ``pooling`` and ``head`` replaced by what is probed.
    layers : int, list of int or "all", default="all"
        Layers to probe; 0 is the embedding output.
    poolings : str or sequence of {"mean", "cls", "max"}, default=("mean", "cls", "max")
    estimator : scikit-learn estimator, optional
        Fitted on each layer's features; default ``LogisticRegression(max_iter=1000)``.
    cv : int or cross-validation splitter, default=5
        An int gives shuffled (stratified, for classifiers) K folds seeded with
        ``random_state``.
    scoring : str or callable, optional
        Any scikit-learn scorer; default the estimator's ``score`` (accuracy for
        classifiers).
    random_state : int or None, default=0
        Seeds the folds when ``cv`` is an int, so a probe gives the same numbers every
        run; None draws new folds each time.
    n_jobs : int, optional
        Parallel jobs for each cross-validation.
    progress : bool, default=False
        Show progress bars (embedding, then the probes) on stderr.

    Returns
    -------
    ProbeResult
        ``.table`` (layer, pooling, mean, std), ``.best``, ``.best_params``,
        ``.plot()``.

    Examples
    --------
    >>> import tempfile
    >>> from fewshot import probe_layers
    >>> from fewshot.data import load_customer_feedback
    >>> from fewshot.testing import make_tiny_distilbert
    >>> path = str(make_tiny_distilbert(tempfile.mkdtemp()))   # tiny random model
    >>> texts, topics = load_customer_feedback(return_X_y=True)
    >>> result = probe_layers(texts, topics, model=path, layers=[0, 3, 6],
    ...                       poolings=("mean", "cls"), cv=3, random_state=0)
    >>> result.table.shape, list(result.table.columns)
    ((6, 4), ['layer', 'pooling', 'mean', 'std'])
    >>> sorted(result.best_params)
    ['layers', 'pooling']
    """
    import pandas as pd
    from tqdm.auto import tqdm

    texts = check_texts(texts, name="texts", allow_empty=False)
    y = check_labels(y, len(texts), x_name="texts")
    poolings = _check_poolings(poolings)
    estimator = LogisticRegression(max_iter=1000) if estimator is None else estimator
    if not hasattr(estimator, "fit"):
        raise TypeError(f"estimator must be a scikit-learn estimator, got {estimator!r}.")
    classifier = is_classifier(estimator)
    splits = _make_splits(cv, y, classifier, random_state)

    embedder = as_embedder(model)
    show = bool(progress or embedder.progress)
    # Every pooling from the same forward pass, through the embedder's own plan (its
    # cache, threads and backend). normalize=True must scale each layer's block on its
    # own, not the concatenation, so it is applied per block below.
    plan = embedder._encoding_plan(
        layers=layers,
        pooling=poolings,
        head=None,
        combine="concat",
        normalize=False,
        progress=show,
    )
    features = plan.encode(texts)
    spec, width = plan.spec, plan.loaded.hidden_size
    normalize = embedder._encoding_plan().spec.normalize  # as the embedder resolves it
    pairs = [(p, layer) for p in poolings for layer in spec.layers]  # column-block order
    rows = []
    # Many small fits: threaded BLAS only adds synchronisation to them (on a busy 2-core
    # machine a probe took 45 s with 2 BLAS threads and 1 s with one). Use n_jobs instead.
    with threadpool_limits(limits=1, user_api="blas"):
        for block, (pooling, layer) in enumerate(tqdm(pairs, disable=not show, desc="Probing")):
            columns = features[:, block * width : (block + 1) * width]
            if normalize:
                columns = l2_normalize(columns.copy())
            fold_scores = cross_val_score(
                clone(estimator),
                columns,
                y,
                cv=splits,
                scoring=scoring,
                n_jobs=n_jobs,
                error_score="raise",  # a scorer that fails must not become "nan ± nan"
            )
            if not np.all(np.isfinite(fold_scores)):
                raise ValueError(
                    f"scoring={scoring!r} gave {fold_scores.tolist()} on layer {layer} "
                    f"({pooling}); pick a scorer that fits these labels (for several "
                    "classes e.g. 'f1_macro' instead of 'f1')."
                )
            rows += [(layer, pooling, fold, float(s)) for fold, s in enumerate(fold_scores)]
    scores = pd.DataFrame(rows, columns=["layer", "pooling", "fold", "score"])
    # Requested order: layer-major, so the table reads top to bottom by depth.
    scores = scores.sort_values(["layer"], kind="stable").reset_index(drop=True)

    if isinstance(scoring, str):
        scoring_name = scoring
    elif scoring is None:
        scoring_name = "accuracy" if classifier else "score"
    else:
        scoring_name = getattr(scoring, "__name__", "score")
    chance = None
    if classifier and scoring_name == "accuracy":
        _, counts = np.unique(y, return_counts=True)
        chance = float(counts.max() / counts.sum())
    return ProbeResult(
        scores=scores,
        model=embedder.model,
        scoring=scoring_name,
        n_splits=len(splits),
        chance=chance,
    )
