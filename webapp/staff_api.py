"""The backend API for the HoReCa staff bot: staff codes, the staff list, removing staff, stored dialogs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from models import iso
from services import conversation, staff, staff_group
from services.errors import Invalid
from services.media import MediaRef
from webapp import schemas, staff_schemas
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
    return staff.bot_username(current_app.config.get("HORECA_BOT_USERNAME"))


def _timestamp(value: datetime) -> str:
    stamp = iso(value)
    assert stamp is not None
    return stamp


def _media_item(item: MediaRef) -> dict[str, Any]:
    data = item.as_dict()
    data["type"] = data.pop("kind")
    return {k: v for k, v in data.items() if k in staff_schemas.DialogMediaItemOut.model_fields}


def _media_out(m: conversation.StoredMessage) -> dict[str, Any]:
    """A stored message's type, caption and media for DialogMessageOut."""
    out: dict[str, Any] = {"edited_at": m.edited_at}
    if m.media is None:
        return out
    if m.media.album:
        media_out = staff_schemas.DialogMediaOut(
            type="album", items=[staff_schemas.DialogMediaItemOut(**_media_item(i)) for i in m.media.items]
        )
    else:
        fields = _media_item(m.media.items[0])
        fields.pop("caption", None)
        media_out = staff_schemas.DialogMediaOut(**fields)
    return {**out, "type": m.media.kind, "caption": m.text, "media": media_out}


def _conversation_out(found: conversation.Conversation) -> staff_schemas.DialogOut:
    return staff_schemas.DialogOut(
        horeca_id=found.horeca_id,
        user_id=found.user_id,
        customer=staff_schemas.DialogCustomerOut(
            name=found.customer_name, username=found.customer_username, is_bot_blocked=found.customer_blocked
        ),
        unread=found.unread,
        has_more=found.has_more,
        messages=[
            staff_schemas.DialogMessageOut(
                id=m.id,
                direction=m.direction,
                text=m.text,
                created_at=_timestamp(m.created_at),
                staff=staff_schemas.DialogStaffOut(telegram_user_id=m.staff.telegram_user_id, name=m.staff.name)
                if m.staff
                else None,
                order_id=m.order_id,
                delivery=m.delivery,
                **_media_out(m),
            )
            for m in found.messages
        ],
    )


def _json(model: schemas.Out, status: int = 200) -> tuple[Response, int]:
    return jsonify(model.model_dump(mode="json")), status


def _user_id(raw: str) -> int:
    value = _int_arg(raw, "user_id", None, 1, 2**63 - 1)
    assert value is not None
    return value


@bp.post("/horeca/<horeca_id>/staff-codes")
def issue_staff_code(horeca_id: str) -> tuple[Response, int]:
    """A one-time code that makes whoever opens the staff bot with it staff of this horeca."""
    body = parse(staff_schemas.StaffCodeIn)
    issued = staff.issue_code(_horeca(horeca_id), body.horeca_name, ttl_seconds=current_app.config["CODE_TTL_SECONDS"])
    username = staff_bot_username()
    link = deep_link(issued.code, username) if username else None
    return _json(staff_schemas.StaffCodeOut(code=issued.code, deep_link=link, expires_at=_timestamp(issued.expires_at)), 201)


@bp.get("/horeca/<horeca_id>/staff")
def list_staff(horeca_id: str) -> tuple[Response, int]:
    """The horeca's current staff."""
    members = staff.list_staff(_horeca(horeca_id))
    return _json(
        staff_schemas.StaffListOut(
            horeca_id=horeca_id,
            staff=[
                staff_schemas.StaffMemberOut(
                    telegram_user_id=m.telegram_user_id,
                    first_name=m.first_name,
                    last_name=m.last_name,
                    username=m.username,
                    name=m.name,
                    joined_at=_timestamp(m.joined_at),
                )
                for m in members
            ],
        )
    )


@bp.delete("/horeca/<horeca_id>/staff/<telegram_user_id>")
def remove_staff(horeca_id: str, telegram_user_id: str) -> tuple[Response, int]:
    """Remove a staff member: no more customer messages, the cabinet refuses them."""
    removed = staff.remove(_horeca(horeca_id), _user_id(telegram_user_id))
    return _json(
        staff_schemas.StaffRemovedOut(
            horeca_id=removed.horeca_id,
            telegram_user_id=removed.telegram_user_id,
            removed_at=_timestamp(removed.removed_at),
        )
    )


@bp.get("/horeca/<horeca_id>/dialogs/<telegram_user_id>")
def get_dialog(horeca_id: str, telegram_user_id: str) -> tuple[Response, int]:
    """The stored conversation of the horeca with one customer, oldest first."""
    limit = _int_arg(request.args.get("limit"), "limit", 100, 1, MAX_DIALOG_LIMIT)
    before = _int_arg(request.args.get("before"), "before", None, 1, 2**63 - 1)
    assert limit is not None
    found = conversation.conversation(_horeca(horeca_id), _user_id(telegram_user_id), limit=limit, before=before)
    return _json(_conversation_out(found))


@bp.post("/horeca/<horeca_id>/group-codes")
def issue_group_code(horeca_id: str) -> tuple[Response, int]:
    """A one-time code that links the Telegram group it is sent in as this horeca's staff group."""
    body = parse(staff_schemas.StaffCodeIn)
    ttl = current_app.config["CODE_TTL_SECONDS"]
    issued = staff_group.issue_code(_horeca(horeca_id), body.horeca_name, ttl_seconds=ttl)
    username = staff_bot_username()
    link = f"https://t.me/{username}?startgroup={issued.code}&admin=manage_topics" if username else None
    out = staff_schemas.GroupCodeOut(
        code=issued.code, command=f"/link {issued.code}", deep_link=link, expires_at=_timestamp(issued.expires_at)
    )
    return _json(out, 201)
