"""Request checks of the server: what one request may hold, and reading it.

:class:`Limits` bounds a request (body size, number and length of texts);
:func:`read_json` reads a body within them, :func:`texts_of` and :func:`token_ids_of`
take the rows out of it. Every error a client can cause is a :class:`ClientError`
carrying its HTTP status and a message for the client.
"""

from __future__ import annotations

import dataclasses
import json

__all__ = ["ClientError", "Limits", "read_json", "texts_of", "token_ids_of"]


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may hold.

    Parameters
    ----------
    max_body_bytes : int, default=1_000_000
        Largest request body; a larger one gets 413.
    max_texts : int, default=256
        Most texts in one request (422 beyond).
    max_text_chars : int, default=20_000
        Longest text in characters (422 beyond); tokens past the model's
        ``max_length`` are cut as in Python, this bounds the work per text.
    """

    max_body_bytes: int = 1_000_000
    max_texts: int = 256
    max_text_chars: int = 20_000


class ClientError(Exception):
    """A request the server refuses: an HTTP status and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


async def read_json(request, limits: Limits):
    """The JSON body of ``request``, read within ``limits.max_body_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limits.max_body_bytes:
                raise ClientError(413, _too_large(limits))
        except ValueError:
            raise ClientError(400, "the Content-Length header is not a number.") from None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_body_bytes:
            raise ClientError(413, _too_large(limits))
    if not body:
        raise ClientError(400, 'the request has no body; send JSON such as {"texts": ["..."]}.')
    try:
        return json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ClientError(400, f"the body is not valid JSON ({exc}).") from None


def _too_large(limits: Limits) -> str:
    return f"the request body is larger than {limits.max_body_bytes} bytes; send fewer texts."


def texts_of(payload, limits: Limits) -> list[str]:
    """The ``texts`` of a request body, checked against ``limits``."""
    if not isinstance(payload, dict) or "texts" not in payload:
        raise ClientError(422, 'the body must be a JSON object with a "texts" list of strings.')
    texts = payload["texts"]
    if not isinstance(texts, list):
        raise ClientError(422, f'"texts" must be a list of strings, got {type(texts).__name__}.')
    if len(texts) > limits.max_texts:
        raise ClientError(
            422, f'"texts" holds {len(texts)} texts; at most {limits.max_texts} per request.'
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ClientError(422, f"texts[{i}] is {_json_type(text)}, not a string.")
        if len(text) > limits.max_text_chars:
            raise ClientError(
                422, f"texts[{i}] has {len(text)} characters; at most {limits.max_text_chars}."
            )
    return texts


def token_ids_of(payload, limits: Limits, max_length: int | None) -> list[list[int]]:
    """The ``token_ids`` rows of a request body, checked against ``limits`` and ``max_length``."""
    if not isinstance(payload, dict) or "token_ids" not in payload:
        raise ClientError(
            422, 'this model takes token ids: send {"token_ids": [[101, 2204, 102], ...]}.'
        )
    rows = payload["token_ids"]
    if not isinstance(rows, list):
        raise ClientError(422, '"token_ids" must be a list of lists of ints.')
    if len(rows) > limits.max_texts:
        raise ClientError(422, f'"token_ids" holds {len(rows)} rows; at most {limits.max_texts}.')
    for i, ids in enumerate(rows):
        if (
            not isinstance(ids, list)
            or not ids
            or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in ids)
        ):
            raise ClientError(422, f"token_ids[{i}] must be a non-empty list of ints >= 0.")
        if max_length and len(ids) > max_length:
            raise ClientError(422, f"token_ids[{i}] has {len(ids)} tokens; at most {max_length}.")
    return rows


def _json_type(value) -> str:
    names = {
        dict: "an object",
        list: "a list",
        bool: "a boolean",
        type(None): "null",
        int: "a number",
        float: "a number",
    }
    return names.get(type(value), type(value).__name__)
