"""JSON bodies in and out: a request body parsed into its `*In` model, a response written through its `*Out` model.

The `*Out` models in `webapp.schemas` are the one definition of each response shape: views hand a service's
outcome (a dataclass, or a mapping where the view adds what only the edge knows, such as a deep link) to `reply`,
and `/openapi.json` is generated from the same models.
"""

from __future__ import annotations

from typing import Any, BinaryIO, TypeVar

from flask import Response, current_app, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wsgi import get_content_length

from services.errors import Invalid

M = TypeVar("M", bound=BaseModel)


class MalformedBody(Invalid):
    """A body the server could not read to its end (broken chunked framing, cut short): 400 `bad_request`."""

    code = "bad_request"


class ResponseMismatch(RuntimeError):
    """A service outcome that does not fit its response model: a bug here (500), not bad input (400)."""


def parse(model: type[M]) -> M:
    """The JSON body validated against `model`; a JSON 400 for anything else."""
    raw = raw_body()
    if not raw.strip():
        return model.model_validate({})
    try:
        return model.model_validate_json(raw)  # parsed and validated in one pass (pydantic's own JSON parser)
    except ValidationError as exc:
        whole_body = {error["type"] for error in exc.errors(include_url=False) if not error["loc"]}
        if "json_invalid" in whole_body:
            raise Invalid("the body is not valid JSON", "invalid_json") from None
        if "model_type" in whole_body:
            raise Invalid("the body must be a JSON object", "invalid_json") from None
        raise


_BODY = "customer_bot.body"


def raw_body() -> bytes:
    """The request's body, read once (a scoped key's check reads it before the view: `webapp.scopes`)."""
    environ = request.environ
    cached: bytes | None = environ.get(_BODY)
    if cached is None:
        cached = environ[_BODY] = _read_body(environ)
    return cached


def _read_body(environ: dict[str, Any]) -> bytes:
    length = get_content_length(environ)  # None when absent, invalid or chunked
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    try:
        if length is not None and length <= limit:
            # Read in one call of the known length: get_data() reads through a length-limiting wrapper in
            # 64 KiB chunks, each into a fresh buffer, which was a third of this function's cost under load.
            raw = environ["wsgi.input"].read(length)
        elif length is not None:
            raise RequestEntityTooLarge()
        elif "wsgi.input_terminated" in environ:  # chunked: the server ends the stream where the body ends
            raw = _read_to_end(environ["wsgi.input"], limit)
        else:
            raw = b""  # neither a length nor a server that ends the stream: nothing can be read safely
    except HTTPException:
        raise  # 413: answered as JSON by webapp.errors
    except Exception as exc:  # noqa: BLE001 - the server's body reader: every failure is the client's framing
        # Gunicorn raises its parser's errors here (a chunk shorter than its size line says, a bad size line,
        # the connection closed inside a chunk), Werkzeug's development server an OSError: bad input, not a 500.
        raise MalformedBody(f"the request body could not be read ({type(exc).__name__})") from None
    if length is not None and len(raw) < length:  # the client closed its side before sending Content-Length bytes
        raise MalformedBody(f"the body ended after {len(raw)} of the {length} bytes Content-Length announced")
    return bytes(raw)


def _read_to_end(stream: BinaryIO, limit: int) -> bytes:
    """A stream without a length (a chunked body) read to its end; 413 past `limit` bytes.

    Not `request.get_data()`: its limiting wrapper stops at the limit without a word, so a chunked body over
    MAX_BODY_BYTES was cut there and parsed (and taken, when the cut fell in trailing whitespace).
    """
    body = bytearray()
    while len(body) <= limit:
        piece = stream.read(limit + 1 - len(body))  # a server's stream may return less than asked (one chunk)
        if not piece:
            return bytes(body)
        body += piece
    raise RequestEntityTooLarge()


def reply(model: type[BaseModel], outcome: object, status: int = 200, *, exclude_unset: bool = False) -> Response:
    """`outcome` (attributes or a mapping) validated into `model` and written as JSON by pydantic (no dict, no jsonify).

    `exclude_unset` leaves out the optional fields the outcome does not give (the health document when the
    database is down).
    """
    try:
        body = model.model_validate(outcome, from_attributes=True)
    except ValidationError as exc:
        raise ResponseMismatch(f"{model.__name__}: {exc}") from None
    data = body.__pydantic_serializer__.to_json(body, exclude_unset=exclude_unset)
    return current_app.response_class(data + b"\n", status=status, mimetype="application/json")
