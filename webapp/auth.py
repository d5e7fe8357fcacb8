"""Bearer-token authentication for the backend API."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, request
from flask.typing import ResponseReturnValue

from webapp.errors import error_response


def bearer() -> str | None:
    """The request's bearer token, if it sent one."""
    header = request.environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def token_matches(expected: str) -> bool:
    """Constant-time comparison of the request's bearer token with `expected`."""
    token = bearer()
    if token is None or not expected:
        return False
    return hmac.compare_digest(token.encode(), expected.encode())


def scoped_caller() -> Any:
    """The `services.api_keys.Caller` of a valid scoped key (set by `webapp.scopes`), or None."""
    return g.get("api_key")


OPERATOR_HINT = "send METRICS_TOKEN (or the API token) as 'Authorization: Bearer <token>'"


def operator_token() -> bool:
    """The request carries METRICS_TOKEN or the API token: it may read /metrics, health details, /openapi.json."""
    config = current_app.config
    return any(token_matches(token) for token in (config.get("METRICS_TOKEN"), config["API_TOKEN"]) if token)


def require_token(view: Callable[..., ResponseReturnValue | None]) -> Callable[..., ResponseReturnValue | None]:
    """401 JSON unless the request carries `Authorization: Bearer <API_TOKEN>` or a scoped key `webapp.scopes` let through."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue | None:
        if not token_matches(current_app.config["API_TOKEN"]) and scoped_caller() is None:
            return error_response(401, "unauthorized", "send the API token as 'Authorization: Bearer <token>'")
        return view(*args, **kwargs)

    return wrapper


def require_admin(view: Callable[..., ResponseReturnValue | None]) -> Callable[..., ResponseReturnValue | None]:
    """401 JSON unless the request carries the admin key, `API_TOKEN` (scoped keys get 403 from `webapp.scopes` first)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue | None:
        if not token_matches(current_app.config["API_TOKEN"]):
            return error_response(401, "unauthorized", "send the API token as 'Authorization: Bearer <token>'")
        return view(*args, **kwargs)

    return wrapper
