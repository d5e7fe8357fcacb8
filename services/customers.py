"""Customers: who is linked, whether the bot can reach them (started it, has not blocked it)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from database import single_statement, transaction
from models import BotName, Customer, OutboxKind, OutboxMessage, OutboxState, db, utcnow
from services import events

# The last_error of a status that waits for its customer to start the bot (outbox state `blocked`: not due,
# not counted as a backlog). Such rows are queued again when the customer writes to the bot.
WAITING_ERROR = "waiting for the user to start the bot (Telegram: 400 chat not found)"


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
    """Own-transaction form of `set_blocked` for a Telegram user id; False when the user is unknown.

    Unblocking means the user (re)started the bot: they are reachable from now on (see `heard_from`)."""
    with transaction():
        customer = find(telegram_user_id)
        if customer is None:
            return False
        changed = set_blocked(customer, blocked, deactivated)
        if not blocked:
            heard_from(customer)
        return changed


def heard_from(customer: Customer) -> None:
    """The user wrote to the bot (a message, /start, a code): the bot can write to them. Caller commits.

    Takes back a user who had blocked the bot, and the first time, queues again every status that waited
    for them to start it (see WAITING_ERROR), oldest first as always."""
    if customer.is_blocked:
        set_blocked(customer, False)
    if customer.reachable_at is not None:
        return
    now = utcnow()
    customer.reachable_at = now
    customer.state_changed_at = now
    db.session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.bot == BotName.CUSTOMER,
            OutboxMessage.chat_id.in_({customer.chat_id, customer.telegram_user_id}),
            OutboxMessage.state == OutboxState.BLOCKED,
            OutboxMessage.last_error == WAITING_ERROR,
        )
        # A fresh retry window: the wait for /start is not the delivery's fault.
        .values(state=OutboxState.PENDING, next_attempt_at=now, first_attempt_at=None)
    )


def chat_not_found(customer: Customer) -> None:
    """Telegram answered "chat not found": the user has not started the bot (or deleted the chat). Caller commits."""
    if customer.reachable_at is not None:
        customer.reachable_at = None
        customer.state_changed_at = utcnow()


def proven_by_delivery(conn: Connection, chat_ids: Collection[int]) -> None:
    """Messages to these private chats went through: the bot can write to them (Core, in the caller's transaction).

    Called only for chats the claim saw without proof, so the hot path pays nothing once a customer is reachable."""
    if not chat_ids:
        return
    now = utcnow()
    ids = sorted(set(chat_ids))
    conn.execute(
        update(Customer)
        .where(Customer.telegram_user_id.in_(ids), Customer.reachable_at.is_(None))
        .values(reachable_at=now, state_changed_at=now)
    )
    # Statuses that waited after an earlier "chat not found" go now (the customer started the bot unseen).
    conn.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.bot == BotName.CUSTOMER,
            OutboxMessage.chat_id.in_(ids),
            OutboxMessage.state == OutboxState.BLOCKED,
            OutboxMessage.last_error == WAITING_ERROR,
        )
        .values(state=OutboxState.PENDING, next_attempt_at=now, first_attempt_at=None)
    )


# The backend's messages about an order (a status, a text without one) wait for a customer who never started the bot.
WAITING_KINDS = (OutboxKind.STATUS, OutboxKind.ORDER_NOTE)


def waiting_statuses(bot: str, chat_id: int) -> None:
    """Every pending status to this chat waits for the user to start the bot (session, caller commits)."""
    db.session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.bot == bot,
            OutboxMessage.chat_id == chat_id,
            OutboxMessage.state == OutboxState.PENDING,
            OutboxMessage.kind.in_(WAITING_KINDS),
        )
        .values(state=OutboxState.BLOCKED, last_error=WAITING_ERROR)
    )


class Unreachable(StrEnum):
    """Why the bot cannot write to a user (what the backend should offer them: see the README)."""

    NOT_LINKED = "not_linked"  # no code claimed: offer the deep link with a code
    NEVER_STARTED = "never_started"  # linked through the API, but never started the bot: offer the bot with /start
    BLOCKED = "blocked"  # blocked the bot: ask them to open it and press Restart
    DEACTIVATED = "deactivated"  # the Telegram account is deleted


@dataclass(frozen=True)
class Subscription:
    """Whether the backend can reach a user through the bot (GET /subscribe-status)."""

    user_id: int
    known: bool  # linked the bot
    subscribed: bool  # linked and the bot can write to them: the same as `reachable`
    reachable: bool
    reason: Unreachable | None  # None when reachable
    is_bot_blocked: bool
    is_deactivated: bool
    linked_at: datetime | None
    state_changed_at: datetime | None


_SUBSCRIBE = select(
    Customer.linked_at, Customer.is_blocked, Customer.is_deactivated, Customer.state_changed_at, Customer.reachable_at
).where(Customer.telegram_user_id == bindparam("user_id"))


def subscribe_status(telegram_user_id: int) -> Subscription:
    """Whether the backend can reach this user through the bot, and if not, why."""
    # The hottest read of the API: five columns, one statement, no session transaction around it.
    row = single_statement(db.engine, _SUBSCRIBE, {"user_id": telegram_user_id})
    linked_at, blocked, deactivated, state_changed_at, reachable_at = row if row is not None else (None, False, False, None, None)
    reason: Unreachable | None
    if linked_at is None:
        reason = Unreachable.NOT_LINKED
    elif blocked:
        reason = Unreachable.DEACTIVATED if deactivated else Unreachable.BLOCKED
    elif reachable_at is None:
        reason = Unreachable.NEVER_STARTED
    else:
        reason = None
    return Subscription(
        user_id=telegram_user_id,
        known=linked_at is not None,
        subscribed=reason is None,
        reachable=reason is None,
        reason=reason,
        is_bot_blocked=bool(blocked),
        is_deactivated=bool(deactivated),
        linked_at=linked_at,
        state_changed_at=state_changed_at or linked_at,
    )
