"""Orders and their status updates: record a status change, read an order, request a cancel.

Recording a status has two paths with one outcome: PostgreSQL's one statement (`services/orders_pg.py`),
and the general path here, which SQLite always takes and PostgreSQL when the one statement cannot decide.
Both take the statuses, the dedup key and the cancel rule from `services/order_status.py`.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from database import reading, transaction
from models import BotName, Customer, Order, OutboxKind, OutboxMessage, OutboxState, db, utcnow
from services import events, orders_pg, ratings
from services.errors import Conflict, NotFound
from services.order_details import Details, Item, of_row
from services.order_status import (
    ACTIVE_STATUSES,
    BLOCKED_ERROR,
    CANCELLABLE_STATUSES,
    FINAL_STATUSES,
    STATUSES,
    Recorded,
    Status,
    next_cancellable,
    status_key,
)

__all__ = [
    "ACTIVE_STATUSES",
    "CANCELLABLE_STATUSES",
    "FINAL_STATUSES",
    "STATUSES",
    "CancelOutcome",
    "CancelResult",
    "Recorded",
    "Status",
    "active_orders",
    "order_view",
    "record_note",
    "record_status",
    "request_cancel",
    "status_key",
]


def record_status(
    user_id: int, horeca_id: str, order_id: str, status: str, text: str | None = None, details: Details | None = None
) -> Recorded:
    """Store a status change and queue its message for the bot; the same status twice queues nothing.

    `details` (items, total, ETA, pickup code) are stored on the order even when the status is a repeat.
    """
    engine = db.engine
    if details is not None and not details.given():
        details = None
    # The one statement covers the common case, a status alone; details take the general path.
    if engine.dialect.name == "postgresql" and details is None:
        # A request racing with another for the same order (the backend retrying, or sending the next status
        # before the first was answered) writes nothing and learns nothing the first time: it waited for the
        # other one to commit, which its snapshot predates. Run again, it sees what the other one did.
        for _ in range(2):
            recorded = orders_pg.record_status(engine, user_id, horeca_id, order_id, status, text)
            if recorded is not None:
                return recorded
    return _in_transaction(lambda: _record_status(user_id, horeca_id, order_id, status, text, details))


def _in_transaction(record: typing.Callable[[], Recorded]) -> Recorded:
    """`record()` in a transaction of its own, run again when a racing request inserted the same order or update
    first (an IntegrityError): the second run reads theirs."""
    for attempt in range(3):
        try:
            with transaction():
                return record()
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _record_status(
    user_id: int, horeca_id: str, order_id: str, status: str, text: str | None, details: Details | None = None
) -> Recorded:
    """The general path, inside the session's transaction (the caller's `transaction()` commits it)."""
    # Core statements rather than ORM objects: this is the API's hottest write, and the unit of work
    # (identity map, flush, expiry) cost more CPU than the SQL itself.
    conn = db.session.connection()  # the session's transaction, without the ORM layer on each statement
    customer, order = _customer_and_order(conn, user_id, horeca_id, order_id)
    now = utcnow()
    if order is not None:
        order_pk = order.id
        if details is not None:
            _store_details(conn, order_pk, details)
        existing = conn.execute(_DUPLICATE, {"dedup_key": status_key(order_pk, status)}).first()
        if existing is not None:
            return Recorded(existing.id, order_id, horeca_id, status, existing.state, duplicate=True)
        conn.execute(
            _UPDATE_ORDER,
            {"order_pk": order_pk, "status": status, "now": now, "cancellable": next_cancellable(order.cancellable, status)},
        )
    else:
        order_pk = conn.execute(
            _INSERT_ORDER,
            {
                "horeca_id": horeca_id, "order_id": order_id, "customer_id": customer.id, "telegram_user_id": user_id,
                "status": status, "cancellable": next_cancellable(True, status), "now": now,
            },
        ).scalar_one()  # fmt: skip
        if details is not None:
            _store_details(conn, order_pk, details)
    state = OutboxState.BLOCKED if customer.is_blocked else OutboxState.PENDING
    update_id = conn.execute(
        _INSERT_UPDATE,
        {
            "kind": OutboxKind.STATUS, "chat_id": customer.chat_id, "order_pk": order_pk, "status": status, "text": text,
            "dedup_key": status_key(order_pk, status), "state": state, "now": now,
            "last_error": BLOCKED_ERROR if customer.is_blocked else None,
        },
    ).scalar_one()  # fmt: skip
    return Recorded(update_id, order_id, horeca_id, status, state, duplicate=False)


def _customer_and_order(conn: typing.Any, user_id: int, horeca_id: str, order_id: str) -> tuple[typing.Any, typing.Any]:
    """The linked customer (NotFound otherwise) and their order, locked, if it exists (Conflict: another user's)."""
    customer = conn.execute(_CUSTOMER, {"user_id": user_id}).first()
    if customer is None or customer.linked_at is None:
        raise NotFound("this Telegram user has not linked the bot; issue a verification code first", "unknown_user")
    order = conn.execute(_ORDER_FOR_UPDATE, {"horeca_id": horeca_id, "order_id": order_id}).first()
    if order is not None and order.telegram_user_id != user_id:
        raise Conflict("this order belongs to another user", "order_user_mismatch")
    return customer, order


# Built once on the tables (not the ORM classes), so executing them skips the ORM's compile and load steps.
_customers, _orders, _outbox = (typing.cast(Table, m.__table__) for m in (Customer, Order, OutboxMessage))
_CUSTOMER = select(_customers.c.id, _customers.c.chat_id, _customers.c.is_blocked, _customers.c.linked_at).where(
    _customers.c.telegram_user_id == bindparam("user_id")
)
_ORDER_FOR_UPDATE = (
    select(_orders.c.id, _orders.c.telegram_user_id, _orders.c.cancellable)
    .where(_orders.c.horeca_id == bindparam("horeca_id"), _orders.c.order_id == bindparam("order_id"))
    .with_for_update()
)
_DUPLICATE = select(_outbox.c.id, _outbox.c.state).where(_outbox.c.dedup_key == bindparam("dedup_key"))
_UPDATE_ORDER = (
    update(_orders)
    .where(_orders.c.id == bindparam("order_pk"))
    .values(
        status=bindparam("status"),
        updated_at=bindparam("now"),
        cancellable=bindparam("cancellable"),
    )
)
_INSERT_ORDER = (
    insert(_orders)
    .values(
        horeca_id=bindparam("horeca_id"),
        order_id=bindparam("order_id"),
        customer_id=bindparam("customer_id"),
        telegram_user_id=bindparam("telegram_user_id"),
        status=bindparam("status"),
        cancellable=bindparam("cancellable"),
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(_orders.c.id)
)
_INSERT_UPDATE = (
    insert(_outbox)
    .values(
        kind=bindparam("kind"),
        bot=BotName.CUSTOMER,
        chat_id=bindparam("chat_id"),
        order_pk=bindparam("order_pk"),
        status=bindparam("status"),
        text=bindparam("text"),
        dedup_key=bindparam("dedup_key"),
        state=bindparam("state"),
        attempts=0,
        created_at=bindparam("now"),
        next_attempt_at=bindparam("now"),
        last_error=bindparam("last_error"),
        has_button=False,
    )
    .returning(_outbox.c.id)
)


@dataclass(frozen=True)
class UpdateView:
    """One status update of an order and how its delivery went."""

    update_id: int
    status: str | None  # None for a text without a status
    delivery: str
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class OrderView:
    """An order as the backend reads it (`GET /orders/<horeca_id>/<order_id>`)."""

    order_id: str
    horeca_id: str
    user_id: int
    status: str | None  # None until the first status (only texts so far)
    cancellable: bool
    cancel_requested: bool
    cancel_requested_at: datetime | None
    created_at: datetime
    updated_at: datetime
    updates: list[UpdateView]
    items: tuple[Item, ...] | None = None
    total: str | None = None
    eta: datetime | None = None
    pickup_code: str | None = None
    rating: ratings.RatingView | None = None


def order_view(horeca_id: str, order_id: str) -> OrderView:
    """The order with every status update and its delivery state."""
    with reading() as session:
        order = session.scalar(select(Order).where(Order.horeca_id == horeca_id, Order.order_id == order_id))
        if order is None:
            raise NotFound("no such order", "order_not_found")
        updates = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.order_pk == order.id, OutboxMessage.kind.in_([OutboxKind.STATUS, OutboxKind.ORDER_NOTE]))
            .order_by(OutboxMessage.id)
        ).all()
        details = of_row(order)
        return OrderView(
            order_id=order.order_id,
            horeca_id=order.horeca_id,
            user_id=order.telegram_user_id,
            status=order.status,
            cancellable=order.cancellable and order.status in CANCELLABLE_STATUSES and order.cancel_requested_at is None,
            cancel_requested=order.cancel_requested_at is not None,
            cancel_requested_at=order.cancel_requested_at,
            created_at=order.created_at,
            updated_at=order.updated_at,
            updates=[
                UpdateView(
                    update_id=u.id,
                    status=u.status,
                    # A message being sent right now is still pending to the backend.
                    delivery=OutboxState.PENDING if u.state == OutboxState.SENDING else u.state,
                    created_at=u.created_at,
                    sent_at=u.sent_at,
                    last_error=u.last_error,
                )
                for u in updates
            ],
            items=details.items,
            total=details.total,
            eta=details.eta,
            pickup_code=details.pickup_code,
            rating=ratings.of_order(order.id),
        )


def active_orders(telegram_user_id: int) -> list[Order]:
    """The user's orders that are not finished yet, oldest first (caller ends the transaction)."""
    return list(
        db.session.scalars(
            select(Order)
            .where(Order.telegram_user_id == telegram_user_id, Order.status.in_(ACTIVE_STATUSES))
            .order_by(Order.created_at, Order.id)
        )
    )


class CancelResult(StrEnum):
    """What came of a customer's cancel request."""

    REQUESTED = "requested"
    ALREADY_REQUESTED = "already_requested"
    NOT_CANCELLABLE = "not_cancellable"
    NOT_FOUND = "not_found"  # no such order, or another user's


@dataclass(frozen=True)
class CancelOutcome:
    """The result of `request_cancel`, with the order's ids when it was found."""

    outcome: CancelResult
    order_id: str | None = None
    horeca_id: str | None = None


def request_cancel(telegram_user_id: int, order_pk: int) -> CancelOutcome:
    """The customer asks to cancel: only the owner, only while cancellable, in one transaction."""
    with transaction() as session:
        order = session.scalar(select(Order).where(Order.id == order_pk).with_for_update())
        if order is None or order.telegram_user_id != telegram_user_id:
            return CancelOutcome(CancelResult.NOT_FOUND)
        if order.cancel_requested_at is not None:
            return CancelOutcome(CancelResult.ALREADY_REQUESTED, order.order_id, order.horeca_id)
        if not order.cancellable or order.status not in CANCELLABLE_STATUSES:
            return CancelOutcome(CancelResult.NOT_CANCELLABLE, order.order_id, order.horeca_id)
        order.cancel_requested_at = utcnow()
        ids = {"order_id": order.order_id, "horeca_id": order.horeca_id}
        events.emit("order.cancel_requested", {**ids, "user_id": telegram_user_id})
        return CancelOutcome(CancelResult.REQUESTED, order.order_id, order.horeca_id)


# --- The backend's text about an order, without a status (issue 11: the seed's body) ---------------------

NOTE_KEY = "note:{order_pk}:{message_id}"  # the dedup key of a text sent with a message_id


def record_note(
    user_id: int, horeca_id: str, order_id: str, text: str, message_id: str | None = None, details: Details | None = None
) -> Recorded:
    """Queue a text about the order for the customer, leaving its status as it is; an unknown order is created
    without a status. The same `message_id` again queues nothing (the first one's update_id, `duplicate`)."""
    return _in_transaction(lambda: _record_note(user_id, horeca_id, order_id, text, message_id, details))


def _record_note(
    user_id: int, horeca_id: str, order_id: str, text: str, message_id: str | None, details: Details | None
) -> Recorded:
    conn = db.session.connection()
    customer, order = _customer_and_order(conn, user_id, horeca_id, order_id)
    now = utcnow()
    if order is not None:
        order_pk = order.id
    else:
        # No status yet: not cancellable until one arrives (the card and the cancel both ask the status).
        order_pk = conn.execute(
            _INSERT_ORDER,
            {
                "horeca_id": horeca_id, "order_id": order_id, "customer_id": customer.id, "telegram_user_id": user_id,
                "status": None, "cancellable": True, "now": now,
            },
        ).scalar_one()  # fmt: skip
    if details is not None and details.given():
        _store_details(conn, order_pk, details)
    key = NOTE_KEY.format(order_pk=order_pk, message_id=message_id) if message_id is not None else None
    if key is not None:
        existing = conn.execute(_DUPLICATE, {"dedup_key": key}).first()
        if existing is not None:
            return Recorded(existing.id, order_id, horeca_id, None, existing.state, duplicate=True)
    state = OutboxState.BLOCKED if customer.is_blocked else OutboxState.PENDING
    update_id = conn.execute(
        _INSERT_UPDATE,
        {
            "kind": OutboxKind.ORDER_NOTE, "chat_id": customer.chat_id, "order_pk": order_pk, "status": None, "text": text,
            "dedup_key": key, "state": state,
            "now": now, "last_error": BLOCKED_ERROR if customer.is_blocked else None,
        },
    ).scalar_one()  # fmt: skip
    return Recorded(update_id, order_id, horeca_id, None, state, duplicate=False)


def _store_details(conn: typing.Any, order_pk: int, details: Details) -> None:
    """Set the details given on the order (inside the caller's transaction)."""
    conn.execute(update(_orders).where(_orders.c.id == order_pk).values(**details.columns()))
