"""Orders and their status updates: record a status change, read an order, request a cancel."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Boolean, and_, bindparam, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from database import read_only, single_statement
from models import Customer, Order, OutboxMessage, db, iso, utcnow
from services import events
from services.errors import Conflict, NotFound

STATUSES = ("created", "accepted", "preparing", "ready", "completed", "cancelled", "rejected")
CANCELLABLE_STATUSES = frozenset({"created", "accepted", "preparing"})
FINAL_STATUSES = frozenset({"completed", "cancelled", "rejected"})
ACTIVE_STATUSES = frozenset({"created", "accepted", "preparing", "ready"})


@dataclass(frozen=True)
class Recorded:
    update_id: int
    order_id: str
    horeca_id: str
    status: str
    delivery: str
    duplicate: bool

    def as_dict(self) -> dict:
        return {
            "update_id": self.update_id,
            "order_id": self.order_id,
            "horeca_id": self.horeca_id,
            "status": self.status,
            "delivery": self.delivery,
        }


def status_key(order_pk: int, status: str) -> str:
    """The dedup key of a status update: one message per (order, status)."""
    return f"status:{order_pk}:{status}"


def record_status(user_id: int, horeca_id: str, order_id: str, status: str, text: str | None = None) -> Recorded:
    """Store a status change and queue its message for the bot; the same status twice queues nothing."""
    engine = db.engine
    if engine.dialect.name == "postgresql":
        # A request racing with another for the same order (the backend retrying, or sending the next status
        # before the first was answered) writes nothing and learns nothing the first time: it waited for the
        # other one to commit, which its snapshot predates. Run again, it sees what the other one did.
        for _ in range(2):
            recorded = _record_status_in_one_statement(engine, user_id, horeca_id, order_id, status, text)
            if recorded is not None:
                return recorded
    for attempt in range(3):
        try:
            return _record_status(user_id, horeca_id, order_id, status, text)
        except IntegrityError:
            # Another request created the same order or update at the same moment: read theirs.
            db.session.rollback()
            if attempt == 2:
                raise
        except Exception:
            db.session.rollback()
            raise
    raise AssertionError("unreachable")


def _record_status(user_id: int, horeca_id: str, order_id: str, status: str, text: str | None) -> Recorded:
    # Core statements rather than ORM objects: this is the API's hottest write, and the unit of work
    # (identity map, flush, expiry) cost more CPU than the SQL itself.
    conn = db.session.connection()  # the session's transaction, without the ORM layer on each statement
    customer = conn.execute(_CUSTOMER, {"user_id": user_id}).first()
    if customer is None or customer.linked_at is None:
        raise NotFound("this Telegram user has not linked the bot; issue a verification code first", "unknown_user")
    order = conn.execute(_ORDER_FOR_UPDATE, {"horeca_id": horeca_id, "order_id": order_id}).first()
    now = utcnow()
    if order is not None:
        if order.telegram_user_id != user_id:
            raise Conflict("this order belongs to another user", "order_user_mismatch")
        order_pk = order.id
        existing = conn.execute(_DUPLICATE, {"dedup_key": status_key(order_pk, status)}).first()
        if existing is not None:
            db.session.rollback()
            return Recorded(existing.id, order_id, horeca_id, status, existing.state, duplicate=True)
        # `cancellable` only ever goes to False: a status going backwards never reopens the cancel.
        conn.execute(
            _UPDATE_ORDER, {"order_pk": order_pk, "status": status, "now": now, "still": status in CANCELLABLE_STATUSES}
        )
    else:
        order_pk = conn.execute(
            _INSERT_ORDER,
            {
                "horeca_id": horeca_id, "order_id": order_id, "customer_id": customer.id, "telegram_user_id": user_id,
                "status": status, "cancellable": status in CANCELLABLE_STATUSES, "now": now,
            },
        ).scalar_one()
    state = "blocked" if customer.is_blocked else "pending"
    update_id = conn.execute(
        _INSERT_UPDATE,
        {
            "chat_id": customer.chat_id, "order_pk": order_pk, "status": status, "text": text,
            "dedup_key": status_key(order_pk, status), "state": state, "now": now,
            "last_error": "the user has blocked the bot" if state == "blocked" else None,
        },
    ).scalar_one()
    db.session.commit()
    return Recorded(update_id, order_id, horeca_id, status, state, duplicate=False)


def _record_status_in_one_statement(
    engine: Engine, user_id: int, horeca_id: str, order_id: str, status: str, text: str | None
) -> Recorded | None:
    """PostgreSQL: the whole of `_record_status` in one statement and one round trip (its own transaction).

    None when the outcome needs the general path: a concurrent request created the same order or queued the
    same update after this statement's snapshot was taken. Nothing was written then.
    """
    row = single_statement(
        engine, _RECORD_STATUS_PG,
        {"user_id": user_id, "horeca_id": horeca_id, "order_id": order_id, "status": status, "text": text,
         "cancellable": status in CANCELLABLE_STATUSES, "now": utcnow()},
    )
    linked, owner, update_id, state, duplicate_id, duplicate_state = row
    if not linked:
        raise NotFound("this Telegram user has not linked the bot; issue a verification code first", "unknown_user")
    if owner is not None and owner != user_id:
        raise Conflict("this order belongs to another user", "order_user_mismatch")
    if update_id is not None:
        return Recorded(update_id, order_id, horeca_id, status, state, duplicate=False)
    if duplicate_id is not None:
        return Recorded(duplicate_id, order_id, horeca_id, status, duplicate_state, duplicate=True)
    return None


# The statement, step by step (each CTE sees the database as the statement found it, plus the rows the
# CTEs it reads RETURNed):
# - customer: the linked customer, or no row (then nothing below writes anything);
# - existing: the order, row-locked as in `_ORDER_FOR_UPDATE`, so updates of one order queue in order;
# - new_order: inserted when there was none; ON CONFLICT DO NOTHING if another request just inserted it;
# - target: the order to queue for: the new one, or the existing one if it is this user's;
# - queued: the outbox row; the unique dedup_key makes a repeated status insert nothing;
# - moved: the existing order takes the status only if its update was queued (a duplicate changes nothing),
#   and `cancellable` only ever goes to false, as in `_UPDATE_ORDER`.
# The final row says which of these happened, and finds a duplicate committed before the statement began.
_RECORD_STATUS_PG = text(
    """
    WITH customer AS (
        SELECT id, chat_id, is_blocked FROM customers
        WHERE telegram_user_id = :user_id AND linked_at IS NOT NULL
    ),
    existing AS MATERIALIZED (
        SELECT id, telegram_user_id FROM orders
        WHERE horeca_id = :horeca_id AND order_id = :order_id
        FOR UPDATE
    ),
    new_order AS (
        INSERT INTO orders (horeca_id, order_id, customer_id, telegram_user_id, status, cancellable, created_at, updated_at)
        SELECT :horeca_id, :order_id, customer.id, :user_id, :status, :cancellable, :now, :now
        FROM customer WHERE NOT EXISTS (SELECT 1 FROM existing)
        ON CONFLICT (horeca_id, order_id) DO NOTHING
        RETURNING id
    ),
    target AS (
        SELECT id FROM new_order
        UNION ALL
        SELECT existing.id FROM existing, customer WHERE existing.telegram_user_id = :user_id
    ),
    queued AS (
        INSERT INTO outbox (kind, bot, chat_id, order_pk, status, text, dedup_key, state, attempts,
                            created_at, next_attempt_at, last_error, has_button)
        SELECT 'status', 'customer', customer.chat_id, target.id, :status, CAST(:text AS TEXT),
               'status:' || target.id || ':' || CAST(:status AS TEXT),
               CASE WHEN customer.is_blocked THEN 'blocked' ELSE 'pending' END, 0, :now, :now,
               CASE WHEN customer.is_blocked THEN 'the user has blocked the bot' END, false
        FROM target, customer
        ON CONFLICT (dedup_key) DO NOTHING
        RETURNING id, state, order_pk
    ),
    moved AS (
        UPDATE orders SET status = :status, updated_at = :now, cancellable = orders.cancellable AND :cancellable
        FROM queued, existing
        WHERE orders.id = queued.order_pk AND existing.id = queued.order_pk
        RETURNING orders.id
    )
    SELECT EXISTS (SELECT 1 FROM customer) AS linked,
           (SELECT telegram_user_id FROM existing) AS owner,
           queued.id AS update_id, queued.state,
           duplicate.id AS duplicate_id, duplicate.state AS duplicate_state
    FROM (SELECT 1) AS one
    LEFT JOIN queued ON true
    LEFT JOIN outbox AS duplicate
        ON duplicate.dedup_key = 'status:' || (SELECT id FROM existing) || ':' || CAST(:status AS TEXT)
    """
)

# Built once on the tables (not the ORM classes), so executing them skips the ORM's compile and load steps.
_customers, _orders, _outbox = Customer.__table__, Order.__table__, OutboxMessage.__table__
_CUSTOMER = select(_customers.c.id, _customers.c.chat_id, _customers.c.is_blocked, _customers.c.linked_at).where(
    _customers.c.telegram_user_id == bindparam("user_id")
)
_ORDER_FOR_UPDATE = (
    select(_orders.c.id, _orders.c.telegram_user_id)
    .where(_orders.c.horeca_id == bindparam("horeca_id"), _orders.c.order_id == bindparam("order_id"))
    .with_for_update()
)
_DUPLICATE = select(_outbox.c.id, _outbox.c.state).where(_outbox.c.dedup_key == bindparam("dedup_key"))
_UPDATE_ORDER = (
    update(_orders)
    .where(_orders.c.id == bindparam("order_pk"))
    .values(
        status=bindparam("status"), updated_at=bindparam("now"),
        cancellable=and_(_orders.c.cancellable, bindparam("still", type_=Boolean)),
    )
)
_INSERT_ORDER = (
    insert(_orders)
    .values(
        horeca_id=bindparam("horeca_id"), order_id=bindparam("order_id"), customer_id=bindparam("customer_id"),
        telegram_user_id=bindparam("telegram_user_id"), status=bindparam("status"),
        cancellable=bindparam("cancellable"), created_at=bindparam("now"), updated_at=bindparam("now"),
    )
    .returning(_orders.c.id)
)
_INSERT_UPDATE = (
    insert(_outbox)
    .values(
        kind="status", bot="customer", chat_id=bindparam("chat_id"), order_pk=bindparam("order_pk"),
        status=bindparam("status"), text=bindparam("text"), dedup_key=bindparam("dedup_key"), state=bindparam("state"),
        attempts=0, created_at=bindparam("now"), next_attempt_at=bindparam("now"), last_error=bindparam("last_error"),
        has_button=False,
    )
    .returning(_outbox.c.id)
)


@read_only()
def order_view(horeca_id: str, order_id: str) -> dict:
    """The order with every status update and its delivery state."""
    order = db.session.scalar(select(Order).where(Order.horeca_id == horeca_id, Order.order_id == order_id))
    if order is None:
        db.session.rollback()
        raise NotFound("no such order", "order_not_found")
    updates = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.order_pk == order.id, OutboxMessage.kind == "status").order_by(OutboxMessage.id)
    ).all()
    view = {
        "order_id": order.order_id,
        "horeca_id": order.horeca_id,
        "user_id": order.telegram_user_id,
        "status": order.status,
        "cancellable": order.cancellable and order.cancel_requested_at is None,
        "cancel_requested": order.cancel_requested_at is not None,
        "cancel_requested_at": iso(order.cancel_requested_at),
        "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at),
        "updates": [
            {
                "update_id": u.id,
                "status": u.status,
                "delivery": "pending" if u.state == "sending" else u.state,
                "created_at": iso(u.created_at),
                "sent_at": iso(u.sent_at),
                "last_error": u.last_error,
            }
            for u in updates
        ],
    }
    db.session.rollback()
    return view


def active_orders(telegram_user_id: int) -> list[Order]:
    """The user's orders that are not finished yet, oldest first (caller ends the transaction)."""
    return list(
        db.session.scalars(
            select(Order)
            .where(Order.telegram_user_id == telegram_user_id, Order.status.in_(ACTIVE_STATUSES))
            .order_by(Order.created_at, Order.id)
        )
    )


@dataclass(frozen=True)
class CancelOutcome:
    outcome: str  # requested | already_requested | not_cancellable | not_found
    order_id: str | None = None
    horeca_id: str | None = None


def request_cancel(telegram_user_id: int, order_pk: int) -> CancelOutcome:
    """The customer asks to cancel: only the owner, only while cancellable, in one transaction."""
    try:
        order = db.session.scalar(select(Order).where(Order.id == order_pk).with_for_update())
        if order is None or order.telegram_user_id != telegram_user_id:
            db.session.rollback()
            return CancelOutcome("not_found")
        ids = {"order_id": order.order_id, "horeca_id": order.horeca_id}
        if order.cancel_requested_at is not None:
            db.session.rollback()
            return CancelOutcome("already_requested", **ids)
        if not order.cancellable or order.status not in CANCELLABLE_STATUSES:
            db.session.rollback()
            return CancelOutcome("not_cancellable", **ids)
        order.cancel_requested_at = utcnow()
        events.emit("order.cancel_requested", {**ids, "user_id": telegram_user_id})
        db.session.commit()
        return CancelOutcome("requested", **ids)
    except Exception:
        db.session.rollback()
        raise
