"""The backend API: link customers, ask whether they can be reached, push order statuses."""

from __future__ import annotations

from typing import TypeVar

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, ValidationError
from werkzeug.wsgi import get_content_length

from models import iso
from services import customers, linking, orders
from services.errors import Invalid, NotFound
from webapp import schemas
from webapp.auth import require_token

bp = Blueprint("api", __name__)
bp.before_request(require_token(lambda: None))

M = TypeVar("M", bound=BaseModel)


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


def bot_url() -> str:
    return f"https://t.me/{current_app.config['BOT_USERNAME']}"


def deep_link(code: str, username: str | None = None) -> str:
    return f"https://t.me/{username or current_app.config['BOT_USERNAME']}?start={code}"


@bp.get("/subscribe-status")
def subscribe_status():
    """Whether a Telegram user has linked the bot and not blocked it."""
    raw = request.args.get("user_id", "").strip()
    try:
        user_id = int(raw)
    except ValueError:
        raise Invalid("user_id is required and must be an integer Telegram user id", "invalid_user_id") from None
    if not 0 < user_id < 2**63:
        raise Invalid("user_id must be a positive 64-bit integer", "invalid_user_id")
    return jsonify({**customers.subscribe_status(user_id), "bot_url": bot_url()})


@bp.post("/verification-codes")
def issue_code():
    """Issue a one-time code (or register the backend's own) and the bot deep link for it."""
    body = parse(schemas.IssueCodeIn)
    issued = linking.issue(body.code)
    return jsonify({"code": issued.code, "deep_link": deep_link(issued.code), "expires_at": iso(issued.expires_at)}), 201


@bp.post("/verification")
def verification():
    """Has a Telegram user claimed this code yet?"""
    body = parse(schemas.VerificationIn)
    code, user_id = linking.verification_status(body.code)
    if user_id is None:
        return jsonify({"code": code, "user_id": None, "status": "pending"}), 202
    return jsonify({"code": code, "user_id": user_id})


@bp.post("/enter_key_from_user")
def enter_key_from_user():
    """A Telegram user claims a code, as if they had typed it in the bot."""
    body = parse(schemas.EnterKeyIn)
    claim = linking.claim(body.verification_code, body.telegram_user_id)
    return jsonify({"code": claim.code, "user_id": claim.user_id})


@bp.post("/provide_message_to_user")
def provide_message_to_user():
    """Record an order status change; the bot process delivers it."""
    body = parse(schemas.StatusIn)
    result = orders.record_status(body.user_id, body.horeca_id, body.order_id, body.status, body.text)
    return jsonify(result.as_dict()), 200 if result.duplicate else 202


@bp.get("/orders/<horeca_id>/<order_id>")
def get_order(horeca_id: str, order_id: str):
    """An order, its cancel request and the delivery state of each status update."""
    if "\x00" in horeca_id or "\x00" in order_id:  # refused on the way in; PostgreSQL cannot compare NUL
        raise NotFound("no such order", "order_not_found")
    return jsonify(orders.order_view(horeca_id, order_id))
