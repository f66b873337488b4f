"""The exploring commands of the ``fewshot`` CLI: ``probe`` (which layer) and ``plot``."""

from __future__ import annotations

import click

from .._core.choices import POOLINGS
from ._support import (
    INPUT,
    LAYERS,
    model_option,
    names,
    note,
    pooling_option,
    prompt_option,
    quiet_option,
    reported,
    save_figure,
    skip_option,
    text_col_option,
    texts_of,
)
from ._tables import WRITABLE, check_suffix, read_labels, read_table, write_table

__all__ = ["plot", "probe"]


@click.command()
@INPUT
@text_col_option
@click.option("--label-col", default="label", show_default=True, help="Column holding the labels.")
@model_option
@click.option("--layers", type=LAYERS, default="all", show_default=True)
@click.option(
    "--poolings",
    default="mean,cls,max",
    show_default=True,
    help="Comma-separated poolings to compare.",
)
@click.option(
    "--cv", type=click.IntRange(min=2), default=5, show_default=True, help="Cross-validation folds."
)
@click.option(
    "--scoring",
    default=None,
    help="Any scikit-learn scorer name, e.g. f1_macro [default: accuracy].",
)
@prompt_option
@click.option("--random-state", type=int, default=0, show_default=True)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also save the score-per-layer plot (.png, .svg or .pdf).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also save the table (.csv, .tsv, .jsonl or .parquet).",
)
@skip_option
@quiet_option
@reported
def probe(
    input_path,
    text_col,
    label_col,
    model,
    layers,
    poolings,
    cv,
    scoring,
    prompt,
    random_state,
    plot_path,
    out,
    skip_bad_rows,
    quiet,
):
    """Which layer and pooling separate the labels best? Prints a table of CV scores."""
    from ..embedder import DistilEmbedder
    from ..probe import probe_layers

    poolings = names(poolings, POOLINGS, "--poolings")
    check_suffix(plot_path, (".png", ".svg", ".pdf"), "--plot")
    check_suffix(out, WRITABLE)
    frame = read_table(input_path)
    texts, keep = texts_of(frame, text_col, input_path, skip_bad_rows, quiet)
    y = read_labels(frame, label_col, input_path)[keep]
    result = probe_layers(
        texts,
        y,
        model=DistilEmbedder(model=model, prompt=prompt),
        layers=layers,
        poolings=poolings,
        cv=cv,
        scoring=scoring,
        random_state=random_state,
        progress=not quiet,
    )
    click.echo(result.to_string())
    if out:
        write_table(result.table, out)
        note(quiet, f"Wrote the table to {out}")
    if plot_path:
        save_figure(result.plot().figure, plot_path, dpi=100)
        note(quiet, f"Wrote the plot to {plot_path}")


@click.command()
@INPUT
@text_col_option
@click.option("--label-col", default=None, help="Column of labels to colour by [default: none].")
@model_option
@click.option(
    "--layers",
    type=LAYERS,
    default="-1",
    show_default=True,
    help="One layer gives one picture; 'all' or a list gives one panel per layer.",
)
@pooling_option
@prompt_option
@click.option(
    "--method",
    type=click.Choice(["umap", "pca", "tsne"]),
    default="umap",
    show_default=True,
    help="2-D projection.",
)
@click.option("--random-state", type=int, default=0, show_default=True)
@click.option("--dpi", type=click.IntRange(min=20, max=600), default=100, show_default=True)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Picture file (.png, .svg or .pdf).",
)
@skip_option
@quiet_option
@reported
def plot(
    input_path,
    text_col,
    label_col,
    model,
    layers,
    pooling,
    prompt,
    method,
    random_state,
    dpi,
    out,
    skip_bad_rows,
    quiet,
):
    """Draw the texts of INPUT in 2-D (UMAP by default), coloured by label."""
    from .._core.loading import short_model_name
    from ..embedder import DistilEmbedder
    from ..viz._figures import plot_embeddings, plot_layers

    check_suffix(out, (".png", ".svg", ".pdf"))
    frame = read_table(input_path)
    texts, keep = texts_of(frame, text_col, input_path, skip_bad_rows, quiet)
    y = read_labels(frame, label_col, input_path)[keep] if label_col else None
    if isinstance(layers, int):
        embedder = DistilEmbedder(
            model=model, layers=layers, pooling=pooling, prompt=prompt, progress=not quiet
        )
        ax = plot_embeddings(
            texts,
            y,
            embedder=embedder,
            method=method,
            random_state=random_state,
            title=f"{short_model_name(model)} · layer {layers} · {embedder.fit().pooling_} pooling",
        )
        figure = ax.figure
    else:
        figure = plot_layers(
            texts,
            y,
            model=DistilEmbedder(model=model, prompt=prompt),
            layers=layers,
            pooling=pooling,
            method=method,
            random_state=random_state,
            progress=not quiet,
        )
    save_figure(figure, out, dpi=dpi)
    note(quiet, f"Wrote {out}")
