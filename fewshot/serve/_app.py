"""The server's app and its routes, ``run`` and the ``python -m fewshot.serve`` entry point.

What the server does is described in :mod:`fewshot.serve`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
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
    max_batch: int | None = None,
    max_wait_ms: float | None = None,
    batching: bool = True,
    n_threads: int | None = None,
):
    """The Starlette app serving ``model`` (an :class:`OnnxClassifier` or a file path).

    Parameters
    ----------
    model : OnnxClassifier or str or path-like
        A path is opened with ``n_threads`` ONNX Runtime threads and a batch size of
        ``max_batch``.
    limits : Limits, optional
        Request limits (defaults of :class:`Limits`).
    max_batch, max_wait_ms : optional
        Micro-batching (defaults of :class:`MicroBatcher`: 64 texts, 5 ms).
    batching : bool, default=True
        False: one request per ONNX Runtime call.
    n_threads : int, optional
        ONNX Runtime intra-op threads when ``model`` is a path (default: one per core).

    Returns
    -------
    starlette.applications.Starlette
    """
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    options = {"max_batch": max_batch, "max_wait_ms": max_wait_ms}
    options = {k: v for k, v in options.items() if v is not None}
    opened = not isinstance(model, OnnxClassifier)
    if opened:
        model = OnnxClassifier(model, n_threads=n_threads)
    batcher = MicroBatcher(model, batching=batching, **options)
    if opened:  # one ONNX Runtime call per batch
        model.batch_size = max(batcher.max_batch, 1)
    handlers = _Handlers(model, batcher, limits or Limits())

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = Starlette(
        routes=[
            Route("/predict", handlers.predict, methods=["POST"]),
            Route("/embed", handlers.embed, methods=["POST"]),
            Route("/health", handlers.health, methods=["GET"]),
        ],
        exception_handlers={HTTPException: handlers.http_error, Exception: handlers.server_error},
        lifespan=lifespan,
    )
    app.state.model = model
    app.state.batcher = batcher
    return app


class _Handlers:
    """The routes of one app: read and check a request, queue it, answer in JSON."""

    def __init__(self, model: OnnxClassifier, batcher: MicroBatcher, limits: Limits):
        self.model, self.batcher, self.limits = model, batcher, limits
        self.started = time.time()

    @staticmethod
    def error(status: int, message: str):
        from starlette.responses import JSONResponse

        return JSONResponse({"error": message}, status_code=status)

    async def rows_of(self, request):
        payload = await read_json(request, self.limits)
        if self.model.inputs == "token_ids":
            return token_ids_of(payload, self.limits, self.model.max_length)
        return texts_of(payload, self.limits)

    async def run(self, request):
        """Read and check the request, queue it and wait; None for an empty list."""
        with self.batcher.incoming():
            rows = await self.rows_of(request)
            if not rows:
                return None
            # Queued in the same step as it stops counting as arriving (no await between).
            future = self.batcher.enqueue(rows)
        return await future

    async def predict(self, request):
        from starlette.responses import JSONResponse

        model = self.model
        try:
            if model.classes_ is None:
                raise ClientError(
                    404, "this model is a feature extractor: POST /embed for its features."
                )
            result = await self.run(request)
        except ClientError as exc:
            return self.error(exc.status, exc.message)
        classes = _plain_list(model.classes_)
        if result is None:
            return JSONResponse({"labels": [], "probabilities": [], "classes": classes})
        labels = result["label"]
        if model.manifest.get("class_type") == "bool":
            labels = labels.astype(bool)
        probabilities = result["probabilities"].astype(float).tolist()
        return JSONResponse(
            {"labels": _plain_list(labels), "probabilities": probabilities, "classes": classes}
        )

    async def embed(self, request):
        from starlette.responses import JSONResponse

        try:
            result = await self.run(request)
        except ClientError as exc:
            return self.error(exc.status, exc.message)
        if result is None:
            return JSONResponse({"features": []})
        return JSONResponse({"features": result["features"].astype(float).tolist()})

    async def health(self, request):
        from starlette.responses import JSONResponse

        model, batcher = self.model, self.batcher
        return JSONResponse(
            {
                "status": "shutting down" if batcher.closing else "ok",
                "model": os.path.basename(model.path),
                "kind": model.kind,
                "inputs": model.inputs,
                "classes": None if model.classes_ is None else _plain_list(model.classes_),
                "uptime_s": round(time.time() - self.started, 3),
                "batching": {
                    "enabled": batcher.batching,
                    "max_batch": batcher.max_batch,
                    "max_wait_ms": batcher.max_wait * 1000.0,
                },
                "limits": dataclasses.asdict(self.limits),
                "stats": dict(batcher.stats),
            },
            status_code=503 if batcher.closing else 200,
        )

    async def http_error(self, request, exc):
        return self.error(exc.status_code, str(exc.detail))

    async def server_error(self, request, exc):
        logger.exception("unhandled error on %s", request.url.path, exc_info=exc)
        return self.error(500, "internal server error; see the server log.")


def run(
    path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    n_threads: int | None = None,
    limits: Limits | None = None,
    max_batch: int | None = None,
    max_wait_ms: float | None = None,
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
        Micro-batching (defaults of :class:`MicroBatcher`).
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
    app = create_app(
        path,
        limits=limits,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        batching=batching,
        n_threads=n_threads,
    )
    uvicorn.run(
        app,
        host=host,
        port=int(port),
        log_level=log_level,
        timeout_graceful_shutdown=graceful_timeout,
        access_log=log_level == "debug",
    )


def main(argv=None) -> None:
    """``python -m fewshot.serve MODEL.onnx [options]``: the ``fewshot serve`` command.

    The options are declared once, by the command line (``fewshot serve --help``); this
    entry point runs that command, with nothing of torch or scikit-learn imported.
    """
    from ._command import serve

    serve.main(args=argv, prog_name="python -m fewshot.serve")


if __name__ == "__main__":  # pragma: no cover
    main()
