"""``fewshot distill``: a model folder and a pool of unlabelled texts -> a static student folder."""

from __future__ import annotations

from pathlib import Path

import click

from ._support import (
    INPUT,
    InputError,
    note,
    quiet_option,
    reported,
    skip_option,
    text_col_option,
    texts_of,
    trust_options,
)

__all__ = ["distill"]


@click.command()
@click.argument("model_dir", metavar="MODEL_DIR", type=click.Path())
@INPUT
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for the student (replaced only if it holds a fewshot model).",
)
@text_col_option
@click.option(
    "--label-col",
    default=None,
    help="Column of INPUT with labels for some rows (empty cells: unlabelled); those "
    "labels replace the teacher's probabilities.",
)
@click.option(
    "--pca-dims",
    type=click.IntRange(min=2),
    default=None,
    help="Width of the student's token vectors (int8, so 256 dims of a 30,522-token "
    "vocabulary are 7.8 MB) [default: StaticStudentClassifier's].",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=0),
    default=None,
    help="Passes of tuning the table on the pool [default: StaticStudentClassifier's].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="random_state of the student.")
@trust_options
@skip_option
@quiet_option
@reported
def distill(
    model_dir,
    input_path,
    out,
    text_col,
    label_col,
    pca_dims,
    epochs,
    seed,
    trust_remote_code,
    trusted,
    skip_bad_rows,
    quiet,
):
    """Distil the classifier in MODEL_DIR into a static student, using the texts of INPUT.

    INPUT is a pool of texts of the task (.csv, .tsv, .jsonl or .parquet), unlabelled:
    the teacher labels them with its probabilities. The student needs no transformer
    at prediction time: `fewshot predict OUT ...` runs it, and `fewshot export OUT
    student.onnx` writes it as one ONNX file of a few MB.
    """
    from ..distill import MIN_POOL, StaticStudentClassifier
    from ..model_folder import MANIFEST, load_model, read_manifest
    from ._tables import atomic_folder, read_table

    if not Path(model_dir).is_dir():
        raise InputError(f"model folder '{model_dir}' does not exist.")
    read_manifest(model_dir)
    frame = read_table(input_path)
    texts, keep = texts_of(frame, text_col, input_path, skip_bad_rows, quiet)
    labels = None
    if label_col is not None:
        if label_col not in frame.columns:
            raise InputError(
                f"column '{label_col}' not found in '{input_path}'; it has "
                f"{', '.join(map(str, frame.columns))}."
            )
        labels = [None if value != value else value for value in frame[label_col].iloc[keep]]
    teacher = load_model(
        model_dir, device="cpu", trust_remote_code=trust_remote_code, trusted=list(trusted) or None
    )
    if labels is not None:
        # The table's cells are text; the teacher's classes may be numbers.
        by_text = {str(c): c for c in getattr(teacher, "classes_", [])}
        labels = [None if v is None else by_text.get(str(v), v) for v in labels]
    params = {"random_state": seed, "progress": not quiet}
    # Options left unset take the estimator's own defaults (written there once).
    options = {"pca_dims": pca_dims, "epochs": epochs}
    params.update({k: v for k, v in options.items() if v is not None})
    student = StaticStudentClassifier(teacher=teacher, **params)
    note(
        quiet,
        f"Distilling {model_dir} on {len(texts)} texts (at least {MIN_POOL} needed) "
        f"into {student.pca_dims}-dim static token vectors...",
    )
    student.fit(texts, labels)
    student.set_params(progress=False)  # the saved model stays quiet
    metadata = {
        "command": "fewshot distill",
        "teacher_folder": str(model_dir),
        "input": str(input_path),
        "text_col": text_col,
        "label_col": label_col,
        "n_pool": len(texts),
    }
    with atomic_folder(out, marker=MANIFEST) as folder:
        student.save(folder, metadata=metadata)
    table_mb = student.embeddings_.nbytes / 2**20
    note(
        quiet,
        f"Saved a static student ({len(student.classes_)} classes, table {table_mb:.1f} MB) "
        f"to {out}.",
    )
