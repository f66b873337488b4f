"""``fewshot select``: which texts of a pool to label next (cold start, or a model's doubts)."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from .._core.choices import SELECT_STRATEGIES, UNCERTAINTY
from ._support import (
    LAYERS,
    CommandError,
    InputError,
    first_line,
    note,
    pooling_option,
    prompt_option,
    quiet_option,
    reported,
    skip_option,
    text_col_option,
    texts_of,
    trust_options,
)
from ._tables import WRITABLE, check_suffix, read_table, write_table

__all__ = ["select"]

_OURS = ("rank", "row", "score", "reason")  # columns this command adds


def _is_model_folder(model) -> bool:
    from ..model_folder import MANIFEST

    return model is not None and (Path(model) / MANIFEST).is_file()


@click.command()
@click.argument("pool_path", metavar="POOL", type=click.Path(dir_okay=False))
@click.option("--k", "k", type=click.IntRange(min=1), required=True, help="Texts to choose.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="The texts to label, most useful first (.csv, .tsv, .jsonl or .parquet).",
)
@click.option(
    "--model",
    default=None,
    help="A model folder written by `fewshot train`: the next batch is where it is least "
    "sure. Or an encoder (Hugging Face id or folder) to embed with for a cold start "
    "[default: the anchor model].",
)
@click.option(
    "--labelled",
    "labelled_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Table of the texts labelled so far (same --text-col); they are never chosen again.",
)
@click.option(
    "--strategy",
    type=click.Choice(SELECT_STRATEGIES),
    default="auto",
    show_default=True,
    help="auto: density without a model folder, margin with one. density, kmeans, random: "
    "cold start from embeddings; margin, entropy, least-confident: the model's uncertainty.",
)
@click.option(
    "--diversity/--no-diversity",
    default=True,
    show_default=True,
    help="Uncertainty strategies: one text per cluster of the most uncertain ones.",
)
@text_col_option
@click.option(
    "--layers",
    type=LAYERS,
    default="-1",
    show_default=True,
    help="Cold start: the encoder layer(s) to embed with.",
)
@pooling_option
@prompt_option
@click.option(
    "--cache",
    type=click.Path(file_okay=False),
    default=None,
    help="Cold start: embedding cache folder, so a large pool is embedded once across runs.",
)
@click.option("--random-state", type=int, default=0, show_default=True)
@trust_options
@skip_option
@quiet_option
@reported
def select(
    pool_path,
    k,
    out,
    model,
    labelled_path,
    strategy,
    diversity,
    text_col,
    layers,
    pooling,
    prompt,
    cache,
    random_state,
    trust_remote_code,
    trusted,
    skip_bad_rows,
    quiet,
):
    """Choose the K texts of POOL to label next and write them to --out, best first.

    Without a trained model (a cold start) the texts come from clusters of their
    embeddings; with --model FOLDER from `fewshot train`, they are the ones it is least
    sure of. Rows of POOL already in --labelled, and repeated texts, are never chosen.
    --out holds the chosen rows with all their columns, plus rank (label in this order),
    row (the POOL data row, counting from 1), score and reason, and an empty label column
    to fill in.
    """
    check_suffix(out, WRITABLE)
    frame = read_table(pool_path)
    texts, keep = texts_of(frame, text_col, pool_path, skip_bad_rows, quiet)
    labelled = None
    if labelled_path is not None:
        labelled, _ = texts_of(
            read_table(labelled_path), text_col, labelled_path, skip_bad_rows, quiet
        )
    classifier, embedder = None, None
    if _is_model_folder(model):
        classifier = _load_classifier(model, trust_remote_code, trusted, quiet)
    elif strategy in UNCERTAINTY:
        got = f"'{model}' is not a model folder" if model else "no --model was given"
        raise InputError(
            f"--strategy {strategy} ranks texts by a trained model's uncertainty, but {got}; "
            "pass --model FOLDER written by `fewshot train`, or a cold-start strategy "
            "(density, kmeans, random)."
        )
    else:
        from ..embedder import DistilEmbedder

        params = {"layers": layers, "pooling": pooling, "prompt": prompt, "cache": cache}
        if model is not None:
            params["model"] = model
        embedder = DistilEmbedder(**params, progress=not quiet)

    selection = _choose(
        quiet,
        texts,
        k,
        classifier=classifier,
        labelled=labelled,
        strategy=strategy,
        diversity=diversity,
        embedder=embedder,
        random_state=random_state,
        progress=not quiet,
    )
    rows = keep[selection.positions]
    write_table(_table(frame, rows, selection), out)
    how = "the model's uncertainty" if classifier is not None else "a cold start"
    note(
        quiet,
        f"Chose {len(rows)} of {len(texts)} pool texts ({selection.strategy}, {how}); wrote "
        f"them to {out}. Label them, add them to your labelled table, train, and run "
        "`fewshot select` again with --model and --labelled.",
    )


def _load_classifier(model, trust_remote_code, trusted, quiet):
    from ..model_folder import load_model
    from ._main import _set_progress

    try:
        classifier = load_model(model, trust_remote_code=trust_remote_code, trusted=trusted)
    except Exception as exc:  # unpacking a broken folder raises many types
        raise CommandError(f"cannot load the model in '{model}': {first_line(exc)}") from exc
    _set_progress(classifier, not quiet)
    return classifier


def _choose(quiet, texts, k, **options):
    """``texts_to_label``, its errors in the command's words and its warnings as notes."""
    from ..select import SelectionWarning, texts_to_label

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SelectionWarning)
            selection = texts_to_label(texts, k, **options)
    except ValueError as exc:
        # Name the option, not the Python argument.
        message = first_line(exc).replace("k=", "--k ").replace("X (the pool)", "POOL")
        raise CommandError(message) from exc
    for warning in caught:
        if issubclass(warning.category, SelectionWarning):
            what = str(warning.message).split(" (the first")[0]
            note(quiet, f"Note: {what} (in --labelled) and were left out.")
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return selection


def _table(frame, rows, selection):
    """The chosen rows with all their columns, between rank/row and score/reason/label."""
    import numpy as np
    import pandas as pd

    chosen = frame.iloc[rows].reset_index(drop=True)
    chosen = chosen.rename(columns={c: f"pool_{c}" for c in chosen.columns if c in _OURS})
    table = pd.concat(
        [
            pd.DataFrame({"rank": np.arange(1, len(rows) + 1), "row": rows + 1}),
            chosen,
            pd.DataFrame({"score": selection.scores, "reason": selection.reasons}),
        ],
        axis=1,
    )
    if "label" not in table.columns:
        table["label"] = ""  # to fill in, so the file can join the labelled table
    return table
