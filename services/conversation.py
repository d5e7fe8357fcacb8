"""The stored conversation of a horeca with one customer: for the backend API, and the dialog a staff member opens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from database import reading, transaction
from models import Customer, DialogMessage, Order, OutboxMessage, OutboxState, StaffMember, db
from services import customers, media, staff
from services.cabinet import DEFAULTS, CabinetSettings, colleague_answers, knows, mark_read_in, orders_for, unread_counts
from services.errors import NotFound
from services.media import Attachment


@dataclass(frozen=True)
class Author:
    """The staff member who wrote an outgoing message."""

    telegram_user_id: int
    name: str


@dataclass(frozen=True)
class StoredMessage:
    id: int
    direction: str  # in: customer → staff; out: staff → customer
    text: str
    created_at: datetime
    staff: Author | None
    order_id: str | None
    delivery: str  # in: received | awaiting_horeca; out: pending | sent | failed | blocked
    media: Attachment | None = None  # a file, location, venue, contact or album (services/media.py); text is the caption
    edited_at: datetime | None = None


@dataclass(frozen=True)
class Conversation:
    horeca_id: str
    user_id: int  # the customer's Telegram user id
    customer_name: str
    customer_username: str | None
    customer_blocked: bool
    unread: int
    has_more: bool  # older messages exist
    messages: list[StoredMessage]  # oldest first


@dataclass(frozen=True)
class OrderBrief:
    order_id: str
    status: str | None  # None: only texts so far


@dataclass(frozen=True)
class OpenedDialog:
    """A dialog a staff member opened: its last messages, the customer's order, a colleague's recent answer."""

    customer_id: int
    conversation: Conversation
    order: OrderBrief | None
    colleague: str | None


def _delivery(message: DialogMessage, outbox_state: str | None) -> str:
    if message.direction == "in":
        return "received" if message.state == "relayed" else message.state
    if outbox_state in (None, OutboxState.SENDING):
        return OutboxState.PENDING.value
    return outbox_state


def _conversation(horeca_id: str, customer: Customer, limit: int, before: int | None) -> Conversation:
    stmt = (
        select(DialogMessage, OutboxMessage.state, StaffMember, Order.order_id)
        .outerjoin(OutboxMessage, OutboxMessage.id == DialogMessage.outbox_id)
        .outerjoin(StaffMember, StaffMember.id == DialogMessage.staff_member_id)
        .outerjoin(Order, Order.id == DialogMessage.order_pk)
        .where(DialogMessage.horeca_id == horeca_id, DialogMessage.customer_id == customer.id)
    )
    if before is not None:
        stmt = stmt.where(DialogMessage.id < before)
    rows = db.session.execute(stmt.order_by(DialogMessage.id.desc()).limit(limit + 1)).tuples().all()
    has_more = len(rows) > limit
    newest_first = rows[:limit]
    messages = [
        StoredMessage(
            id=m.id,
            direction=m.direction,
            text=m.text,
            created_at=m.created_at,
            staff=Author(member.telegram_user_id, member.display_name) if member else None,
            order_id=order_id,
            delivery=_delivery(m, outbox_state),
            media=media.parse(m.media),
            edited_at=m.edited_at,
        )
        for m, outbox_state, member, order_id in reversed(newest_first)
    ]
    return Conversation(
        horeca_id=horeca_id,
        user_id=customer.telegram_user_id,
        customer_name=customer.display_name,
        customer_username=customer.username,
        customer_blocked=customer.is_blocked,
        unread=unread_counts(horeca_id, [customer.id]).get(customer.id, 0),
        has_more=has_more,
        messages=messages,
    )


def conversation(horeca_id: str, telegram_user_id: int, limit: int = 100, before: int | None = None) -> Conversation:
    """The stored dialog of a horeca with one customer, oldest first (the newest `limit` messages before `before`)."""
    with reading():
        customer = customers.find(telegram_user_id)
        if customer is None:
            raise NotFound("this Telegram user is not a customer of the bot", "unknown_user")
        return _conversation(horeca_id, customer, limit, before)


def open_dialog(telegram_user_id: int, customer_id: int, limit: int = 10, settings: CabinetSettings = DEFAULTS) -> OpenedDialog:
    """The staff member opens one dialog of the current horeca: its last messages; marks it read."""
    with transaction():
        _, member, _ = staff.current_member(telegram_user_id)
        customer = db.session.get(Customer, customer_id)
        if customer is None or not knows(member.horeca_id, customer_id):
            raise NotFound("no such dialog", "dialog_not_found")
        horeca_id = member.horeca_id
        colleagues = colleague_answers(horeca_id, member.id, [customer_id], settings)
        order = orders_for(horeca_id, [customer_id]).get(customer_id)
        mark_read_in(horeca_id, customer_id)
        db.session.flush()
        return OpenedDialog(
            customer_id=customer_id,
            conversation=_conversation(horeca_id, customer, limit, None),
            order=OrderBrief(order.order_id, order.status) if order else None,
            colleague=colleagues.get(customer_id),
        )
