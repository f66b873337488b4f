"""The ``fewshot`` command line: embed, train, predict, probe, plot, demo.

Input tables are CSV, TSV, JSON Lines or Parquet, chosen by the file's extension.
Progress bars and notes go to stderr (``--quiet`` silences them); tables that are the
result of a command go to stdout. Every output file is written to a temporary file
next to it and moved into place at the end, so a failed run never leaves a
half-written file where a good one was.

Exit codes: 0 success; 2 usage error (a bad option, or an input file or column that
does not exist); 1 any other failure (an empty or unreadable file, rows with empty
labels, a model that cannot be loaded), reported in one ``Error: ...`` line.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import click

from . import __version__
from ._loading import DEFAULT_MODEL, ModelNotFoundError
from .pooling import POOLINGS

MODEL_META = "fewshot-model.json"
_READABLE = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
             ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


class CommandError(click.ClickException):
    """A failure reported as one ``Error: ...`` line, exit code 1."""

    exit_code = 1


class InputError(CommandError):
    """The user pointed at something that is not there (file, column): exit code 2."""

    exit_code = 2


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _reported(command):
    """Turn the errors a user can cause into one-line messages instead of tracebacks."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except (ModelNotFoundError, ValueError, OSError, ImportError) as exc:
            raise CommandError(_first_line(exc)) from exc

    return wrapper


def _note(quiet: bool, message: str) -> None:
    if not quiet:
        click.echo(message, err=True)


# -- reading --------------------------------------------------------------------------


def read_table(path):
    """Read a CSV/TSV/JSONL/Parquet file into a DataFrame, or raise a one-line error."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputError(f"input file '{path}' does not exist.")
    if path.is_dir():
        raise InputError(f"'{path}' is a folder; give a .csv, .tsv, .jsonl or .parquet file.")
    kind = _READABLE.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"cannot tell the format of '{path}' from its extension; use .csv, .tsv, "
            ".jsonl or .parquet."
        )
    if path.stat().st_size == 0:
        raise CommandError(f"input file '{path}' is empty.")
    try:
        if kind in ("csv", "tsv"):
            # Cells stay text: an empty cell is "", and "NA" or "null" are words.
            frame = pd.read_csv(path, sep="," if kind == "csv" else "\t", dtype=str,
                                keep_default_na=False)
        elif kind == "jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        else:
            frame = pd.read_parquet(path)
    except pd.errors.EmptyDataError as exc:
        raise CommandError(f"input file '{path}' is empty.") from exc
    except Exception as exc:  # parsers raise many types; all mean "unreadable"
        raise CommandError(f"cannot read '{path}' as {kind}: {_first_line(exc)}") from exc
    if len(frame) == 0:
        raise CommandError(f"input file '{path}' has no rows.")
    return frame


def _column(frame, name, path, option):
    if name not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise InputError(
            f"column '{name}' not found in '{path}' (columns: {columns}); pass {option}."
        )
    return frame[name]


def _missing(values) -> list[int]:
    """Positions holding None/NaN or a blank string."""
    blank = values.isna() | values.map(lambda v: isinstance(v, str) and not v.strip())
    return [i for i, flag in enumerate(blank.to_numpy()) if flag]


def _rows(positions) -> str:
    """'1 row of' / '3 rows of', for messages."""
    return f"{len(positions)} row{'s' if len(positions) != 1 else ''} of"


def _which(positions) -> str:
    """'row 2' / 'rows 2, 4, ...' (1-based), for messages."""
    shown = ", ".join(str(i + 1) for i in positions[:5])
    return f"row{'s' if len(positions) != 1 else ''} " + shown + (", ..." if len(positions) > 5 else "")


def read_texts(frame, column, path) -> list[str]:
    values = _column(frame, column, path, "--text-col")
    missing = [i for i, flag in enumerate(values.isna().to_numpy()) if flag]  # "" is a text
    if missing:
        raise CommandError(
            f"{_rows(missing)} '{path}' without text in column '{column}' ("
            f"{_which(missing)}, counting data rows from 1); fill or drop them."
        )
    return [str(v) for v in values.tolist()]


def read_labels(frame, column, path):
    import numpy as np

    values = _column(frame, column, path, "--label-col")
    empty = _missing(values)
    if empty:
        raise CommandError(
            f"{_rows(empty)} '{path}' with an empty label in column '{column}' ("
            f"{_which(empty)}, counting data rows from 1); fill or drop them."
        )
    return np.asarray(values.tolist())


# -- writing --------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path):
    """Yield a temporary path next to ``path``; move it onto ``path`` only on success."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"output folder '{folder}' does not exist.")
    # The temporary name keeps the suffix so writers that infer a format still do.
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}",
                                         dir=folder)
    os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def atomic_folder(path):
    """Yield a temporary folder; swap it in for ``path`` only on success."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"--out '{path}' is a file; give a folder for the model.")
    if path.is_dir() and any(path.iterdir()) and not (path / MODEL_META).exists():
        raise InputError(
            f"--out '{path}' is a folder that holds other files and no fewshot model; "
            "choose a new folder."
        )
    if not path.parent.is_dir():
        raise InputError(f"output folder '{path.parent}' does not exist.")
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield temporary
        os.chmod(temporary, 0o777 & ~_umask())
        if path.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old",
                                            dir=path.parent))
            os.replace(path, retired / "model")
            os.replace(temporary, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def write_table(frame, path) -> None:
    suffix = Path(path).suffix.lower()
    with atomic_file(path) as temporary:
        if suffix == ".csv":
            frame.to_csv(temporary, index=False)
        elif suffix == ".tsv":
            frame.to_csv(temporary, index=False, sep="\t")
        elif suffix in (".jsonl", ".ndjson"):
            frame.to_json(temporary, orient="records", lines=True, force_ascii=False)
        elif suffix in (".parquet", ".pq"):
            frame.to_parquet(temporary, index=False)
        else:  # checked before any work is done; kept as a guard
            raise InputError(f"cannot write '{path}': use .csv, .tsv, .jsonl or .parquet.")


def _check_suffix(path, allowed, option="--out"):
    if path is not None and Path(path).suffix.lower() not in allowed:
        raise click.BadParameter(
            f"'{path}' must end in one of {', '.join(allowed)}.", param_hint=option
        )


# -- option types ---------------------------------------------------------------------


class LayersType(click.ParamType):
    """``all``, one layer (``4``, ``-1``) or a comma-separated list (``2,4,6``)."""

    name = "LAYERS"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, list, tuple)):
            return value
        text = str(value).strip().lower()
        if text == "all":
            return "all"
        try:
            numbers = [int(part) for part in text.split(",")]
        except ValueError:
            self.fail(f"{value!r} is not 'all', a layer number or a list such as 2,4,6.",
                      param, ctx)
        return numbers[0] if len(numbers) == 1 else numbers


LAYERS = LayersType()


def _names(value, choices, option):
    names = [part.strip() for part in value.split(",") if part.strip()]
    for name in names:
        if name not in choices:
            raise click.BadParameter(f"{name!r} is not one of {', '.join(choices)}.",
                                     param_hint=option)
    return tuple(names)


def _model_option(command):
    return click.option(
        "--model", default=DEFAULT_MODEL, show_default=True,
        help="Hugging Face model id or local model folder.",
    )(command)


def _quiet_option(command):
    return click.option("--quiet", "-q", is_flag=True, help="No progress bars or notes.")(command)


def _text_col_option(command):
    return click.option("--text-col", default="text", show_default=True,
                        help="Column holding the texts.")(command)


def _local_or_id(model: str) -> str:
    """A local folder as an absolute path (so a saved model works from any folder)."""
    expanded = os.path.expanduser(model)
    return os.path.abspath(expanded) if os.path.isdir(expanded) else model


INPUT = click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))


# -- commands -------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fewshot")
def cli():
    """fewshot: Hugging Face encoders as scikit-learn building blocks for few labelled texts.

    INPUT files are .csv, .tsv, .jsonl or .parquet. Exit codes: 0 ok, 2 usage error
    (bad option, missing file or column), 1 failure.
    """


@cli.command()
@INPUT
@_text_col_option
@_model_option
@click.option("--layers", type=LAYERS, default="-1", show_default=True,
              help="'all', one layer (0 = embeddings, -1 = last) or a list such as 2,4,6.")
@click.option("--pooling", type=click.Choice(POOLINGS), default="mean", show_default=True)
@click.option("--head", type=click.Choice(["logits", "proba"]), default=None,
              help="Append the model's classification-head output.")
@click.option("--normalize", is_flag=True, help="L2-normalise each row's hidden-state features.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output file: .npy (float32 array) or .parquet (one column per feature).")
@_quiet_option
@_reported
def embed(input_path, text_col, model, layers, pooling, head, normalize, batch_size, out, quiet):
    """Embed the texts of INPUT, one row per input row, in input order."""
    from .embedder import DistilEmbedder

    _check_suffix(out, (".npy", ".parquet"))
    texts = read_texts(read_table(input_path), text_col, input_path)
    embedder = DistilEmbedder(model=model, layers=layers, pooling=pooling, head=head,
                              normalize=normalize, batch_size=batch_size, progress=not quiet)
    features = embedder.fit_transform(texts)
    if Path(out).suffix.lower() == ".npy":
        import numpy as np

        with atomic_file(out) as temporary, open(temporary, "wb") as stream:
            np.save(stream, features)
    else:
        import pandas as pd

        frame = pd.DataFrame(features, columns=[str(c) for c in embedder.get_feature_names_out()])
        write_table(frame, out)
    _note(quiet, f"Wrote {features.shape[0]} x {features.shape[1]} embeddings to {out}")


def _sample_per_class(y, n, seed):
    """Positions of ``n`` rows per class, drawn with ``seed``, in input order."""
    import numpy as np

    rng = np.random.default_rng(seed)
    chosen = []
    classes, counts = np.unique(y, return_counts=True)
    for label, count in zip(classes, counts):
        if count < n:
            raise CommandError(
                f"class {label!r} has only {count} rows but --n-per-class is {n}; "
                "lower it or add rows."
            )
        chosen.extend(rng.choice(np.flatnonzero(y == label), size=n, replace=False))
    return np.sort(np.asarray(chosen))


@cli.command()
@INPUT
@_text_col_option
@click.option("--label-col", default="label", show_default=True, help="Column holding the labels.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Model folder to write (replaced if it holds an earlier fewshot model).")
@_model_option
@click.option("--setfit", is_flag=True,
              help="Fine-tune the encoder with SetFit instead of fitting a linear probe.")
@click.option("--n-per-class", type=click.IntRange(min=1), default=None,
              help="Train on N randomly drawn rows per class (few-shot).")
@click.option("--layers", type=LAYERS, default="-1", show_default=True,
              help="Layer(s) to use; --setfit takes one layer.")
@click.option("--pooling", type=click.Choice(POOLINGS), default="mean", show_default=True)
@click.option("--n-iterations", type=click.IntRange(min=1), default=None,
              help="SetFit: pair-sampling rounds (default: SetFitClassifier's).")
@click.option("--random-state", type=int, default=0, show_default=True,
              help="Seed of --n-per-class sampling and of SetFit.")
@_quiet_option
@_reported
def train(input_path, text_col, label_col, out, model, setfit, n_per_class, layers, pooling,
          n_iterations, random_state, quiet):
    """Train a classifier on INPUT and save it to a model folder.

    Without --setfit: Pipeline([DistilEmbedder, LogisticRegression]). The saved pipeline
    holds parameters and the fitted linear head but no encoder weights: `fewshot predict`
    reloads the encoder by the name or absolute folder path given to --model, so that
    model must still be loadable there.
    """
    if setfit and not isinstance(layers, int):
        raise click.BadParameter("--setfit fine-tunes one layer; give a single number.",
                                 param_hint="--layers")
    if n_iterations is not None and not setfit:
        raise click.BadParameter("only used with --setfit.", param_hint="--n-iterations")
    frame = read_table(input_path)
    texts = read_texts(frame, text_col, input_path)
    y = read_labels(frame, label_col, input_path)
    if n_per_class is not None:
        keep = _sample_per_class(y, n_per_class, random_state)
        texts, y = [texts[i] for i in keep], y[keep]
    if len(set(y.tolist())) < 2:
        raise CommandError(f"column '{label_col}' holds a single class; a classifier needs two.")
    model = _local_or_id(model)
    meta = {"format": 1, "kind": "setfit" if setfit else "pipeline", "model": model,
            "text_col": text_col, "label_col": label_col, "layers": layers,
            "pooling": pooling, "n_train": len(texts), "fewshot_version": __version__}

    with atomic_folder(out) as folder:
        if setfit:
            try:
                from fewshot.setfit import SetFitClassifier
            except ImportError as exc:
                raise CommandError(
                    "--setfit needs fewshot.SetFitClassifier, which this installation of "
                    "fewshot does not have."
                ) from exc
            params = {"model": model, "layer": layers, "pooling": pooling,
                      "random_state": random_state}
            if n_iterations is not None:
                params["n_iterations"] = n_iterations
            clf = SetFitClassifier(**params).fit(texts, y)
            clf.save(str(folder / "setfit"))
        else:
            import skops.io
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import Pipeline

            from .embedder import DistilEmbedder

            clf = Pipeline([
                ("embed", DistilEmbedder(model=model, layers=layers, pooling=pooling,
                                         progress=not quiet)),
                ("classify", LogisticRegression(max_iter=1000)),
            ]).fit(texts, y)
            clf.set_params(embed__progress=False)  # the saved model stays quiet
            # skops, not pickle: loading a model folder must not run arbitrary code.
            skops.io.dump(clf, folder / "pipeline.skops")
        meta["classes"] = [c.item() if hasattr(c, "item") else c for c in clf.classes_]
        (folder / MODEL_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    kind = "SetFit" if setfit else "linear probe"
    _note(quiet, f"Trained a {kind} on {len(texts)} texts ({len(meta['classes'])} classes); "
                 f"saved to {out}. The encoder is reloaded from {model} when predicting.")


def load_model_folder(folder):
    """Return ``(classifier, metadata)`` from a folder written by ``fewshot train``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"model folder '{folder}' does not exist.")
    try:
        meta = json.loads((folder / MODEL_META).read_text(encoding="utf-8"))
        kind = meta["kind"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CommandError(
            f"'{folder}' is not a readable fewshot model folder (no valid {MODEL_META}); "
            "make one with `fewshot train`."
        ) from exc
    try:
        if kind == "setfit":
            from fewshot.setfit import SetFitClassifier

            clf = SetFitClassifier.load(str(folder / "setfit"))
        elif kind == "pipeline":
            import skops.io

            file = folder / "pipeline.skops"
            untrusted = skops.io.get_untrusted_types(file=file)
            foreign = [t for t in untrusted if not t.startswith(("sklearn.", "numpy.", "fewshot."))]
            if foreign:
                raise ValueError(f"it holds types outside scikit-learn, numpy and fewshot: {foreign}")
            clf = skops.io.load(file, trusted=untrusted)
        else:
            raise ValueError(f"unknown model kind {kind!r}")
    except Exception as exc:  # unpickling and loading raise many types
        raise CommandError(
            f"cannot load the model in '{folder}': {_first_line(exc)}"
        ) from exc
    return clf, meta


@cli.command()
@click.argument("model_dir", metavar="MODEL_DIR", type=click.Path())
@INPUT
@click.option("--text-col", default=None, help="Column holding the texts [default: as in training].")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Predictions file (.csv, .tsv, .jsonl or .parquet).")
@_quiet_option
@_reported
def predict(model_dir, input_path, text_col, out, quiet):
    """Predict a label and class probabilities for every row of INPUT, in input order.

    Writes columns `label` (the most probable class) and `proba_<class>` (one per
    class). The encoder is reloaded by the name or folder recorded at training time.
    """
    import numpy as np
    import pandas as pd

    _check_suffix(out, (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".pq"))
    clf, meta = load_model_folder(model_dir)
    text_col = text_col or meta.get("text_col", "text")
    texts = read_texts(read_table(input_path), text_col, input_path)
    if meta["kind"] == "pipeline":
        # Embed once, then ask the fitted head for both labels and probabilities.
        clf.set_params(embed__progress=not quiet)
        features = clf[:-1].transform(texts)
        head = clf[-1]
        labels, proba = head.predict(features), head.predict_proba(features)
    else:
        if "progress" in clf.get_params():
            clf.set_params(progress=not quiet)
        proba = np.asarray(clf.predict_proba(texts))
        labels = np.asarray(clf.classes_)[proba.argmax(axis=1)]
    columns = {"label": np.asarray(labels)}
    for j, label in enumerate(clf.classes_):
        columns[f"proba_{label}"] = np.asarray(proba)[:, j]
    write_table(pd.DataFrame(columns), out)
    _note(quiet, f"Wrote {len(texts)} predictions to {out}")


@cli.command()
@INPUT
@_text_col_option
@click.option("--label-col", default="label", show_default=True, help="Column holding the labels.")
@_model_option
@click.option("--layers", type=LAYERS, default="all", show_default=True)
@click.option("--poolings", default="mean,cls,max", show_default=True,
              help="Comma-separated poolings to compare.")
@click.option("--cv", type=click.IntRange(min=2), default=5, show_default=True,
              help="Cross-validation folds.")
@click.option("--scoring", default=None, help="scikit-learn scorer name [default: accuracy].")
@click.option("--random-state", type=int, default=0, show_default=True)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Also save the score-per-layer plot (.png, .svg or .pdf).")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Also save the table (.csv, .jsonl or .parquet).")
@_quiet_option
@_reported
def probe(input_path, text_col, label_col, model, layers, poolings, cv, scoring, random_state,
          plot_path, out, quiet):
    """Which layer and pooling separate the labels best? Prints a table of CV scores."""
    from .probe import probe_layers

    poolings = _names(poolings, POOLINGS, "--poolings")
    _check_suffix(plot_path, (".png", ".svg", ".pdf"), "--plot")
    _check_suffix(out, (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".pq"))
    frame = read_table(input_path)
    texts = read_texts(frame, text_col, input_path)
    y = read_labels(frame, label_col, input_path)
    result = probe_layers(texts, y, model=model, layers=layers, poolings=poolings, cv=cv,
                          scoring=scoring, random_state=random_state, progress=not quiet)
    click.echo(result.to_string())
    if out:
        write_table(result.table, out)
        _note(quiet, f"Wrote the table to {out}")
    if plot_path:
        _save_figure(result.plot().figure, plot_path, dpi=100)
        _note(quiet, f"Wrote the plot to {plot_path}")


def _save_figure(figure, path, dpi):
    import matplotlib.pyplot as plt

    try:
        with atomic_file(path) as temporary:
            figure.savefig(temporary, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(figure)


@cli.command()
@INPUT
@_text_col_option
@click.option("--label-col", default=None, help="Column of labels to colour by [default: none].")
@_model_option
@click.option("--layers", type=LAYERS, default="-1", show_default=True,
              help="One layer gives one picture; 'all' or a list gives one panel per layer.")
@click.option("--pooling", type=click.Choice(POOLINGS), default="mean", show_default=True)
@click.option("--method", type=click.Choice(["umap", "pca", "tsne"]), default="umap",
              show_default=True, help="2-D projection.")
@click.option("--random-state", type=int, default=0, show_default=True)
@click.option("--dpi", type=click.IntRange(min=20, max=600), default=100, show_default=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Picture file (.png, .svg or .pdf).")
@_quiet_option
@_reported
def plot(input_path, text_col, label_col, model, layers, pooling, method, random_state, dpi,
         out, quiet):
    """Draw the texts of INPUT in 2-D (UMAP by default), coloured by label."""
    from .embedder import DistilEmbedder
    from .viz import _short_model_name, plot_embeddings, plot_layers

    _check_suffix(out, (".png", ".svg", ".pdf"))
    frame = read_table(input_path)
    texts = read_texts(frame, text_col, input_path)
    y = read_labels(frame, label_col, input_path) if label_col else None
    if isinstance(layers, int):
        embedder = DistilEmbedder(model=model, layers=layers, pooling=pooling,
                                  progress=not quiet)
        ax = plot_embeddings(
            texts, y, embedder=embedder, method=method, random_state=random_state,
            title=f"{_short_model_name(model)} · layer {layers} · {pooling} pooling",
        )
        figure = ax.figure
    else:
        figure = plot_layers(texts, y, model=model, layers=layers, pooling=pooling,
                             method=method, random_state=random_state, progress=not quiet)
    _save_figure(figure, out, dpi=dpi)
    _note(quiet, f"Wrote {out}")


@cli.command()
@click.option("--model", default=None,
              help="Model id or folder [default: the anchor model, else all-MiniLM-L6-v2].")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True)
@_quiet_option
@_reported
def demo(model, folds, quiet):
    """The README's main job: zero-shot sentiment and the best layer for topics."""
    from .demo import run_demo

    run_demo(model, folds=folds, progress=not quiet)


def main(argv=None):
    """Entry point of the ``fewshot`` console script."""
    cli.main(args=argv, prog_name="fewshot")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
