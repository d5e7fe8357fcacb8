"""Customers: who is linked, who has blocked the bot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from database import single_statement, transaction
from models import Customer, db, utcnow
from services import events


@dataclass(frozen=True)
class Profile:
    """What Telegram tells us about a user, as plain values."""

    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


def find(telegram_user_id: int) -> Customer | None:
    return db.session.scalar(select(Customer).where(Customer.telegram_user_id == telegram_user_id))


def get_or_create(telegram_user_id: int, chat_id: int | None = None, profile: Profile | None = None) -> Customer:
    """The customer row for this Telegram user, created if new (inside the caller's transaction)."""
    customer = find(telegram_user_id)
    if customer is None:
        customer = Customer(telegram_user_id=telegram_user_id, chat_id=chat_id or telegram_user_id, created_at=utcnow())
        try:
            with db.session.begin_nested():
                db.session.add(customer)
        except IntegrityError:  # created meanwhile by the other process
            customer = find(telegram_user_id)
            assert customer is not None
    if chat_id:
        customer.chat_id = chat_id
    if profile is not None:
        for field in ("first_name", "last_name", "username", "language_code"):
            value = getattr(profile, field)
            if value is not None:
                setattr(customer, field, value)
    return customer


def set_blocked(customer: Customer, blocked: bool, deactivated: bool = False) -> bool:
    """Record that the user blocked (or came back to) the bot; emits an event on a change. Caller commits."""
    now = utcnow()
    changed = customer.is_blocked != blocked or (blocked and deactivated and not customer.is_deactivated)
    if blocked:
        if not customer.is_blocked:
            customer.blocked_at = now
        customer.is_deactivated = customer.is_deactivated or deactivated
    else:
        if customer.is_blocked:
            customer.unblocked_at = now
        customer.is_deactivated = False
    was_blocked = customer.is_blocked
    customer.is_blocked = blocked
    if changed:
        customer.state_changed_at = now
    if was_blocked != blocked:
        events.emit("user.blocked" if blocked else "user.unblocked", {"telegram_user_id": customer.telegram_user_id})
    return changed


def mark_blocked(telegram_user_id: int, blocked: bool, deactivated: bool = False) -> bool:
    """Own-transaction form of `set_blocked` for a Telegram user id; False when the user is unknown."""
    with transaction():
        customer = find(telegram_user_id)
        return customer is not None and set_blocked(customer, blocked, deactivated)


@dataclass(frozen=True)
class Subscription:
    """Whether the backend can reach a user through the bot (GET /subscribe-status)."""

    user_id: int
    known: bool  # linked the bot
    subscribed: bool  # linked and has not blocked it
    is_bot_blocked: bool
    is_deactivated: bool
    linked_at: datetime | None
    state_changed_at: datetime | None


_SUBSCRIBE = select(Customer.linked_at, Customer.is_blocked, Customer.is_deactivated, Customer.state_changed_at).where(
    Customer.telegram_user_id == bindparam("user_id")
)


def subscribe_status(telegram_user_id: int) -> Subscription:
    """Whether the backend can reach this user through the bot."""
    # The hottest read of the API: four columns, one statement, no session transaction around it.
    row = single_statement(db.engine, _SUBSCRIBE, {"user_id": telegram_user_id})
    linked_at, blocked, deactivated, state_changed_at = row if row is not None else (None, False, False, None)
    linked = linked_at is not None
    return Subscription(
        user_id=telegram_user_id,
        known=linked,
        subscribed=linked and not blocked,
        is_bot_blocked=bool(blocked),
        is_deactivated=bool(deactivated),
        linked_at=linked_at,
        state_changed_at=state_changed_at or linked_at,
    )
