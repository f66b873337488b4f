"""The ``fewshot`` group and its commands embed, train, predict and demo.

The command line's conventions are described in :mod:`fewshot.cli`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .._estimator.validation import plain
from .._version import __version__
from ._support import (
    INPUT,
    LAYERS,
    CommandError,
    InputError,
    first_line,
    model_option,
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
from ._tables import (
    WRITABLE,
    atomic_file,
    atomic_folder,
    check_suffix,
    read_labels,
    read_table,
    write_table,
)

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fewshot")
def cli():
    """fewshot: Hugging Face encoders as scikit-learn building blocks for few labelled texts.

    INPUT files are .csv, .tsv, .jsonl or .parquet. Exit codes: 0 ok, 2 usage error
    (bad option, missing file or column), 1 failure.
    """


@cli.command()
@INPUT
@text_col_option
@model_option
@click.option(
    "--layers",
    type=LAYERS,
    default="-1",
    show_default=True,
    help="'all', one layer (0 = embeddings, -1 = last) or a list such as 2,4,6.",
)
@pooling_option
@click.option(
    "--head",
    type=click.Choice(["logits", "proba"]),
    default=None,
    help="Append the model's classification-head output.",
)
@click.option(
    "--normalize/--no-normalize",
    default=None,
    help="L2-normalise each row's hidden-state features [default: as the model "
    "folder says (sentence-transformers), else no].",
)
@prompt_option
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Output file: .npy (float32 array) or .parquet (one column per feature).",
)
@skip_option
@quiet_option
@reported
def embed(
    input_path,
    text_col,
    model,
    layers,
    pooling,
    head,
    normalize,
    prompt,
    batch_size,
    out,
    skip_bad_rows,
    quiet,
):
    """Embed the texts of INPUT, one row per input row, in input order.

    With --skip-bad-rows, rows without text get a row of NaN, so rows still line up.
    """
    import numpy as np

    from ..embedder import DistilEmbedder

    check_suffix(out, (".npy", ".parquet"))
    frame = read_table(input_path)
    texts, keep = texts_of(frame, text_col, input_path, skip_bad_rows, quiet)
    embedder = DistilEmbedder(
        model=model,
        layers=layers,
        pooling=pooling,
        head=head,
        normalize=normalize,
        prompt=prompt,
        batch_size=batch_size,
        progress=not quiet,
    )
    features = embedder.fit_transform(texts)
    if len(keep) < len(frame):
        aligned = np.full((len(frame), features.shape[1]), np.nan, dtype=np.float32)
        aligned[keep] = features
        features = aligned
    if Path(out).suffix.lower() == ".npy":
        with atomic_file(out) as temporary, open(temporary, "wb") as stream:
            np.save(stream, features)
    else:
        import pandas as pd

        frame = pd.DataFrame(features, columns=[str(c) for c in embedder.get_feature_names_out()])
        write_table(frame, out)
    note(quiet, f"Wrote {features.shape[0]} x {features.shape[1]} embeddings to {out}")


def _sample_per_class(y, n, seed):
    """Positions of ``n`` rows per class, drawn with ``seed``, in input order."""
    import numpy as np

    rng = np.random.default_rng(seed)
    chosen = []
    classes, counts = np.unique(y, return_counts=True)
    for label, count in zip(classes, counts):
        if count < n:
            raise CommandError(
                f"class {plain(label)!r} has only {count} rows but --n-per-class is {n}; "
                "lower it or add rows."
            )
        chosen.extend(rng.choice(np.flatnonzero(y == label), size=n, replace=False))
    return np.sort(np.asarray(chosen))


@cli.command()
@INPUT
@text_col_option
@click.option("--label-col", default="label", show_default=True, help="Column holding the labels.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Model folder to write (replaced if it holds an earlier fewshot model).",
)
@model_option
@click.option(
    "--setfit",
    is_flag=True,
    help="Fine-tune the encoder with SetFit instead of fitting a linear probe.",
)
@click.option(
    "--n-per-class",
    type=click.IntRange(min=1),
    default=None,
    help="Train on N randomly drawn rows per class (few-shot).",
)
@click.option(
    "--layers",
    type=LAYERS,
    default="-1",
    show_default=True,
    help="Layer(s) to use; --setfit takes one layer.",
)
@pooling_option
@prompt_option
@click.option(
    "--n-iterations",
    type=click.IntRange(min=1),
    default=None,
    help="SetFit: pair-sampling rounds (default: SetFitClassifier's).",
)
@click.option(
    "--random-state",
    type=int,
    default=0,
    show_default=True,
    help="Seed of --n-per-class sampling and of SetFit.",
)
@skip_option
@quiet_option
@reported
def train(
    input_path,
    text_col,
    label_col,
    out,
    model,
    setfit,
    n_per_class,
    layers,
    pooling,
    prompt,
    n_iterations,
    random_state,
    skip_bad_rows,
    quiet,
):
    """Train a classifier on INPUT and save it to a model folder.

    Without --setfit: Pipeline([DistilEmbedder, LogisticRegression]); with --setfit a
    SetFitClassifier. Either way the folder is self-contained (it holds the encoder's
    weights, safetensors) and is the format SetFitClassifier.save writes; `fewshot
    predict` and fewshot.load_model read it without reaching the hub.
    """
    import numpy as np

    from ..model_folder import MANIFEST, save_model

    if setfit and not isinstance(layers, int):
        raise click.BadParameter(
            "--setfit fine-tunes one layer; give a single number.", param_hint="--layers"
        )
    if n_iterations is not None and not setfit:
        raise click.BadParameter("only used with --setfit.", param_hint="--n-iterations")
    frame = read_table(input_path)
    texts, keep = texts_of(frame, text_col, input_path, skip_bad_rows, quiet)
    y = np.asarray(read_labels(frame, label_col, input_path))[keep]
    if n_per_class is not None:
        chosen = _sample_per_class(y, n_per_class, random_state)
        texts, y = [texts[i] for i in chosen], y[chosen]
    if len(set(y.tolist())) < 2:
        raise CommandError(f"column '{label_col}' holds a single class; a classifier needs two.")
    metadata = {
        "command": "fewshot train",
        "text_col": text_col,
        "label_col": label_col,
        "n_train": len(texts),
        "input": str(input_path),
        # Decides the --n-per-class draw (and SetFit's seeds): with the data hash in the
        # manifest, enough to rebuild the same training set.
        "n_per_class": n_per_class,
        "random_state": random_state,
    }

    with atomic_folder(out, marker=MANIFEST) as folder:
        if setfit:
            from ..setfit._classifier import SetFitClassifier

            params = {
                "model": model,
                "layer": layers,
                "pooling": pooling or "mean",
                "prompt": prompt,
                "random_state": random_state,
                "progress": not quiet,
            }
            if n_iterations is not None:
                params["n_iterations"] = n_iterations
            clf = SetFitClassifier(**params).fit(texts, y)
            clf.set_params(progress=False)  # the saved model stays quiet
        else:
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import Pipeline

            from ..embedder import DistilEmbedder

            clf = Pipeline(
                [
                    (
                        "embed",
                        DistilEmbedder(
                            model=model,
                            layers=layers,
                            pooling=pooling,
                            prompt=prompt,
                            progress=not quiet,
                        ),
                    ),
                    ("classify", LogisticRegression(max_iter=1000)),
                ]
            ).fit(texts, y)
        save_model(clf, folder, metadata=metadata)
    kind = "SetFit classifier" if setfit else "linear probe"
    note(
        quiet,
        f"Trained a {kind} on {len(texts)} texts ({len(clf.classes_)} classes); "
        f"saved to {out} with the encoder's weights (the folder is self-contained).",
    )


@cli.command()
@click.argument("model_dir", metavar="MODEL_DIR", type=click.Path())
@INPUT
@click.option(
    "--text-col", default=None, help="Column holding the texts [default: as in training]."
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Predictions file (.csv, .tsv, .jsonl or .parquet).",
)
@click.option(
    "--model",
    default=None,
    help="Embed with this encoder (id or folder) instead of the copy in MODEL_DIR "
    "(linear-probe folders; it must be the same weights). Required for a LoRA adapter "
    "folder: its base model.",
)
@trust_options
@skip_option
@quiet_option
@reported
def predict(
    model_dir, input_path, text_col, out, model, trust_remote_code, trusted, skip_bad_rows, quiet
):
    """Predict a label and class probabilities for every row of INPUT, in input order.

    Writes columns `label` (the most probable class) and `proba_<class>` (one per
    class). With --skip-bad-rows, rows without text get empty cells.
    """
    import numpy as np
    import pandas as pd

    from .._estimator.predict import labels_and_proba
    from ..model_folder import load_model, read_manifest

    check_suffix(out, WRITABLE)
    if not Path(model_dir).is_dir():
        raise InputError(f"model folder '{model_dir}' does not exist.")
    manifest = read_manifest(model_dir)
    try:
        clf = load_model(
            model_dir, model=model, trust_remote_code=trust_remote_code, trusted=trusted
        )
    except Exception as exc:  # unpacking a broken folder raises many types
        raise CommandError(f"cannot load the model in '{model_dir}': {first_line(exc)}") from exc
    text_col = text_col or manifest.get("metadata", {}).get("text_col", "text")
    frame = read_table(input_path)
    texts, keep = texts_of(frame, text_col, input_path, skip_bad_rows, quiet)
    _set_progress(clf, not quiet)
    labels, proba = labels_and_proba(clf, texts)
    classes = [plain(c) for c in clf.classes_]
    columns = {"label": np.full(len(frame), None, dtype=object)}
    columns["label"][keep] = [plain(v) for v in labels]
    for j, label in enumerate(classes):
        column = np.full(len(frame), np.nan)
        column[keep] = proba[:, j]
        columns[f"proba_{label}"] = column
    write_table(pd.DataFrame(columns), out)
    note(quiet, f"Wrote {len(texts)} predictions to {out}")


def _set_progress(clf, progress: bool) -> None:
    params = clf.get_params()
    for name in ("progress", "embed__progress"):
        if name in params:
            clf.set_params(**{name: progress})


@cli.command()
@click.option(
    "--model",
    default=None,
    help="Model id or folder [default: the anchor model, else all-MiniLM-L6-v2].",
)
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True)
@quiet_option
@reported
def demo(model, folds, quiet):
    """The README's main job: zero-shot sentiment and the best layer for topics."""
    from ._demo import run_demo

    run_demo(model, folds=folds, progress=not quiet)


from ._deploy import export, serve  # noqa: E402
from ._distill import distill  # noqa: E402
from ._explore import plot, probe  # noqa: E402
from ._info import info  # noqa: E402
from ._select import select  # noqa: E402

cli.add_command(probe)
cli.add_command(plot)
cli.add_command(export)
cli.add_command(serve)
cli.add_command(info)
cli.add_command(distill)
cli.add_command(select)


def main(argv=None):
    """Entry point of the ``fewshot`` console script."""
    cli.main(args=argv, prog_name="fewshot")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
