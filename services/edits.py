"""Edits in the staff dialogs: a customer's edit follows each staff copy, a staff member's edit each customer copy.

An edit is an outbox row (kind `edit`) to the chat of the copy, queued behind it (rows of one chat go in
order), so it has the same budget, retries and order as the message itself. Its payload is the copy's payload
with the new text and `of` (the copy's outbox row): the bot process edits the message that row became, or
sends a short "edited:" follow-up where Telegram cannot edit it (services/media.py says which kinds have a
caption; bot/workers/media_send.py does the sending).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from database import transaction
from models import BotName, DialogMessage, MessageCopy, OutboxKind, OutboxMessage, OutboxState, StaffMember, db, utcnow
from services import customers, media
from services.cabinet import clean_text
from services.errors import Invalid
from services.relay import MAX_CUSTOMER_TEXT


class EditOutcome(StrEnum):
    QUEUED = "queued"  # the copies will be edited (or followed up)
    STORED = "stored"  # the message had no copy yet (the customer is still choosing the cafe): the new text is kept
    NONE = "none"  # not a dialog message we know
    INVALID = "invalid"  # empty or too long: nothing changed


@dataclass(frozen=True)
class Edited:
    outcome: EditOutcome
    copies: int = 0


def _payload(row: OutboxMessage) -> dict[str, Any]:
    try:
        payload = json.loads(row.payload or "{}")
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _queue_edit(copy: OutboxMessage, text: str, payload_text: bool) -> None:
    """An edit row behind `copy` in its chat (the copy's payload, the new text, `of` the copy's row)."""
    payload = _payload(copy)
    if payload_text:
        payload["text"] = text
    payload["of"] = copy.id
    now = utcnow()
    db.session.add(
        OutboxMessage(
            kind=OutboxKind.EDIT,
            bot=copy.bot,
            chat_id=copy.chat_id,
            horeca_id=copy.horeca_id,
            text=text,
            payload=json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
            state=OutboxState.PENDING,
            created_at=now,
            next_attempt_at=now,
        )
    )


def _is_album(message: DialogMessage) -> bool:
    """An album is stored as one message: its items' edits are not passed on (docs/staff.md says so)."""
    attachment = media.parse(message.media)
    return attachment is not None and attachment.album


def _clean(message: DialogMessage, text: str) -> str:
    if message.media:
        body = text.strip()
        if len(body) > media.MAX_CAPTION:
            raise Invalid("the caption is too long", "caption_too_long")
        return body
    return clean_text(text, limit=MAX_CUSTOMER_TEXT)


def customer_edited(telegram_user_id: int, message_id: int, text: str) -> Edited:
    """The customer edited a message they had written (its text, or a caption): each staff copy follows."""
    with transaction():
        customer = customers.find(telegram_user_id)
        if customer is None:
            return Edited(EditOutcome.NONE)
        message = db.session.scalars(
            select(DialogMessage).where(
                DialogMessage.customer_id == customer.id,
                DialogMessage.direction == "in",
                DialogMessage.source_message_id == message_id,
            )
        ).first()
        if message is None or _is_album(message):
            return Edited(EditOutcome.NONE)
        try:
            body = _clean(message, text)
        except Invalid:
            return Edited(EditOutcome.INVALID)
        message.text = body
        message.edited_at = utcnow()
        copies = db.session.scalars(
            select(OutboxMessage)
            .join(MessageCopy, MessageCopy.outbox_id == OutboxMessage.id)
            .where(MessageCopy.dialog_message_id == message.id)
            .order_by(OutboxMessage.id)
        ).all()
        for copy in copies:
            _queue_edit(copy, body, payload_text=True)  # a staff notice draws its text from the payload
        return Edited(EditOutcome.QUEUED if copies else EditOutcome.STORED, len(copies))


def staff_edited(telegram_user_id: int, message_id: int, text: str) -> Edited:
    """A staff member edited a message they had sent to customers: each customer's copy follows."""
    with transaction():
        messages = db.session.scalars(
            select(DialogMessage)
            .join(StaffMember, StaffMember.id == DialogMessage.staff_member_id)
            .where(
                StaffMember.telegram_user_id == telegram_user_id,
                DialogMessage.direction == "out",
                DialogMessage.source_message_id == message_id,
            )
            .order_by(DialogMessage.id)
        ).all()
        if not messages or _is_album(messages[0]):
            return Edited(EditOutcome.NONE)
        try:
            body = _clean(messages[0], text)
        except Invalid:
            return Edited(EditOutcome.INVALID)
        queued = 0
        now = utcnow()
        for message in messages:
            message.text = body
            message.edited_at = now
            copy = db.session.get(OutboxMessage, message.outbox_id) if message.outbox_id else None
            if copy is None or copy.bot != BotName.CUSTOMER or copy.state == OutboxState.BLOCKED:
                continue
            _queue_edit(copy, body, payload_text=False)  # a customer message draws its text from the row's text
            queued += 1
        return Edited(EditOutcome.QUEUED, queued)
