"""The backend API for the HoReCa staff bot: staff codes, the staff list, removing staff, stored dialogs."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from models import BotHeartbeat, db, iso
from services import dialogs, staff
from services.errors import Invalid
from webapp import schemas
from webapp.api import deep_link, parse
from webapp.auth import require_token

bp = Blueprint("staff_api", __name__)
bp.before_request(require_token(lambda: None))

MAX_DIALOG_LIMIT = 500


def _horeca(horeca_id: str) -> str:
    """The path's horeca id, checked like the body's (1 to 128 characters, no NUL)."""
    if not 0 < len(horeca_id) <= 128 or "\x00" in horeca_id:
        raise Invalid("horeca_id must be 1 to 128 characters", "invalid_horeca_id")
    return horeca_id


def _int_arg(raw: str | None, name: str, default: int | None, low: int, high: int) -> int | None:
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"{name} must be an integer", f"invalid_{name}") from None
    if not low <= value <= high:
        raise Invalid(f"{name} must be between {low} and {high}", f"invalid_{name}")
    return value


def staff_bot_username() -> str | None:
    """HORECA_BOT_USERNAME, else the username the running staff bot reported in its heartbeat."""
    configured = current_app.config.get("HORECA_BOT_USERNAME")
    if configured:
        return configured
    beat = db.session.get(BotHeartbeat, "horeca")
    username = beat.username if beat is not None else None
    db.session.rollback()
    return username


def _user_id(raw: str) -> int:
    value = _int_arg(raw, "user_id", None, 1, 2**63 - 1)
    assert value is not None
    return value


@bp.post("/horeca/<horeca_id>/staff-codes")
def issue_staff_code(horeca_id: str):
    """A one-time code that makes whoever opens the staff bot with it staff of this horeca."""
    body = parse(schemas.StaffCodeIn)
    issued = staff.issue_code(_horeca(horeca_id), body.horeca_name, ttl_seconds=current_app.config["CODE_TTL_SECONDS"])
    username = staff_bot_username()
    link = deep_link(issued.code, username) if username else None
    return jsonify({"code": issued.code, "deep_link": link, "expires_at": iso(issued.expires_at)}), 201


@bp.get("/horeca/<horeca_id>/staff")
def list_staff(horeca_id: str):
    """The horeca's current staff."""
    return jsonify({"horeca_id": horeca_id, "staff": staff.list_staff(_horeca(horeca_id))})


@bp.delete("/horeca/<horeca_id>/staff/<telegram_user_id>")
def remove_staff(horeca_id: str, telegram_user_id: str):
    """Remove a staff member: no more customer messages, the cabinet refuses them."""
    return jsonify(staff.remove(_horeca(horeca_id), _user_id(telegram_user_id)))


@bp.get("/horeca/<horeca_id>/dialogs/<telegram_user_id>")
def get_dialog(horeca_id: str, telegram_user_id: str):
    """The stored conversation of the horeca with one customer, oldest first."""
    limit = _int_arg(request.args.get("limit"), "limit", 100, 1, MAX_DIALOG_LIMIT)
    before = _int_arg(request.args.get("before"), "before", None, 1, 2**63 - 1)
    assert limit is not None
    return jsonify(dialogs.conversation(_horeca(horeca_id), _user_id(telegram_user_id), limit=limit, before=before))
