"""Errors the service layer raises; the edges translate them (HTTP status, a bot reply)."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the service refuses, with a machine code and a message for a person."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class Invalid(ServiceError):
    status = 400
    code = "invalid_request"
