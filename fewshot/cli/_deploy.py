"""The deployment commands: ``fewshot export`` (folder -> one ONNX file) and ``fewshot serve``."""

from __future__ import annotations

import inspect
from pathlib import Path

import click

from ..serve._app import run
from ..serve._batching import MicroBatcher
from ..serve._requests import Limits
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

# The server's defaults are written once (fewshot.serve.run, MicroBatcher, Limits); the options
# below read them (and `python -m fewshot.serve` runs this very command).
_RUN = inspect.signature(run).parameters
_BATCHER = inspect.signature(MicroBatcher).parameters
_LIMITS = Limits()


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


@click.command()
@click.argument("model", metavar="MODEL.onnx", type=click.Path(dir_okay=False))
@click.option(
    "--host",
    default=_RUN["host"].default,
    show_default=True,
    help="Interface to listen on (0.0.0.0: every interface).",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=_RUN["port"].default, show_default=True
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="ONNX Runtime threads [default: one per core].",
)
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    default=_BATCHER["max_batch"].default,
    show_default=True,
    help="Most texts run together in one ONNX Runtime call.",
)
@click.option(
    "--max-wait-ms",
    type=click.FloatRange(min=0),
    default=_BATCHER["max_wait_ms"].default,
    show_default=True,
    help="How long a request waits for others to share its call.",
)
@click.option("--no-batching", is_flag=True, help="Run every request on its own.")
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=_LIMITS.max_body_bytes,
    show_default=True,
    help="Largest request body (413 beyond).",
)
@click.option(
    "--max-texts",
    type=click.IntRange(min=1),
    default=_LIMITS.max_texts,
    show_default=True,
    help="Most texts per request (422 beyond).",
)
@click.option(
    "--max-text-chars",
    type=click.IntRange(min=1),
    default=_LIMITS.max_text_chars,
    show_default=True,
    help="Longest text in characters (422 beyond).",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default=_RUN["log_level"].default,
    show_default=True,
)
@reported
def serve(
    model,
    host,
    port,
    threads,
    max_batch,
    max_wait_ms,
    no_batching,
    max_body_bytes,
    max_texts,
    max_text_chars,
    log_level,
):
    """Serve MODEL.onnx (from `fewshot export`) over HTTP until Ctrl-C or SIGTERM.

    POST /predict {"texts": [...]} returns labels and probabilities, POST /embed the
    features, GET /health the model and counters. Concurrent requests are batched into
    one ONNX Runtime call (waiting at most --max-wait-ms). Nothing of torch or
    scikit-learn is imported; `python -m fewshot.serve MODEL.onnx` is the same command.
    """
    if not Path(model).is_file():
        raise InputError(f"ONNX file '{model}' does not exist.")
    run(
        model,
        host=host,
        port=port,
        n_threads=threads,
        limits=Limits(
            max_body_bytes=max_body_bytes, max_texts=max_texts, max_text_chars=max_text_chars
        ),
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        batching=not no_batching,
        log_level=log_level,
    )
