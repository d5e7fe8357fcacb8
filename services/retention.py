"""History cleaned up: delete what is finished and older than the retention window, in small batches.

What goes, once it is older than the window (`RETENTION_DAYS`):
- dialog messages (either direction) whose outbox message is no longer pending or sending and whose batch (if
  any) was summarized; then the read marks of dialogs that have no message left, and summarized batches that
  have no message left;
- outbox messages without an order (dialog messages, staff notices) that are finished (sent, failed, blocked,
  superseded) and that no kept dialog message points to;
- orders last updated before the window, with all their status messages, unless one of those is still
  pending or sending or still carries a keyboard (the Cancel button is pressable: its card must stay);
  a kept dialog message that named such an order keeps its text and loses the link;
- delivered webhook events; verification codes claimed, or expired unclaimed, before the window; wrong-code
  attempts;
- with their parents: a dialog message's or an outbox row's `message_copies`, an order's rating.
Never: pending or sending rows, customers, staff membership, cafes, quick replies, selections.

Each batch is its own short transaction (`RETENTION_BATCH_SIZE` rows; an order counts with its messages), its
rows picked `FOR UPDATE SKIP LOCKED` on PostgreSQL, so nothing waits long behind the purge and the purge waits
for nothing. Every rule is one SQL condition, used both to count (`dry_run`) and to delete: a dry run's counts
are what a purge right after it deletes. The bot process runs `purge` hourly (bot/workers/retention.py);
`flask --app wsgi purge [--dry-run]` runs it by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, DateTime, Select, and_, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from database import reading, transaction
from models import (
    CodeAttempt,
    DialogBatch,
    DialogMessage,
    DialogRead,
    MessageCopy,
    Order,
    OrderRating,
    OutboxMessage,
    OutboxState,
    VerificationCode,
    WebhookEvent,
    WebhookState,
    utcnow,
)

FINISHED = (OutboxState.SENT, OutboxState.FAILED, OutboxState.BLOCKED, OutboxState.SUPERSEDED)
ACTIVE = (OutboxState.PENDING, OutboxState.SENDING)
ROWS_PER_ORDER = 5  # an order's batch share: the order and its few status messages
TABLES = (
    "dialog_messages",
    "dialog_reads",
    "dialog_batches",
    "outbox",
    "orders",
    "webhook_events",
    "verification_codes",
    "code_attempts",
    # Rows that go with their parent (foreign keys): a dialog message's copies, an outbox row's copies, an order's rating.
    "message_copies",
    "order_ratings",
)

_CUTOFF: BindParameter[datetime] = bindparam("cutoff", type_=DateTime())


@dataclass
class Purged:
    """What a purge deleted (or, with `dry_run`, would delete): rows per table, and the transactions it took."""

    cutoff: datetime
    dry_run: bool
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    batches: int = 0
    finished: bool = True  # False: stopped before the end (the next run goes on)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# --- the rules, one SQL condition each ------------------------------------------------------------------


def _message_goes(m: Any) -> ColumnElement[bool]:
    """A dialog message (`m`, an alias) past the window whose delivery and batch summary are done."""
    o, b = aliased(OutboxMessage), aliased(DialogBatch)
    return and_(
        m.created_at < _CUTOFF,
        or_(m.outbox_id.is_(None), ~exists().where(o.id == m.outbox_id, o.state.in_(ACTIVE))),
        or_(m.batch_id.is_(None), exists().where(b.id == m.batch_id, b.summarized_at.is_not(None))),
    )


def _kept_message(*where: ColumnElement[bool], m: Any) -> ColumnElement[bool]:
    """A dialog message matching `where` stays."""
    return exists().where(*where, ~_message_goes(m))


def _rules() -> dict[str, tuple[Any, ColumnElement[bool]]]:
    """table → (its model, the condition of its rows that go); orders' messages go with their order."""
    k = aliased(DialogMessage, name="kept")
    r, b, o, n = DialogRead, DialogBatch, OutboxMessage, aliased(OutboxMessage, name="busy")
    return {
        "dialog_messages": (DialogMessage, _message_goes(DialogMessage)),
        "dialog_reads": (
            r,
            and_(r.read_at < _CUTOFF, ~_kept_message(k.horeca_id == r.horeca_id, k.customer_id == r.customer_id, m=k)),
        ),
        "dialog_batches": (
            b,
            and_(b.summarized_at.is_not(None), b.created_at < _CUTOFF, ~_kept_message(k.batch_id == b.id, m=k)),
        ),
        "outbox": (
            o,
            and_(
                o.order_pk.is_(None),
                o.state.in_(FINISHED),
                o.created_at < _CUTOFF,
                o.has_button.is_not(True),
                ~_kept_message(k.outbox_id == o.id, m=k),
            ),
        ),
        "orders": (
            Order,
            and_(
                Order.updated_at < _CUTOFF,
                # Two conditions rather than one with OR: each has its index (ix_outbox_order, ix_outbox_has_button);
                # with OR, PostgreSQL read the whole outbox once per batch (3.4 s at 4 M rows).
                ~exists().where(n.order_pk == Order.id, n.state.in_(ACTIVE)),
                ~exists().where(n.order_pk == Order.id, n.has_button == True),  # noqa: E712 (the partial index's form)
            ),
        ),
        "webhook_events": (WebhookEvent, and_(WebhookEvent.state == WebhookState.SENT, WebhookEvent.created_at < _CUTOFF)),
        "verification_codes": (
            VerificationCode,
            or_(
                VerificationCode.claimed_at < _CUTOFF,
                and_(VerificationCode.claimed_at.is_(None), VerificationCode.expires_at < _CUTOFF),
            ),
        ),
        "code_attempts": (CodeAttempt, CodeAttempt.created_at < _CUTOFF),
    }


_RULES = _rules()


def _pick(table: str, limit: int) -> Select[Any]:
    model, goes = _RULES[table]
    # Orders by their last update (ix_orders_updated): the scan stops at the window instead of reading every order.
    order = Order.updated_at if table == "orders" else model.id
    return select(model.id).where(goes).order_by(order).limit(limit).with_for_update(skip_locked=True)


# --- counting and deleting ----------------------------------------------------------------------------------


def count(days: float, now: datetime | None = None) -> Purged:
    """What `purge` would delete now, per table (a dry run)."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    result = Purged(cutoff, dry_run=True)
    params = {"cutoff": cutoff}
    with reading() as session:  # one read transaction: every count sees the same moment
        for table in _RULES:
            model, goes = _RULES[table]
            result.counts[table] = session.scalar(select(func.count()).select_from(model).where(goes), params) or 0
        old_orders = select(Order.id).where(_RULES["orders"][1]).scalar_subquery()
        result.counts["outbox"] += (
            session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.order_pk.in_(old_orders)), params)
            or 0
        )
        messages = select(DialogMessage.id).where(_RULES["dialog_messages"][1]).scalar_subquery()
        outbox = select(OutboxMessage.id).where(_RULES["outbox"][1]).scalar_subquery()
        orders_outbox = select(OutboxMessage.id).where(OutboxMessage.order_pk.in_(old_orders)).scalar_subquery()
        copies = or_(
            MessageCopy.dialog_message_id.in_(messages),
            MessageCopy.outbox_id.in_(outbox),
            MessageCopy.outbox_id.in_(orders_outbox),
        )
        result.counts["message_copies"] = session.scalar(select(func.count()).select_from(MessageCopy).where(copies), params) or 0
        result.counts["order_ratings"] = (
            session.scalar(select(func.count()).select_from(OrderRating).where(OrderRating.order_pk.in_(old_orders)), params) or 0
        )
    return result


def purge(
    days: float,
    batch_size: int = 500,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    stop: Callable[[], bool] | None = None,
) -> Purged:
    """Delete what is past the window, `batch_size` rows per transaction, until nothing is left or `stop()` says so."""
    if dry_run:
        return count(days, now)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = (now or utcnow()) - timedelta(days=days)
    result = Purged(cutoff, dry_run=False)
    for table in _RULES:  # message_copies and order_ratings go with their parents
        limit = max(1, batch_size // ROWS_PER_ORDER) if table == "orders" else batch_size
        while True:
            deleted = _batch(table, cutoff, limit, result)
            if deleted and stop is not None and stop():
                result.finished = False  # between two batches: the next run goes on from here
                return result
            if deleted < limit:
                break
    return result


def _batch(table: str, cutoff: datetime, limit: int, result: Purged) -> int:
    """One transaction: pick up to `limit` rows of `table` that go, delete them (an order with its rows)."""
    model = _RULES[table][0]
    with transaction() as session:
        ids = list(session.scalars(_pick(table, limit), {"cutoff": cutoff}))
        if not ids:
            return 0
        if table == "dialog_messages":
            _count(result, "message_copies", session.execute(delete(MessageCopy).where(MessageCopy.dialog_message_id.in_(ids))))
        if table == "outbox":
            _count(result, "message_copies", session.execute(delete(MessageCopy).where(MessageCopy.outbox_id.in_(ids))))
        if table == "orders":
            session.execute(update(DialogMessage).where(DialogMessage.order_pk.in_(ids)).values(order_pk=None))
            _count(result, "order_ratings", session.execute(delete(OrderRating).where(OrderRating.order_pk.in_(ids))))
            rows = select(OutboxMessage.id).where(OutboxMessage.order_pk.in_(ids))
            _count(result, "message_copies", session.execute(delete(MessageCopy).where(MessageCopy.outbox_id.in_(rows))))
            _count(result, "outbox", session.execute(delete(OutboxMessage).where(OutboxMessage.order_pk.in_(ids))))
        session.execute(delete(model).where(model.id.in_(ids)))
    result.counts[table] += len(ids)
    result.batches += 1
    return len(ids)


def _count(result: Purged, table: str, deleted: Any) -> None:
    result.counts[table] += deleted.rowcount  # a CursorResult


def enabled(days: float) -> bool:
    """RETENTION_DAYS = 0 keeps everything."""
    return days > 0
