"""The admin API for the backend's admin screens: what could not be delivered, and queueing it again.

Bearer API token, like the backend API. The same operations as `flask --app wsgi outbox|webhooks ...`.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from services import outbox_admin
from webapp import schemas
from webapp.api import parse
from webapp.auth import require_token

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(require_token(lambda: None))


@bp.get("/outbox")
def outbox_list():
    """Outbox messages (status updates, dialog messages) by state, newest first, with the reason they failed."""
    query = schemas.OutboxQuery.model_validate(request.args.to_dict())
    items = outbox_admin.list_outbox(query.state, query.limit)
    return jsonify({"state": query.state, "items": [item.as_dict() for item in items]})


@bp.post("/outbox/retry")
def outbox_retry():
    """Queue failed (or blocked) messages again: `{"ids": [...]}` or `{"all_failed": true}`."""
    body = parse(schemas.RetryIn)
    return jsonify(outbox_admin.retry_outbox(body.ids, body.all_failed).as_dict())


@bp.get("/webhooks")
def webhooks_list():
    """Webhook events for the backend by state, newest first, with the reason they failed."""
    query = schemas.WebhookQuery.model_validate(request.args.to_dict())
    items = outbox_admin.list_webhooks(query.state, query.limit)
    return jsonify({"state": query.state, "items": [item.as_dict() for item in items]})


@bp.post("/webhooks/retry")
def webhooks_retry():
    """Queue failed webhook events again: `{"ids": [...]}` or `{"all_failed": true}`."""
    body = parse(schemas.RetryIn)
    return jsonify(outbox_admin.retry_webhooks(body.ids, body.all_failed).as_dict())
