"""/openapi.json: the API described from the same pydantic models that validate it."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from flask import Blueprint, Response, current_app, jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from webapp import schemas, staff_schemas
from webapp.auth import OPERATOR_HINT, operator_token
from webapp.errors import error_response

bp = Blueprint("openapi", __name__)

REF = "#/components/schemas/{model}"


def _json(model: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}}}


# Every authenticated endpoint uses the database, hence a 503 on each: three errors, three reactions.
DATABASE_FAULTS = (
    "The database cannot serve; `error` says why. `database_unavailable`: it is not answering; send the same "
    "request again after Retry-After (1) seconds. `storage_unavailable`: its storage is read-only or full and "
    "nothing was changed; an operator must act: back off (Retry-After: 30, longer each time), keep the request "
    "and alert. `database_not_migrated`: it has no schema; run `flask --app wsgi db upgrade` (Retry-After: 30)."
)
RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before sending the same request again", "schema": {"type": "integer"}}
}


def _errors(*statuses: int) -> dict[str, Any]:
    """The error responses of an endpoint, with the 503 of a database that cannot serve."""
    text = {
        400: "Bad input",
        401: "Missing or wrong API token",
        403: "A scoped API key may not call this endpoint (`forbidden`)",
        404: "Not found",
        409: "Conflict",
        413: "Body too large",
    }
    responses = {str(s): _json("ErrorOut", text[s]) for s in statuses}
    responses["503"] = {**_json("ErrorOut", DATABASE_FAULTS), "headers": RETRY_AFTER}
    return responses


def _health(description: str) -> dict[str, Any]:
    """/healthz's answer: the short shape without a token, the whole document with one."""
    one_of = [{"$ref": REF.format(model="HealthStatusOut")}, {"$ref": REF.format(model="HealthOut")}]
    return {"description": description, "content": {"application/json": {"schema": {"oneOf": one_of}}}}


def _body(model: str) -> dict[str, Any]:
    return {"required": False, "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}}}


Mode = Literal["validation", "serialization"]


def _validated(*models: type[BaseModel]) -> list[tuple[type[BaseModel], Mode]]:
    """Request bodies: the schema of what validation accepts."""
    return [(model, "validation") for model in models]


def _serialized(*models: type[BaseModel]) -> list[tuple[type[BaseModel], Mode]]:
    """Responses: the schema of what serialisation writes."""
    return [(model, "serialization") for model in models]


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    models = [
        *_validated(schemas.IssueCodeIn, schemas.VerificationIn, schemas.EnterKeyIn, schemas.StatusIn),
        *_serialized(
            schemas.ErrorOut,
            schemas.SubscribeStatusOut,
            schemas.IssuedCodeOut,
            schemas.ClaimedOut,
            schemas.PendingOut,
            schemas.RecordedOut,
            schemas.OrderOut,
            schemas.HealthOut,
            schemas.HealthStatusOut,
        ),
        # The staff bot's endpoints (issue 4), then the admin API (issue 5).
        *_validated(staff_schemas.StaffCodeIn),
        *_serialized(
            staff_schemas.StaffCodeOut, staff_schemas.StaffListOut, staff_schemas.StaffRemovedOut, staff_schemas.DialogOut
        ),
        *_validated(schemas.RetryIn),
        *_serialized(schemas.OutboxListOut, schemas.WebhookListOut, schemas.RetryOut),
        *_serialized(staff_schemas.GroupCodeOut),  # the staff group (issue 12)
        # Cafe profiles (issue 11).
        *_validated(schemas.HorecaProfileIn),
        *_serialized(schemas.HorecaProfileOut),
        # API keys scoped to cafes (issue 11).
        *_validated(schemas.ApiKeyIn),
        *_serialized(schemas.ApiKeyCreatedOut, schemas.ApiKeyListOut, schemas.ApiKeyDeletedOut),
    ]
    _, defs = models_json_schema(models, ref_template=REF)
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    paths = {
        "/subscribe-status": {
            "get": {
                "summary": "Can this Telegram user be reached through the bot?",
                "security": secured,
                "parameters": [
                    {
                        "name": "user_id",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                    },
                    {
                        "name": "customer_bot",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "Accepted and ignored (the seed's flag)",
                    },
                ],
                "responses": {"200": _json("SubscribeStatusOut", "The user's state"), **_errors(400, 401)},
            }
        },
        "/verification-codes": {
            "post": {
                "summary": "Issue a one-time code (or register the backend's own) with its deep link",
                "security": secured,
                "requestBody": _body("IssueCodeIn"),
                "responses": {"201": _json("IssuedCodeOut", "Issued"), **_errors(400, 401, 409, 413)},
            }
        },
        "/verification/": {
            "post": {
                "summary": "Has a Telegram user claimed this code?",
                "security": secured,
                "requestBody": {**_body("VerificationIn"), "required": True},
                "responses": {
                    "200": _json("ClaimedOut", "Claimed"),
                    "202": _json("PendingOut", "Issued, not claimed yet"),
                    **_errors(400, 401, 404, 413),
                },
            }
        },
        "/enter_key_from_user/": {
            "post": {
                "summary": "A Telegram user claims a code, as if typed in the bot",
                "security": secured,
                "requestBody": {**_body("EnterKeyIn"), "required": True},
                "responses": {"200": _json("ClaimedOut", "Claimed"), **_errors(400, 401, 404, 409, 413)},
            }
        },
        "/provide_message_to_user/": {
            "post": {
                "summary": "Record an order status change (or send a text about the order) for the bot to deliver",
                "description": (
                    "With `status`: a new card (with the order's items, total, ETA and pickup code). With `text` and no"
                    " `status`: a message about the order that leaves its status as it is (`status` is null in the"
                    " answer); an order not known yet is created without a status. items, total, eta and pickup_code"
                    " are stored on the order: one left out keeps its earlier value."
                ),
                "security": secured,
                "requestBody": {**_body("StatusIn"), "required": True},
                "responses": {
                    "202": _json("RecordedOut", "Queued for delivery"),
                    "200": _json(
                        "RecordedOut",
                        "The same status (or the same message_id) was recorded before; nothing queued, its update_id",
                    ),
                    **_errors(400, 401, 404, 409, 413),
                },
            }
        },
        "/orders/{horeca_id}/{order_id}": {
            "get": {
                "summary": "An order with the delivery state of each status update",
                "security": secured,
                "parameters": [
                    {"name": "horeca_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}},
                    {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}},
                ],
                "responses": {"200": _json("OrderOut", "The order"), **_errors(401, 404)},
            }
        },
        "/healthz": {
            "get": {
                "summary": "Can the web app serve? For the load balancer",
                "description": (
                    'Without a token only `{"status"}`; with METRICS_TOKEN or the API token (or when the server'
                    " sets PUBLIC_HEALTH_DETAILS=1) the database's state, the bots' heartbeats and the backlogs."
                ),
                "security": [{}, *secured],  # the token is optional: it adds the details
                "responses": {
                    "200": _health("Serving"),
                    "503": _health("The database is unreachable, read_only, full or not_migrated"),
                },
            }
        },
    }
    paths.update(_staff_paths(secured))
    paths.update(_operations_paths(secured))
    paths.update(_cafe_paths(secured))
    paths.update(_api_key_paths(secured))
    _scoped_key_answers(paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Customer bot API",
            "version": "1.0.0",
            "description": "Link website customers to Telegram and push order status changes.",
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": defs["$defs"],
        },
        "paths": paths,
    }


def _staff_paths(secured: list[dict[str, list[str]]]) -> dict[str, Any]:
    """The staff bot's endpoints (issue 4)."""
    horeca = {
        "name": "horeca_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[^\\x00]*$"},
    }
    user = {
        "name": "telegram_user_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    }
    return {
        "/horeca/{horeca_id}/staff-codes": {
            "post": {
                "summary": "Issue a one-time staff code with the staff bot's deep link",
                "security": secured,
                "parameters": [horeca],
                "requestBody": _body("StaffCodeIn"),
                "responses": {"201": _json("StaffCodeOut", "Issued"), **_errors(400, 401, 413)},
            }
        },
        "/horeca/{horeca_id}/staff": {
            "get": {
                "summary": "The horeca's current staff",
                "security": secured,
                "parameters": [horeca],
                "responses": {"200": _json("StaffListOut", "Staff, in the order they joined"), **_errors(400, 401)},
            }
        },
        "/horeca/{horeca_id}/staff/{telegram_user_id}": {
            "delete": {
                "summary": "Remove a staff member (repeating it changes nothing)",
                "security": secured,
                "parameters": [horeca, user],
                "responses": {"200": _json("StaffRemovedOut", "Removed"), **_errors(400, 401, 404)},
            }
        },
        "/horeca/{horeca_id}/dialogs/{telegram_user_id}": {
            "get": {
                "summary": "The stored conversation of the horeca with one customer, oldest first",
                "security": secured,
                "parameters": [
                    horeca,
                    user,
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
                        "description": "At most this many of the newest messages",
                    },
                    {
                        "name": "before",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                        "description": "Only messages with a smaller id (paging back)",
                    },
                ],
                "responses": {"200": _json("DialogOut", "The conversation"), **_errors(400, 401, 404)},
            }
        },
        "/horeca/{horeca_id}/group-codes": {
            "post": {
                "summary": "Issue a one-time group code: sent in a Telegram group, it links the group as the staff group",
                "security": secured,
                "parameters": [horeca],
                "requestBody": _body("StaffCodeIn"),
                "responses": {"201": _json("GroupCodeOut", "Issued"), **_errors(400, 401, 413)},
            }
        },
    }


def _operations_paths(secured: list[dict[str, list[str]]]) -> dict[str, Any]:
    """Health of the bot process, and the admin endpoints for failed deliveries (issue 5). /metrics is not JSON: not here."""

    def listing(summary: str, states: list[str], out: str) -> dict[str, Any]:
        return {
            "get": {
                "summary": summary,
                "security": secured,
                "parameters": [
                    {
                        "name": "state",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": states, "default": "all"},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                        "description": "At most this many rows, newest first",
                    },
                ],
                "responses": {"200": _json(out, "Rows, newest first"), **_errors(400, 401)},
            }
        }

    def retry(summary: str) -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "security": secured,
                "requestBody": {**_body("RetryIn"), "required": True},
                "responses": {"200": _json("RetryOut", "What was queued again and what was skipped"), **_errors(400, 401, 413)},
            }
        }

    return {
        "/healthz/bot": {
            "get": {
                "summary": "Is the bot process alive? 503 once a bot is silent for BOT_STALE_SECONDS",
                "description": "METRICS_TOKEN or the API token, unless the server sets PUBLIC_HEALTH_DETAILS=1.",
                "security": secured,
                "responses": {
                    "200": _json("HealthOut", "Every bot is alive"),
                    "401": _json("ErrorOut", "Missing or wrong token"),
                    "503": _json("HealthOut", "A bot is stale or was never seen, or the database cannot serve"),
                },
            }
        },
        "/admin/outbox": listing(
            "Messages for the bot to deliver, by state, with the reason they failed",
            ["all", "failed", "blocked", "pending", "sent"],
            "OutboxListOut",
        ),
        "/admin/outbox/retry": retry("Queue failed (or blocked) messages again: these ids, or all failed ones"),
        "/admin/webhooks": listing(
            "Events for the backend's webhook, by state, with the reason they failed",
            ["all", "failed", "pending", "sent"],
            "WebhookListOut",
        ),
        "/admin/webhooks/retry": retry("Queue failed webhook events again: these ids, or all failed ones"),
    }


def _cafe_paths(secured: list[dict[str, list[str]]]) -> dict[str, Any]:
    """Cafe profiles (issue 11)."""
    horeca = {
        "name": "horeca_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[^\\x00]*$"},
    }
    return {
        "/horeca/{horeca_id}": {
            "put": {
                "summary": "Store the cafe's profile: name, timezone, contact, its own status texts per language",
                "security": secured,
                "parameters": [horeca],
                "requestBody": {**_body("HorecaProfileIn"), "required": True},
                "responses": {"200": _json("HorecaProfileOut", "The stored profile"), **_errors(400, 401, 413)},
            },
            "get": {
                "summary": "The cafe's profile (404 horeca_not_found until it has one)",
                "security": secured,
                "parameters": [horeca],
                "responses": {"200": _json("HorecaProfileOut", "The profile"), **_errors(400, 401, 404)},
            },
        }
    }


def _api_key_paths(secured: list[dict[str, list[str]]]) -> dict[str, Any]:
    """The admin's endpoints for keys scoped to cafes (issue 11)."""
    return {
        "/api-keys": {
            "post": {
                "summary": "Mint a key for some cafes (admin key only); the key is shown in this answer only",
                "security": secured,
                "requestBody": {**_body("ApiKeyIn"), "required": True},
                "responses": {"201": _json("ApiKeyCreatedOut", "Created"), **_errors(400, 401, 403, 413)},
            },
            "get": {
                "summary": "Every scoped key, without secrets, with when it was last used (admin key only)",
                "security": secured,
                "responses": {"200": _json("ApiKeyListOut", "The keys, oldest first"), **_errors(401, 403)},
            },
        },
        "/api-keys/{key_id}": {
            "delete": {
                "summary": "Delete a key: refused from the next request on, in every worker (admin key only)",
                "security": secured,
                "parameters": [{"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json("ApiKeyDeletedOut", "Deleted"), **_errors(401, 403, 404)},
            }
        },
    }


SCOPED_PATHS = ("/horeca/{horeca_id}", "/orders/{horeca_id}", "/provide_message_to_user/")
CUSTOMER_PATHS = ("/subscribe-status", "/verification-codes", "/verification/", "/enter_key_from_user/")


def _scoped_key_answers(paths: dict[str, Any]) -> None:
    """What a scoped key can get besides the route's own answers (webapp/scopes.py): 404 for another cafe's id, 403
    outside its scope. Applied to every documented path, so routes added later are described as they behave."""
    for path, operations in paths.items():
        for operation in operations.values():
            if not operation.get("security") or path == "/healthz" or path in CUSTOMER_PATHS:
                continue
            if any(path == p or path.startswith(p.rstrip("/") + "/") for p in SCOPED_PATHS):
                operation["responses"].setdefault("404", _json("ErrorOut", "Not found (for a scoped API key: another cafe's id)"))
            else:
                operation["responses"].setdefault("403", _json("ErrorOut", "A scoped API key may not call this endpoint"))


@bp.get("/openapi.json")
def openapi_json() -> Response | tuple[Response, int]:
    """The document, for METRICS_TOKEN or the API token (or anyone with PUBLIC_OPENAPI=1)."""
    if not (current_app.config.get("PUBLIC_OPENAPI") or operator_token()):
        return error_response(401, "unauthorized", OPERATOR_HINT)
    return jsonify(document())
