"""PostgreSQL: recording a status change in one statement and one round trip, the API's hottest write.

The same outcome as the general path in `services/orders.py` (which SQLite always takes, and PostgreSQL
when this path cannot decide), with the dedup key and the cancel rule taken from `services/order_status.py`
as SQL expressions. The statement is built once at import and runs prepared through
`database.single_statement`, on the thread's own autocommit connection: its own transaction.
"""

from __future__ import annotations

import typing

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    case,
    exists,
    false,
    literal_column,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine

from database import single_statement
from models import BotName, Customer, Order, OutboxKind, OutboxMessage, OutboxState, utcnow
from services.errors import Conflict, NotFound
from services.order_status import BLOCKED_ERROR, Recorded, next_cancellable_sql, sql_string, status_key_sql


def record_status(engine: Engine, user_id: int, horeca_id: str, order_id: str, status: str, text: str | None) -> Recorded | None:
    """Record the status change in one statement (the general path's outcome, its errors included).

    None when the outcome needs the general path: a concurrent request created the same order or queued the
    same update after this statement's snapshot was taken. Nothing was written then.
    """
    row = single_statement(
        engine,
        RECORD_STATUS,
        {"user_id": user_id, "horeca_id": horeca_id, "order_id": order_id, "status": status, "text": text, "now": utcnow()},
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
# - existing: the order, row-locked as in the general path, so updates of one order queue in order;
# - new_order: inserted when there was none; ON CONFLICT DO NOTHING if another request just inserted it;
# - target: the order to queue for: the new one, or the existing one if it is this user's;
# - queued: the outbox row; the unique dedup_key makes a repeated status insert nothing;
# - moved: the existing order takes the status only if its update was queued (a duplicate changes nothing),
#   and `cancellable` follows the cancel rule.
# The final row says which of these happened, and finds a duplicate committed before the statement began.
_customers, _orders, _outbox = (typing.cast(Table, m.__table__) for m in (Customer, Order, OutboxMessage))
_user_id = bindparam("user_id", type_=BigInteger)  # Telegram ids are 64-bit
_horeca_id = bindparam("horeca_id", type_=String)
_order_id = bindparam("order_id", type_=String)
_status = bindparam("status", type_=String)
_text = bindparam("text", type_=Text)
_now = bindparam("now", type_=DateTime)

_customer = (
    select(_customers.c.id, _customers.c.chat_id, _customers.c.is_blocked)
    .where(_customers.c.telegram_user_id == _user_id, _customers.c.linked_at.is_not(None))
    .cte("customer")
)
_existing = (
    select(_orders.c.id, _orders.c.telegram_user_id)
    .where(_orders.c.horeca_id == _horeca_id, _orders.c.order_id == _order_id)
    .with_for_update()
    .cte("existing")
    .prefix_with("MATERIALIZED")
)
_new_order = (
    insert(_orders)
    .from_select(
        ["horeca_id", "order_id", "customer_id", "telegram_user_id", "status", "cancellable", "created_at", "updated_at"],
        select(_horeca_id, _order_id, _customer.c.id, _user_id, _status, next_cancellable_sql(true(), _status), _now, _now).where(
            ~exists().select_from(_existing)
        ),
    )
    .on_conflict_do_nothing(index_elements=["horeca_id", "order_id"])
    .returning(_orders.c.id)
    .cte("new_order")
)
_target = union_all(
    select(_new_order.c.id),
    select(_existing.c.id).select_from(_existing.join(_customer, true())).where(_existing.c.telegram_user_id == _user_id),
).cte("target")
_blocked = _customer.c.is_blocked
_queued = (
    insert(_outbox)
    .from_select(
        [
            "kind",
            "bot",
            "chat_id",
            "order_pk",
            "status",
            "text",
            "dedup_key",
            "state",
            "attempts",
            "created_at",
            "next_attempt_at",
            "last_error",
            "has_button",
        ],  # fmt: skip
        select(
            sql_string(OutboxKind.STATUS),
            sql_string(BotName.CUSTOMER),
            _customer.c.chat_id,
            _target.c.id,
            _status,
            _text,
            status_key_sql(_target.c.id, _status),
            case((_blocked, sql_string(OutboxState.BLOCKED)), else_=sql_string(OutboxState.PENDING)),
            literal_column("0", Integer),
            _now,
            _now,
            case((_blocked, sql_string(BLOCKED_ERROR))),
            false(),
        ).select_from(_target.join(_customer, true())),
    )
    .on_conflict_do_nothing(index_elements=["dedup_key"])
    .returning(_outbox.c.id, _outbox.c.state, _outbox.c.order_pk)
    .cte("queued")
)
_moved = (
    update(_orders)
    .values(status=_status, updated_at=_now, cancellable=next_cancellable_sql(_orders.c.cancellable, _status))
    .where(_orders.c.id == _queued.c.order_pk, _existing.c.id == _queued.c.order_pk)
    .returning(_orders.c.id)
    .cte("moved")
)
_duplicate = _outbox.alias("duplicate")
_one = select(literal_column("1", Integer)).subquery("one")
RECORD_STATUS = (
    select(
        exists().select_from(_customer).label("linked"),
        select(_existing.c.telegram_user_id).scalar_subquery().label("owner"),
        _queued.c.id.label("update_id"),
        _queued.c.state,
        _duplicate.c.id.label("duplicate_id"),
        _duplicate.c.state.label("duplicate_state"),
    )
    .select_from(
        _one.outerjoin(_queued, true()).outerjoin(
            _duplicate, _duplicate.c.dedup_key == status_key_sql(select(_existing.c.id).scalar_subquery(), _status)
        )
    )
    .add_cte(_moved)  # not read by the rest, so named here for it to run
)
