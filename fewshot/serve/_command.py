"""``fewshot serve`` / ``python -m fewshot.serve``: the server's one command.

Its options are declared here once, with the defaults of :func:`~fewshot.serve.run`,
:class:`~fewshot.serve.MicroBatcher` and :class:`~fewshot.serve.Limits` (written there
once); the ``fewshot`` command line registers this command, and ``python -m
fewshot.serve`` runs it. Only click and the torch-free runtime are imported.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import click

from .._core.errors import first_line
from ._app import run
from ._batching import MicroBatcher
from ._requests import Limits

__all__ = ["serve"]

_RUN = inspect.signature(run).parameters
_BATCHER = inspect.signature(MicroBatcher).parameters
_LIMITS = Limits()


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
        raise click.BadParameter(f"ONNX file '{model}' does not exist.", param_hint="MODEL.onnx")
    try:
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
    except (OSError, ValueError, ImportError) as exc:  # one line, as every command
        raise click.ClickException(first_line(exc)) from exc
