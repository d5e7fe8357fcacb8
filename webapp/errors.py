"""Every error the API returns is JSON `{"error", "message"}`: never HTML, never a 500 for bad input."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from services.errors import ServiceError

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str, details: list[dict[str, str]] | None = None) -> tuple[Response, int]:
    """The JSON error body every failure answers with (ErrorOut), and its status."""
    body: dict[str, Any] = {"error": code, "message": message}
    if details:
        body["details"] = details
    return jsonify(body), status


def describe_validation(exc: ValidationError) -> tuple[str, list[dict[str, str]]]:
    """A one-line message and per-field details from pydantic's errors (input values left out)."""
    details = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        field = ".".join(str(p) for p in err["loc"]) or "body"
        details.append({"field": field, "message": err["msg"]})
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return message, details


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> tuple[Response, int]:
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError) -> tuple[Response, int]:
        message, details = describe_validation(exc)
        return error_response(400, "validation_error", message, details)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        response, status = error_response(status, _HTTP_CODES.get(status, "http_error"), exc.description or exc.name)
        # Keep the exception's own headers (a 405 must say `Allow`), but not its HTML content type.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, status

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    @app.errorhandler(DBAPIError)
    def _database_error(exc: Exception) -> tuple[Response, int]:
        # The database is down, restarting, dropped this connection, or kept a lock too long: the same request
        # a moment later may well succeed, and every write of the API is safe to repeat (a status sent twice
        # is queued once). Other DBAPI errors are bugs.
        if isinstance(exc, DBAPIError) and not isinstance(exc, OperationalError) and not exc.connection_invalidated:
            return _unexpected(exc)
        log.error("database unavailable: %s", type(getattr(exc, "orig", None) or exc).__name__)
        response, status = error_response(
            503, "database_unavailable", "the database is not answering; send the same request again shortly"
        )
        response.headers["Retry-After"] = "1"
        return response, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error: %s", type(exc).__name__)
        return error_response(500, "internal_error", "internal error; the request was not completed")
