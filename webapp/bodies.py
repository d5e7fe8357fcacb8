"""JSON bodies in and out: a request body parsed into its `*In` model, a response written through its `*Out` model.

The `*Out` models in `webapp.schemas` are the one definition of each response shape: views hand a service's
outcome (a dataclass, or a mapping where the view adds what only the edge knows, such as a deep link) to `reply`,
and `/openapi.json` is generated from the same models.
"""

from __future__ import annotations

from typing import TypeVar

from flask import Response, current_app, request
from pydantic import BaseModel, ValidationError
from werkzeug.wsgi import get_content_length

from services.errors import Invalid

M = TypeVar("M", bound=BaseModel)


class ResponseMismatch(RuntimeError):
    """A service outcome that does not fit its response model: a bug here (500), not bad input (400)."""


def parse(model: type[M]) -> M:
    """The JSON body validated against `model`; a JSON 400 for anything else."""
    environ = request.environ
    length = get_content_length(environ)  # None when absent, invalid or chunked
    if length is not None and length <= current_app.config["MAX_CONTENT_LENGTH"]:
        # Read in one call of the known length: get_data() reads through a length-limiting wrapper in
        # 64 KiB chunks, each into a fresh buffer, which was a third of this function's cost under load.
        raw = environ["wsgi.input"].read(length)
    else:
        raw = request.get_data(cache=True)  # chunked, or too large: Werkzeug's checks (413)
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
