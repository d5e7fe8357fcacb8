"""The admin API for the backend's admin screens: what could not be delivered, and queueing it again.

Bearer API token, like the backend API. The same operations as `flask --app wsgi outbox|webhooks ...`.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from services import outbox_admin
from webapp import schemas
from webapp.auth import require_admin
from webapp.bodies import parse, reply

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(require_admin(lambda: None))


@bp.get("/outbox")
def outbox_list() -> Response:
    """Outbox messages (status updates, dialog messages) by state, newest first, with the reason they failed."""
    query = schemas.OutboxQuery.model_validate(request.args.to_dict())
    items = outbox_admin.list_outbox(query.state, query.limit)
    return reply(schemas.OutboxListOut, {"state": query.state, "items": items})


@bp.post("/outbox/retry")
def outbox_retry() -> Response:
    """Queue failed (or blocked) messages again: `{"ids": [...]}` or `{"all_failed": true}`."""
    body = parse(schemas.RetryIn)
    return reply(schemas.RetryOut, outbox_admin.retry_outbox(body.ids, body.all_failed))


@bp.get("/webhooks")
def webhooks_list() -> Response:
    """Webhook events for the backend by state, newest first, with the reason they failed."""
    query = schemas.WebhookQuery.model_validate(request.args.to_dict())
    items = outbox_admin.list_webhooks(query.state, query.limit)
    return reply(schemas.WebhookListOut, {"state": query.state, "items": items})


@bp.post("/webhooks/retry")
def webhooks_retry() -> Response:
    """Queue failed webhook events again: `{"ids": [...]}` or `{"all_failed": true}`."""
    body = parse(schemas.RetryIn)
    return reply(schemas.RetryOut, outbox_admin.retry_webhooks(body.ids, body.all_failed))
