"""A small HTTP server for an exported model: ``POST /predict``, ``POST /embed``, ``GET /health``.

Built on :mod:`fewshot.runtime` (ONNX Runtime and numpy; no torch), Starlette and
Uvicorn. Why these: Starlette is a small, stable ASGI toolkit (its only dependency is
anyio) and Uvicorn its reference server, so a deployment pulls in three small packages
rather than a framework; the request checks are fewshot's own (``fewshot.serve._requests``),
so every error a client can cause gets its own clear message. Start it with ``fewshot serve
model.onnx`` or, without loading the rest of fewshot, ``python -m fewshot.serve model.onnx``.

Requests and responses are JSON::

    POST /predict  {"texts": ["late again", ...]}
      -> {"labels": [...], "probabilities": [[...], ...], "classes": [...]}
    POST /embed    {"texts": [...]}
      -> {"features": [[...], ...]}
    GET  /health   -> {"status": "ok", "kind": ..., "classes": ..., "stats": {...}}

A file exported with ``inputs="token_ids"`` takes ``{"token_ids": [[101, ...], ...]}``
instead of ``texts``. Client errors are 4xx with a JSON body ``{"error": message}``:
400 body is not JSON, 404/405 unknown route or method, 413 body larger than
``max_body_bytes``, 422 missing or malformed ``texts``, non-string items, too many or
too long texts; 503 while shutting down.

Micro-batching: requests that arrive while the model is busy are run together as one
ONNX Runtime call of up to ``max_batch`` texts; a request also waits (at most
``max_wait_ms``) for others that are being received at that moment, never when it is
alone. One call runs at a time, with all the threads ONNX Runtime was given.

Shutdown is graceful: on SIGINT or SIGTERM the server stops accepting connections,
finishes the requests it has, then exits.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
import time

import numpy as np

from ..runtime._classifier import OnnxClassifier
from ._batching import MicroBatcher
from ._requests import ClientError, Limits, read_json, texts_of, token_ids_of

__all__ = ["Limits", "MicroBatcher", "create_app", "main", "run"]

logger = logging.getLogger("fewshot.serve")


def _plain_list(values: np.ndarray) -> list:
    return [v.item() if isinstance(v, np.generic) else v for v in values.tolist()]


# -- the app ----------------------------------------------------------------------------


def create_app(
    model,
    *,
    limits: Limits | None = None,
    max_batch: int = 64,
    max_wait_ms: float = 5.0,
    batching: bool = True,
):
    """The Starlette app serving ``model`` (an :class:`OnnxClassifier` or a file path).

    Parameters
    ----------
    model : OnnxClassifier or str or path-like
    limits : Limits, optional
        Request limits (defaults of :class:`Limits`).
    max_batch, max_wait_ms, batching
        Micro-batching (see :class:`MicroBatcher`).

    Returns
    -------
    starlette.applications.Starlette
    """
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    if not isinstance(model, OnnxClassifier):
        model = OnnxClassifier(model, batch_size=max(int(max_batch), 1))
    limits = limits or Limits()
    batcher = MicroBatcher(model, max_batch=max_batch, max_wait_ms=max_wait_ms, batching=batching)
    started = time.time()

    def error(status: int, message: str):
        return JSONResponse({"error": message}, status_code=status)

    async def rows_of(request):
        payload = await read_json(request, limits)
        if model.inputs == "token_ids":
            return token_ids_of(payload, limits, model.max_length)
        return texts_of(payload, limits)

    async def run(request):
        """Read and check the request, queue it and wait; None for an empty list."""
        with batcher.incoming():
            rows = await rows_of(request)
            if not rows:
                return None
            # Queued in the same step as it stops counting as arriving (no await between).
            future = batcher.enqueue(rows)
        return await future

    async def predict(request):
        try:
            if model.classes_ is None:
                raise ClientError(
                    404, "this model is a feature extractor: POST /embed for its features."
                )
            result = await run(request)
            if result is None:
                return JSONResponse(
                    {"labels": [], "probabilities": [], "classes": _plain_list(model.classes_)}
                )
        except ClientError as exc:
            return error(exc.status, exc.message)
        labels = result["label"]
        if model.manifest.get("class_type") == "bool":
            labels = labels.astype(bool)
        return JSONResponse(
            {
                "labels": _plain_list(labels),
                "probabilities": result["probabilities"].astype(float).tolist(),
                "classes": _plain_list(model.classes_),
            }
        )

    async def embed(request):
        try:
            result = await run(request)
            if result is None:
                return JSONResponse({"features": []})
        except ClientError as exc:
            return error(exc.status, exc.message)
        return JSONResponse({"features": result["features"].astype(float).tolist()})

    async def health(request):
        return JSONResponse(
            {
                "status": "shutting down" if batcher.closing else "ok",
                "model": os.path.basename(model.path),
                "kind": model.kind,
                "inputs": model.inputs,
                "classes": None if model.classes_ is None else _plain_list(model.classes_),
                "uptime_s": round(time.time() - started, 3),
                "batching": {
                    "enabled": batcher.batching,
                    "max_batch": batcher.max_batch,
                    "max_wait_ms": batcher.max_wait * 1000.0,
                },
                "limits": dataclasses.asdict(limits),
                "stats": dict(batcher.stats),
            },
            status_code=503 if batcher.closing else 200,
        )

    async def http_error(request, exc):
        return error(exc.status_code, str(exc.detail))

    async def server_error(request, exc):
        logger.exception("unhandled error on %s", request.url.path, exc_info=exc)
        return error(500, "internal server error; see the server log.")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = Starlette(
        routes=[
            Route("/predict", predict, methods=["POST"]),
            Route("/embed", embed, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.model = model
    app.state.batcher = batcher
    return app


def run(
    path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    n_threads: int | None = None,
    limits: Limits | None = None,
    max_batch: int = 64,
    max_wait_ms: float = 5.0,
    batching: bool = True,
    graceful_timeout: float = 10.0,
    log_level: str = "info",
) -> None:
    """Serve the exported model at ``path`` until SIGINT or SIGTERM.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`fewshot.export.to_onnx`.
    host : str, default="127.0.0.1"
        Interface to listen on ("0.0.0.0" for every interface).
    port : int, default=8000
    n_threads : int, optional
        ONNX Runtime intra-op threads (default: one per core).
    limits : Limits, optional
    max_batch, max_wait_ms, batching
        Micro-batching (see :class:`MicroBatcher`).
    graceful_timeout : float, default=10.0
        Seconds to let open requests finish after a shutdown signal.
    log_level : str, default="info"
    """
    try:
        import uvicorn
    except ImportError as exc:
        raise ImportError(
            "fewshot serve needs starlette and uvicorn, which are not installed. Install the "
            "extra: pip install 'fewshot[serve]'"
        ) from exc
    model = OnnxClassifier(path, n_threads=n_threads, batch_size=max(int(max_batch), 1))
    app = create_app(
        model, limits=limits, max_batch=max_batch, max_wait_ms=max_wait_ms, batching=batching
    )
    uvicorn.run(
        app,
        host=host,
        port=int(port),
        log_level=log_level,
        timeout_graceful_shutdown=graceful_timeout,
        access_log=log_level == "debug",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fewshot.serve",
        description="Serve an exported fewshot ONNX file over HTTP (POST /predict, /embed; "
        "GET /health).",
    )
    defaults = Limits()
    parser.add_argument("model", help="the .onnx file written by `fewshot export`")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--no-batching", action="store_true")
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes)
    parser.add_argument("--max-texts", type=int, default=defaults.max_texts)
    parser.add_argument("--max-text-chars", type=int, default=defaults.max_text_chars)
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    return parser


def main(argv=None) -> None:
    """``python -m fewshot.serve MODEL.onnx [--port 8000 ...]``."""
    args = _parser().parse_args(argv)
    try:
        run(
            args.model,
            host=args.host,
            port=args.port,
            n_threads=args.threads,
            limits=Limits(args.max_body_bytes, args.max_texts, args.max_text_chars),
            max_batch=args.max_batch,
            max_wait_ms=args.max_wait_ms,
            batching=not args.no_batching,
            log_level=args.log_level,
        )
    except (OSError, ValueError, ImportError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":  # pragma: no cover
    main()
