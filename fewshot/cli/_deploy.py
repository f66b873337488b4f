"""The deployment commands: ``fewshot export`` (folder -> one ONNX file) and ``fewshot serve``."""

from __future__ import annotations

from pathlib import Path

import click

from ..serve._command import serve
from ._support import (
    CommandError,
    InputError,
    first_line,
    note,
    quiet_option,
    reported,
    texts_of,
    trust_options,
)

__all__ = ["export", "serve"]


@click.command()
@click.argument("model_dir", metavar="MODEL_DIR", type=click.Path())
@click.argument("out", metavar="OUT", type=click.Path(dir_okay=False))
@click.option(
    "--quantize",
    type=click.Choice(["int8"]),
    default=None,
    help="int8 encoder weights: a file about 4x smaller, faster on CPUs [default: float32].",
)
@click.option(
    "--inputs",
    type=click.Choice(["text", "token_ids"]),
    default="text",
    show_default=True,
    help="text: the file tokenises (needs onnxruntime-extensions at run time); "
    "token_ids: it takes input_ids and attention_mask.",
)
@click.option(
    "--check-texts",
    "check_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Table of texts (.csv, .tsv, .jsonl, .parquet) to measure the file's "
    "agreement with the Python model on [default: the 80 demo texts].",
)
@click.option(
    "--text-col",
    default="text",
    show_default=True,
    help="Column of --check-texts holding the texts.",
)
@trust_options
@quiet_option
@reported
def export(
    model_dir, out, quantize, inputs, check_path, text_col, trust_remote_code, trusted, quiet
):
    """Export the model folder MODEL_DIR (from `fewshot train` or save) to one ONNX file OUT.

    The file goes from text to label and class probabilities with no Python model
    code: tokenizer, encoder cut at the used layer, pooling and head in one graph. The
    agreement with the Python model (float32, and int8 with --quantize) is measured,
    printed and stored in the file. Run it with fewshot.runtime.OnnxClassifier or
    `fewshot serve OUT`.
    """
    from ..export._assemble import to_onnx
    from ..model_folder import load_model, read_manifest
    from ._tables import check_suffix, read_table

    check_suffix(out, (".onnx",), "OUT")
    if not Path(model_dir).is_dir():
        raise InputError(f"model folder '{model_dir}' does not exist.")
    read_manifest(model_dir)
    check_texts = None
    if check_path is not None:
        if not Path(check_path).is_file():
            raise InputError(f"--check-texts file '{check_path}' does not exist.")
        check_texts, _ = texts_of(read_table(check_path), text_col, check_path, True, quiet)
    try:
        estimator = load_model(
            model_dir, device="cpu", trust_remote_code=trust_remote_code, trusted=trusted
        )
    except Exception as exc:  # unpacking a broken folder raises many types
        raise CommandError(f"cannot load the model in '{model_dir}': {first_line(exc)}") from exc
    note(quiet, f"Exporting {model_dir} to {out} ...")
    report = to_onnx(
        estimator, out, quantize=quantize, inputs=inputs, check_texts=check_texts, verbose=False
    )
    if not quiet:
        click.echo(report.summary(), err=True)
