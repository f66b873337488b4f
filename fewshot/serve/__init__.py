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

from ._app import Limits, MicroBatcher, create_app, main, run

__all__ = ["Limits", "MicroBatcher", "create_app", "main", "run"]
