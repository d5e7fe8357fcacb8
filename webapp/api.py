"""The backend API: link customers, ask whether they can be reached, push order statuses."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from services import customers, linking, orders
from services.errors import Invalid, NotFound
from services.order_details import Details, Item
from webapp import schemas
from webapp.auth import require_token
from webapp.bodies import parse, reply

__all__ = ["bp", "deep_link", "parse"]  # parse: staff_api and admin take it from here too

bp = Blueprint("api", __name__)
bp.before_request(require_token(lambda: None))


def bot_url() -> str:
    return f"https://t.me/{current_app.config['BOT_USERNAME']}"


def deep_link(code: str, username: str | None = None) -> str:
    return f"https://t.me/{username or current_app.config['BOT_USERNAME']}?start={code}"


@bp.get("/subscribe-status")
def subscribe_status() -> Response:
    """Whether a Telegram user has linked the bot and not blocked it."""
    raw = request.args.get("user_id", "").strip()
    try:
        user_id = int(raw)
    except ValueError:
        raise Invalid("user_id is required and must be an integer Telegram user id", "invalid_user_id") from None
    if not 0 < user_id < 2**63:
        raise Invalid("user_id must be a positive 64-bit integer", "invalid_user_id")
    return reply(schemas.SubscribeStatusOut, {**vars(customers.subscribe_status(user_id)), "bot_url": bot_url()})


@bp.post("/verification-codes")
def issue_code() -> Response:
    """Issue a one-time code (or register the backend's own) and the bot deep link for it."""
    body = parse(schemas.IssueCodeIn)
    issued = linking.issue(body.code, ttl_seconds=current_app.config["CODE_TTL_SECONDS"])
    out = {"code": issued.code, "deep_link": deep_link(issued.code), "expires_at": issued.expires_at}
    return reply(schemas.IssuedCodeOut, out, 201)


@bp.post("/verification")
def verification() -> Response:
    """Has a Telegram user claimed this code yet?"""
    body = parse(schemas.VerificationIn)
    found = linking.verification_status(body.code)
    if found.user_id is None:
        return reply(schemas.PendingOut, {"code": found.code, "user_id": None, "status": "pending"}, 202)
    return reply(schemas.ClaimedOut, found)


@bp.post("/enter_key_from_user")
def enter_key_from_user() -> Response:
    """A Telegram user claims a code, as if they had typed it in the bot."""
    body = parse(schemas.EnterKeyIn)
    assert body.telegram_user_id is not None  # the model fills it from either spelling
    return reply(schemas.ClaimedOut, linking.claim(body.verification_code, body.telegram_user_id))


@bp.post("/provide_message_to_user")
def provide_message_to_user() -> Response:
    """Record an order status change (or, without a status, a text about the order); the bot process delivers it."""
    body = parse(schemas.StatusIn)
    details = None
    if body.items is not None or body.total is not None or body.eta is not None or body.pickup_code is not None:
        items = tuple(Item(i.name, i.qty) for i in body.items) if body.items is not None else None
        details = Details(items, body.total, body.eta, body.pickup_code)
    if body.status is None:
        assert body.text  # the model requires a status or a text
        result = orders.record_note(body.user_id, body.horeca_id, body.order_id, body.text, body.message_id, details)
    else:
        result = orders.record_status(body.user_id, body.horeca_id, body.order_id, body.status, body.text, details)
    return reply(schemas.RecordedOut, result, 200 if result.duplicate else 202)


@bp.get("/orders/<horeca_id>/<order_id>")
def get_order(horeca_id: str, order_id: str) -> Response:
    """An order, its cancel request and the delivery state of each status update."""
    if "\x00" in horeca_id or "\x00" in order_id:  # refused on the way in; PostgreSQL cannot compare NUL
        raise NotFound("no such order", "order_not_found")
    return reply(schemas.OrderOut, orders.order_view(horeca_id, order_id))
