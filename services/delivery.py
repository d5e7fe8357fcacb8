"""The outbox seen from the bot process: claim due messages, record what Telegram answered, track live buttons.

A message goes pending → sending (claimed, committed before Telegram is called) → sent | failed | blocked,
or back to pending with a later `next_attempt_at`. Messages of one order (or, without an order, of one
chat of one bot) are claimed one at a time, oldest first: a row is not due while an older one of the same
order is pending or sending. A `sending` claim older than the claim timeout belongs to a process that
died and is taken over.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import aliased

from database import read_only, transaction
from models import BotName, Customer, Order, OutboxKind, OutboxMessage, OutboxState, db, utcnow
from services import customers
from services.claims import claimable, stale_before
from services.orders import CANCELLABLE_STATUSES

ACTIVE_STATES = (OutboxState.PENDING, OutboxState.SENDING)
MAX_ERROR_CHARS = 500
BLOCKED_ERROR = "the user has blocked the bot"
DEACTIVATED_ERROR = "the user's account is deactivated"


@dataclass(frozen=True)
class Job:
    """A claimed message with what rendering it needs."""

    id: int
    bot: str
    kind: str
    chat_id: int
    order_pk: int | None
    status: str | None
    text: str | None
    payload: str | None
    attempts: int
    first_attempt_at: datetime
    language: str | None = None  # the customer's Telegram language_code
    order_id: str | None = None
    horeca_id: str | None = None
    order_open: bool = False  # the order can still be cancelled and no cancel was requested
    newest: bool = True  # no newer status update of the same order exists


@dataclass(frozen=True)
class ButtonRef:
    """A sent message whose inline keyboard should go, with what re-rendering it without its footer needs."""

    row_id: int
    bot: str
    chat_id: int
    message_id: int
    order_pk: int | None
    kind: str
    status: str | None
    text: str | None
    order_id: str | None
    horeca_id: str | None
    language: str | None


@dataclass(frozen=True)
class MessageRef:
    """A status message the bot sent, as a button press sees it."""

    row_id: int
    order_pk: int
    owner: int  # the Telegram user who owns the order
    status: str | None
    text: str | None
    has_button: bool
    order_id: str
    horeca_id: str
    order_open: bool
    cancel_requested: bool
    newest_sent: bool  # no newer status message of the order has been sent
    language: str | None


# Built once: constructing aliased ORM statements costs more than running them (claims and records are hot).
_OLDER = aliased(OutboxMessage, name="older")
_NEWER = aliased(OutboxMessage, name="newer")


def _build_stale_buttons():
    o, n = OutboxMessage, _NEWER
    newer_sent = (
        select(n.id)
        .where(n.order_pk == o.order_pk, n.kind == "status", n.id > o.id, n.state == "sent", n.telegram_message_id.is_not(None))
        .exists()
    )
    return (
        select(
            o.id, o.bot, o.chat_id, o.telegram_message_id, o.order_pk, o.kind, o.status, o.text,
            Order.order_id, Order.horeca_id, Customer.language_code,
        )
        .join(Order, Order.id == o.order_pk)
        .outerjoin(Customer, Customer.id == Order.customer_id)
        .where(
            o.has_button == True,  # noqa: E712 (the partial index ix_outbox_has_button matches this form)
            o.telegram_message_id.is_not(None),
            or_(Order.cancellable == False, Order.cancel_requested_at.is_not(None), newer_sent),  # noqa: E712
        )
        .order_by(o.id)
    )


_STALE_BUTTONS = _build_stale_buttons()
_STALE_BUTTONS_OF_ORDERS = _STALE_BUTTONS.where(OutboxMessage.order_pk.in_(bindparam("order_pks", expanding=True)))


_MARK_SENT = (
    update(OutboxMessage)
    .where(OutboxMessage.id == bindparam("row_id"), OutboxMessage.state != OutboxState.SENT)
    .values(
        state=OutboxState.SENT, sent_at=bindparam("sent_at"), telegram_message_id=bindparam("message_id"),
        has_button=bindparam("has_button"), last_error=None,
    )
)


_sqlite_writers = threading.Lock()


@contextmanager
def _turn() -> Iterator[None]:
    """On SQLite, this process's writers take turns here: a waiting thread gets the lock the moment it is free,
    where SQLite's own busy handler would sleep for milliseconds and stall every delivery worker behind it."""
    if db.engine.dialect.name == "sqlite":
        with _sqlite_writers:
            yield
    else:
        yield


def _clip(error: str) -> str:
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"


def _open(order: Any) -> bool:
    """An Order (or a row with its columns) that can still be cancelled and has no cancel request."""
    return bool(order and order.cancellable and order.cancel_requested_at is None and order.status in CANCELLABLE_STATUSES)


def _build_claim() -> Select[Any]:
    o, p = OutboxMessage, _OLDER
    older_in_order = select(p.id).where(p.order_pk == o.order_pk, p.id < o.id, p.state.in_(ACTIVE_STATES)).exists()
    older_in_chat = (
        select(p.id)
        .where(p.order_pk.is_(None), p.bot == o.bot, p.chat_id == o.chat_id, p.id < o.id, p.state.in_(ACTIVE_STATES))
        .exists()
    )
    return (
        select(o.id, o.bot, o.kind, o.chat_id, o.order_pk, o.status, o.text, o.payload, o.attempts, o.first_attempt_at)
        .where(
            o.bot.in_(bindparam("bots", expanding=True)),
            claimable(  # due and pending, or the claim of a process that died
                unclaimed=o.state == OutboxState.PENDING, due=o.next_attempt_at <= bindparam("now"),
                claimed=o.state == OutboxState.SENDING, claimed_at=o.claimed_at, stale=bindparam("stale"),
            ),
            # One message per order (per chat for messages without an order) at a time, oldest first.
            or_(and_(o.order_pk.is_not(None), ~older_in_order), and_(o.order_pk.is_(None), ~older_in_chat)),
        )
        .order_by(o.id)
        # PostgreSQL: rows another process is claiming right now are skipped, never sent twice.
        # SQLite: the transaction began with BEGIN IMMEDIATE, which serializes claims.
        .with_for_update(skip_locked=True, of=o)
    )


_CLAIM = _build_claim()
_ORDER_CONTEXT = select(
    Order.id, Order.order_id, Order.horeca_id, Order.status, Order.cancellable, Order.cancel_requested_at,
    select(func.max(_NEWER.id))
    .where(_NEWER.order_pk == Order.id, _NEWER.kind == OutboxKind.STATUS)
    .scalar_subquery()
    .label("newest"),
).where(Order.id.in_(bindparam("pks", expanding=True)))
_PEOPLE = select(Customer.telegram_user_id, Customer.language_code, Customer.is_blocked, Customer.is_deactivated).where(
    Customer.telegram_user_id.in_(bindparam("chats", expanding=True))
)
_MARK_SENDING = (
    update(OutboxMessage)
    .where(OutboxMessage.id.in_(bindparam("ids", expanding=True)))
    .values(
        state=OutboxState.SENDING, claimed_at=bindparam("claimed_at"), claimed_by=bindparam("worker"),
        attempts=OutboxMessage.attempts + 1,
        first_attempt_at=func.coalesce(OutboxMessage.first_attempt_at, bindparam("first_attempt_at")),
    )
)
_MARK_BLOCKED = (
    update(OutboxMessage)
    .where(OutboxMessage.id.in_(bindparam("ids", expanding=True)))
    .values(state=OutboxState.BLOCKED, last_error=bindparam("error"), claimed_at=None, claimed_by=None)
)


def claim_due(worker: str, bots: Iterable[str], limit: int, claim_timeout: float) -> list[Job]:
    """Claim up to `limit` due messages of these bots for `worker`: marks them sending and commits."""
    now = utcnow()
    with _turn(), db.engine.begin() as conn:  # hot: Core statements built once, one short transaction
        rows = conn.execute(
            _CLAIM.limit(limit), {"bots": list(bots), "now": now, "stale": stale_before(now, claim_timeout)}
        ).all()
        if not rows:
            return []
        order_pks = sorted({r.order_pk for r in rows if r.order_pk is not None})
        orders = {r.id: r for r in conn.execute(_ORDER_CONTEXT, {"pks": order_pks})} if order_pks else {}
        chats = sorted({r.chat_id for r in rows if r.bot == BotName.CUSTOMER})
        people = {r.telegram_user_id: r for r in conn.execute(_PEOPLE, {"chats": chats})} if chats else {}

        jobs: list[Job] = []
        blocked: dict[str, list[int]] = {}
        for row in rows:
            person = people.get(row.chat_id) if row.bot == BotName.CUSTOMER else None
            if person is not None and person.is_blocked:
                # Blocked users get nothing until they come back; the row says so.
                blocked.setdefault(DEACTIVATED_ERROR if person.is_deactivated else BLOCKED_ERROR, []).append(row.id)
                continue
            order = orders.get(row.order_pk) if row.order_pk is not None else None
            jobs.append(
                Job(
                    id=row.id, bot=row.bot, kind=row.kind, chat_id=row.chat_id, order_pk=row.order_pk, status=row.status,
                    text=row.text, payload=row.payload, attempts=(row.attempts or 0) + 1,
                    first_attempt_at=row.first_attempt_at or now,
                    language=person.language_code if person is not None else None,
                    order_id=order.order_id if order else None, horeca_id=order.horeca_id if order else None,
                    order_open=_open(order), newest=order is None or order.newest is None or order.newest <= row.id,
                )
            )
        if jobs:
            conn.execute(
                _MARK_SENDING, {"ids": [j.id for j in jobs], "claimed_at": now, "worker": worker, "first_attempt_at": now}
            )
        for error, ids in blocked.items():
            conn.execute(_MARK_BLOCKED, {"ids": ids, "error": error})
    return jobs


def _claimed(row_id: int, worker: str) -> OutboxMessage | None:
    row = db.session.get(OutboxMessage, row_id, with_for_update=True)
    if row is None or row.state != OutboxState.SENDING or row.claimed_by != worker:
        return None  # taken over by another process after our claim went stale: theirs now
    return row


@dataclass(frozen=True)
class Sent:
    """Telegram accepted a claimed message."""

    row_id: int
    message_id: int
    has_button: bool
    supersedes_in_order: int | None = None  # its order's older keyboards must go


def record_sent(sent: list[Sent]) -> None:
    """Record messages Telegram accepted, in one short transaction (the bot process group-commits them)."""
    if not sent:
        return
    now = utcnow()
    with _turn(), db.engine.begin() as conn:  # the hottest write: Core, without the session's bookkeeping
        conn.execute(
            _MARK_SENT,
            [{"row_id": s.row_id, "sent_at": now, "message_id": s.message_id, "has_button": s.has_button} for s in sent],
        )


@read_only()  # on SQLite: no write lock, so never waits behind the delivery's writes
def superseded_buttons(order_pks: Iterable[int]) -> list[ButtonRef]:
    """Keyboards of these orders that must go (an older message of an order whose newer one was sent); read-only."""
    pks = sorted(set(order_pks))
    if not pks:
        return []
    with db.engine.connect() as conn:
        return _button_refs(conn.execute(_STALE_BUTTONS_OF_ORDERS, {"order_pks": pks}))


def record_retry(row_id: int, worker: str, error: str, delay: float) -> None:
    """The attempt failed for a reason that may pass: try again after `delay` seconds."""
    with _turn(), transaction():
        row = _claimed(row_id, worker)
        if row is not None:
            row.state = OutboxState.PENDING
            row.next_attempt_at = utcnow() + timedelta(seconds=max(delay, 0.0))
            row.last_error = _clip(error)
            row.claimed_at = None
            row.claimed_by = None


def record_failed(row_id: int, worker: str, error: str) -> list[ButtonRef]:
    """The message can never be delivered; returns buttons of its order that must go if the order closed."""
    refs: list[ButtonRef] = []
    with _turn(), transaction():
        row = _claimed(row_id, worker)
        if row is not None:
            row.state = OutboxState.FAILED
            row.last_error = _clip(error)
            row.claimed_at = None
            row.claimed_by = None
            if row.order_pk is not None:
                refs = _stale_buttons([row.order_pk], None)
    return refs


def record_blocked(row_id: int, worker: str, bot: str, chat_id: int, deactivated: bool = False) -> None:
    """Telegram said 403: this message, and every pending one to the chat, is blocked; the customer too."""
    error = DEACTIVATED_ERROR if deactivated else BLOCKED_ERROR
    with _turn(), transaction():
        row = _claimed(row_id, worker)
        if row is not None:
            row.state = OutboxState.BLOCKED
            row.last_error = error
            row.claimed_at = None
            row.claimed_by = None
        _block_chat(bot, chat_id, error, deactivated)


def _block_chat(bot: str, chat_id: int, error: str, deactivated: bool) -> None:
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.bot == bot, OutboxMessage.chat_id == chat_id, OutboxMessage.state == OutboxState.PENDING)
        .values(state=OutboxState.BLOCKED, last_error=error)
    )
    if bot == BotName.CUSTOMER:
        customer = customers.find(chat_id)  # a private chat's id is the user's id
        if customer is not None:
            customers.set_blocked(customer, True, deactivated)


def chat_blocked(bot: str, chat_id: int, deactivated: bool = False) -> None:
    """A 403 outside of sending (an edit): mark the chat blocked. Own transaction."""
    with _turn(), transaction():
        _block_chat(bot, chat_id, DEACTIVATED_ERROR if deactivated else BLOCKED_ERROR, deactivated)


def release(row_ids: Iterable[int], worker: str, delay: float = 0.0) -> None:
    """Give claimed messages back unsent (shutting down, or their chat must wait): no attempt is counted."""
    ids = list(row_ids)
    if not ids:
        return
    with _turn(), transaction() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), OutboxMessage.state == OutboxState.SENDING, OutboxMessage.claimed_by == worker)
            .values(
                state=OutboxState.PENDING, claimed_at=None, claimed_by=None, attempts=OutboxMessage.attempts - 1,
                next_attempt_at=utcnow() + timedelta(seconds=max(delay, 0.0)),
            )
        )


def _stale_buttons(order_pks: list[int] | None, bots: tuple[str, ...] | None, limit: int | None = None) -> list[ButtonRef]:
    """Sent messages that still carry a keyboard although their order closed or a newer status was sent."""
    if order_pks is not None:
        stmt, params = _STALE_BUTTONS_OF_ORDERS, {"order_pks": list(order_pks)}
    else:
        stmt, params = _STALE_BUTTONS, {}
    if bots is not None:
        stmt = stmt.where(OutboxMessage.bot.in_(bots))
    if limit is not None:
        stmt = stmt.limit(limit)
    return _button_refs(db.session.execute(stmt, params))


def _button_refs(rows: Iterable[Any]) -> list[ButtonRef]:
    """ButtonRefs from rows of the stale-buttons query."""
    return [
        ButtonRef(
            r.id, r.bot, r.chat_id, r.telegram_message_id, r.order_pk, r.kind, r.status, r.text, r.order_id, r.horeca_id,
            r.language_code,
        )
        for r in rows
    ]


@read_only()  # on SQLite: no write lock, so never waits behind the delivery's writes
def stale_buttons(bots: Iterable[str], limit: int = 200) -> list[ButtonRef]:
    """Every message (of these bots) whose keyboard should be gone; read-only."""
    refs = _stale_buttons(None, tuple(bots), limit)
    db.session.rollback()
    return refs


@read_only()  # on SQLite: no write lock, so never waits behind the delivery's writes
def stale_buttons_of(order_pk: int) -> list[ButtonRef]:
    """The messages of one order whose keyboard should be gone; read-only."""
    refs = _stale_buttons([order_pk], None)
    db.session.rollback()
    return refs


def set_has_button(row_id: int, has_button: bool) -> None:
    """Remember whether the message now carries a keyboard. Own transaction."""
    with _turn():
        try:
            db.session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(has_button=has_button))
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise


@read_only()  # on SQLite: no write lock, so never waits behind the delivery's writes
def find_message(bot: str, chat_id: int, message_id: int, order_pk: int) -> MessageRef | None:
    """The status message `message_id` in `chat_id` if it belongs to order `order_pk`; read-only."""
    o = OutboxMessage
    try:
        row = db.session.scalar(
            select(o).where(
                o.order_pk == order_pk, o.bot == bot, o.chat_id == chat_id, o.telegram_message_id == message_id,
                o.kind == "status",
            )
        )
        order = db.session.get(Order, order_pk) if row is not None else None
        if row is None or order is None:
            return None
        newer = db.session.scalar(
            select(func.count()).select_from(o).where(
                o.order_pk == order_pk, o.kind == "status", o.id > row.id, o.state == "sent", o.telegram_message_id.is_not(None)
            )
        )
        customer = db.session.get(Customer, order.customer_id)
        return MessageRef(
            row_id=row.id, order_pk=order.id, owner=order.telegram_user_id, status=row.status, text=row.text,
            has_button=row.has_button, order_id=order.order_id, horeca_id=order.horeca_id, order_open=_open(order),
            cancel_requested=order.cancel_requested_at is not None, newest_sent=not newer,
            language=customer.language_code if customer else None,
        )
    finally:
        db.session.rollback()
