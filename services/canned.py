"""Canned replies: short phrases a horeca's staff save once and send to the selected dialogs with one tap."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.engine import CursorResult

from database import transaction
from models import CannedReply, PromptEnd, db, utcnow
from services import staff
from services.cabinet import clean_text
from services.errors import Invalid, NotFound
from services.outreach import Sent, send_to_selected

MAX_REPLY_CHARS = 200
MAX_REPLIES = 30


@dataclass(frozen=True)
class Reply:
    id: int
    text: str


def list_replies(telegram_user_id: int) -> list[Reply]:
    """The current horeca's canned replies, oldest first."""
    with transaction():  # current_member may repair the account's state
        _, member, _ = staff.current_member(telegram_user_id)
        stmt = select(CannedReply).where(CannedReply.horeca_id == member.horeca_id).order_by(CannedReply.id)
        return [Reply(r.id, r.text) for r in db.session.scalars(stmt)]


def add_reply(telegram_user_id: int, text: str) -> Reply:
    """Save a short canned reply for the current horeca; the account goes back to idle."""
    with transaction():
        state, member, _ = staff.current_member(telegram_user_id, lock=True)
        staff.end_prompt(state, PromptEnd.SAVED)
        body = clean_text(text, limit=MAX_REPLY_CHARS)
        count = db.session.scalar(select(func.count()).select_from(CannedReply).where(CannedReply.horeca_id == member.horeca_id))
        if (count or 0) >= MAX_REPLIES:
            raise Invalid(f"at most {MAX_REPLIES} canned replies; delete one first", "too_many_replies")
        row = CannedReply(horeca_id=member.horeca_id, text=body, created_by=telegram_user_id, created_at=utcnow())
        db.session.add(row)
        db.session.flush()
        return Reply(row.id, row.text)


def delete_reply(telegram_user_id: int, reply_id: int) -> bool:
    """Delete a canned reply of the current horeca; False if there is no such reply (deleted meanwhile, forged)."""
    with transaction():
        _, member, _ = staff.current_member(telegram_user_id)
        result = db.session.execute(
            delete(CannedReply).where(CannedReply.id == reply_id, CannedReply.horeca_id == member.horeca_id)
        )
        assert isinstance(result, CursorResult)
        return bool(result.rowcount)


def send_reply(telegram_user_id: int, reply_id: int, prompt: int | None = None) -> Sent:
    """Send a canned reply of the current horeca to the selected dialogs, with one tap.

    `prompt`: tapped under that compose prompt; PromptClosed (nothing sent) unless it is still the open one.
    """
    with transaction():
        _, member, _ = staff.current_member(telegram_user_id)
        row = db.session.get(CannedReply, reply_id)
        if row is None or row.horeca_id != member.horeca_id:
            raise NotFound("this canned reply was deleted", "reply_not_found")
        text = row.text
    return send_to_selected(telegram_user_id, text, require_composing=prompt is not None, prompt=prompt)
