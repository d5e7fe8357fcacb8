"""Every error the API returns is JSON `{"error", "message"}`: never HTML, never a 500 for bad input."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from models import db
from services import storage
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


# Seconds the backend should wait before sending again after a storage fault: a person has to act, and a
# retry every second would only fill the log (storage_unavailable, database_not_migrated).
STORAGE_RETRY_AFTER = 30


def database_fault(found: storage.Diagnosis) -> tuple[Response, int]:
    """The 503 for a database that cannot serve, and the log line that names the cause."""
    if found.fault == storage.Fault.UNREACHABLE:
        # Down, restarting, dropped this connection, or kept a lock too long: the same request a moment later
        # may well succeed, and every write of the API is safe to repeat (a status sent twice is queued once).
        log.error("database unavailable: %s", found.cause)
        response, status = error_response(
            503, "database_unavailable", "the database is not answering; send the same request again shortly"
        )
        response.headers["Retry-After"] = "1"
        return response, status
    if found.fault == storage.Fault.NOT_MIGRATED:
        log.error("database not migrated (%s): run `%s`", found.cause, storage.UPGRADE_COMMAND)
        response, status = error_response(
            503,
            "database_not_migrated",
            f"the database has no schema (or an older one) and cannot serve until `{storage.UPGRADE_COMMAND}` is run; "
            "sending again before that changes nothing",
        )
    else:
        log.error("storage unavailable: the database is %s (%s); writes are refused until it is fixed", found.fault, found.cause)
        response, status = error_response(
            503,
            "storage_unavailable",
            f"the database's storage is {'read-only' if found.fault == storage.Fault.READ_ONLY else 'full'}: "
            "nothing was changed; an operator must fix it, send the same request again later (not at once)",
        )
    response.headers["Retry-After"] = str(STORAGE_RETRY_AFTER)
    return response, status


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
        # Told apart (services/storage.py), because each asks the backend for something else. Other DBAPI
        # errors are bugs.
        found = storage.diagnose(exc, storage.sqlite_path(db.engine))
        if found is None:
            return _unexpected(exc)
        return database_fault(found)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error: %s", type(exc).__name__)
        return error_response(500, "internal_error", "internal error; the request was not completed")
