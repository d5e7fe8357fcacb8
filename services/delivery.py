"""The outbox seen from the bot process: claim due messages, record what Telegram answered and which keyboards are on.

A message goes pending → sending (claimed, committed before Telegram is called) → sent | failed | blocked,
or back to pending with a later `next_attempt_at`. Messages of one order (or, without an order, of one
chat of one bot) are claimed one at a time, oldest first: a row is not due while an older one of the same
order is pending or sending. A `sending` claim older than the claim timeout belongs to a process that
died and is taken over. A status to a customer who never started the bot ("400 chat not found") is set
aside as `blocked` with `customers.WAITING_ERROR` and queued again when they write to the bot: not
`pending`, which would count as a backlog (the oldest-pending alert) for as long as they wait. Under a
backlog, a late status gives way to the newest due status of its order (`services/coalescing.py`, in the claim).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, bindparam, func, or_, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import aliased

from database import transaction
from models import BotName, Customer, OutboxMessage, OutboxState, db, utcnow
from services import coalescing, customers, status_card
from services.claims import claimable, stale_before
from services.status_card import StatusCard

ACTIVE_STATES = (OutboxState.PENDING, OutboxState.SENDING)
MAX_ERROR_CHARS = 500
BLOCKED_ERROR = "the user has blocked the bot"
DEACTIVATED_ERROR = "the user's account is deactivated"
NOT_STARTED_ERROR = "the user has not started the bot"


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
    card: StatusCard | None = None  # a status row's card
    unproven: bool = False  # to a customer the bot has no proof it can write to: a success proves it


# Built once: constructing aliased ORM statements costs more than running them (claims and records are hot).
_OLDER = aliased(OutboxMessage, name="older")
_MARK_SENT = (
    update(OutboxMessage)
    .where(OutboxMessage.id == bindparam("row_id"), OutboxMessage.state != OutboxState.SENT)
    .values(
        state=OutboxState.SENT,
        sent_at=bindparam("sent_at"),
        telegram_message_id=bindparam("message_id"),
        has_button=bindparam("has_button"),
        last_error=None,
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


def _build_claim() -> Select[Any]:
    o, p = OutboxMessage, _OLDER
    # The states as SQL literals, so PostgreSQL can use the partial indexes of active rows (ix_outbox_active_order,
    # ix_outbox_active_chat: migration 0011) in every plan. Without them, on a big table whose statistics still
    # say "no pending rows", each claimed row scanned every pending one: 0.8-1.2 s per claim at 1,000 pending.
    active = p.state.in_(bindparam("active_states", list(ACTIVE_STATES), expanding=True, literal_execute=True))
    older_in_order = select(p.id).where(p.order_pk == o.order_pk, p.id < o.id, active).exists()
    older_in_chat = select(p.id).where(p.order_pk.is_(None), p.bot == o.bot, p.chat_id == o.chat_id, p.id < o.id, active).exists()
    return (
        select(o.id, o.bot, o.kind, o.chat_id, o.order_pk, o.status, o.text, o.payload, o.attempts, o.first_attempt_at)
        .where(
            o.bot.in_(bindparam("bots", expanding=True)),
            claimable(  # due and pending, or the claim of a process that died
                unclaimed=o.state == OutboxState.PENDING,
                due=o.next_attempt_at <= bindparam("now"),
                claimed=o.state == OutboxState.SENDING,
                claimed_at=o.claimed_at,
                stale=bindparam("stale"),
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
_PEOPLE = select(
    Customer.telegram_user_id, Customer.language_code, Customer.is_blocked, Customer.is_deactivated, Customer.reachable_at
).where(Customer.telegram_user_id.in_(bindparam("chats", expanding=True)))
_MARK_SENDING = (
    update(OutboxMessage)
    .where(OutboxMessage.id.in_(bindparam("ids", expanding=True)))
    .values(
        state=OutboxState.SENDING,
        claimed_at=bindparam("claimed_at"),
        claimed_by=bindparam("worker"),
        attempts=OutboxMessage.attempts + 1,
        first_attempt_at=func.coalesce(OutboxMessage.first_attempt_at, bindparam("first_attempt_at")),
    )
)
_MARK_BLOCKED = (
    update(OutboxMessage)
    .where(OutboxMessage.id.in_(bindparam("ids", expanding=True)))
    .values(state=OutboxState.BLOCKED, last_error=bindparam("error"), claimed_at=None, claimed_by=None)
)


def claim_due(
    worker: str, bots: Iterable[str], limit: int, claim_timeout: float, coalesce_after: float | None = None
) -> list[Job]:
    """Claim up to `limit` due messages of these bots for `worker`: marks them sending and commits.

    `coalesce_after`: a status row older than this many seconds gives way to the newest due status of its order
    (`services/coalescing.py`); None: every status is sent.
    """
    now = utcnow()
    with _turn(), db.engine.begin() as conn:  # hot: Core statements built once, one short transaction
        rows = conn.execute(
            _CLAIM.limit(limit), {"bots": list(bots), "now": now, "stale": stale_before(now, claim_timeout)}
        ).all()
        if not rows:
            return []
        if coalesce_after is not None:
            rows = coalescing.coalesce(conn, rows, now, coalesce_after)
        order_pks = sorted({r.order_pk for r in rows if r.order_pk is not None})
        orders = status_card.orders_of_claim(conn, order_pks)
        chats = sorted({r.chat_id for r in rows if r.bot == BotName.CUSTOMER})
        people = {r.telegram_user_id: r for r in conn.execute(_PEOPLE, {"chats": chats})} if chats else {}
        waiting = _waiting_orders(conn, rows, people)

        jobs: list[Job] = []
        blocked: dict[str, list[int]] = {}
        for row in rows:
            person = people.get(row.chat_id) if row.bot == BotName.CUSTOMER else None
            if person is not None and person.is_blocked:
                # Blocked users get nothing until they come back; the row says so.
                blocked.setdefault(DEACTIVATED_ERROR if person.is_deactivated else BLOCKED_ERROR, []).append(row.id)
                continue
            if person is not None and row.order_pk is not None and waiting.get(row.order_pk, row.id) < row.id:
                # An older status of its order waits for the user to start the bot: this one waits behind it.
                blocked.setdefault(customers.WAITING_ERROR, []).append(row.id)
                continue
            order = orders.get(row.order_pk) if row.order_pk is not None else None
            language = person.language_code if person is not None else None
            jobs.append(
                Job(
                    id=row.id,
                    bot=row.bot,
                    kind=row.kind,
                    chat_id=row.chat_id,
                    order_pk=row.order_pk,
                    status=row.status,
                    text=row.text,
                    payload=row.payload,
                    attempts=(row.attempts or 0) + 1,
                    first_attempt_at=row.first_attempt_at or now,
                    language=language,
                    card=status_card.claimed(row, order, language),
                    unproven=person is not None and person.reachable_at is None,
                )
            )
        if jobs:
            conn.execute(
                _MARK_SENDING, {"ids": [j.id for j in jobs], "claimed_at": now, "worker": worker, "first_attempt_at": now}
            )
        for error, ids in blocked.items():
            conn.execute(_MARK_BLOCKED, {"ids": ids, "error": error})
    return jobs


_WAITING = (
    select(OutboxMessage.order_pk, func.min(OutboxMessage.id))
    .where(
        OutboxMessage.order_pk.in_(bindparam("orders", expanding=True)),
        OutboxMessage.state == OutboxState.BLOCKED,
        OutboxMessage.last_error == customers.WAITING_ERROR,
    )
    .group_by(OutboxMessage.order_pk)
)


def _waiting_orders(conn: Connection, rows: Sequence[Row[Any]], people: dict[int, Row[Any]]) -> dict[int, int]:
    """order pk → its oldest status waiting for /start, among the claimed orders of customers without proof of
    the chat (only they can have one: the hot path of reachable customers pays nothing)."""
    unproven = sorted(
        {
            r.order_pk
            for r in rows
            if r.bot == BotName.CUSTOMER
            and r.order_pk is not None
            and (p := people.get(r.chat_id)) is not None
            and p.reachable_at is None
        }
    )
    if not unproven:
        return {}
    return {pk: first for pk, first in conn.execute(_WAITING, {"orders": unproven})}


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
    proves_chat: int | None = None  # the customer's chat, when this is the first proof the bot can write to it


# Seconds to wait before each new attempt at recording sent messages after a lost connection (issue 10).
RECORD_RETRY_WAITS = (0.05, 0.5, 1.5, 3.0)


def record_sent(sent: list[Sent]) -> None:
    """Record messages Telegram accepted, in one short transaction (the bot process group-commits them).

    A connection lost on the way (pg_terminate_backend, a restart, a failover) is retried on a fresh one
    for about 5 s: marking a row sent twice changes nothing, and a row left `sending` would be sent again.
    """
    if not sent:
        return
    for wait in RECORD_RETRY_WAITS:
        try:
            _record_sent(sent)
            return
        except DBAPIError as exc:
            if not (exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)):
                raise
            time.sleep(wait)  # the pool dropped the dead connection: the next attempt checks out another
    _record_sent(sent)


def _record_sent(sent: list[Sent]) -> None:
    now = utcnow()
    with _turn(), db.engine.begin() as conn:  # the hottest write: Core, without the session's bookkeeping
        conn.execute(
            _MARK_SENT,
            [{"row_id": s.row_id, "sent_at": now, "message_id": s.message_id, "has_button": s.has_button} for s in sent],
        )
        customers.proven_by_delivery(conn, [s.proves_chat for s in sent if s.proves_chat is not None])


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


def record_failed(row_id: int, worker: str, error: str) -> list[StatusCard]:
    """The message can never be delivered; returns the cards of its order whose keyboard must go if the order closed."""
    refs: list[StatusCard] = []
    with _turn(), transaction():
        row = _claimed(row_id, worker)
        if row is not None:
            row.state = OutboxState.FAILED
            row.last_error = _clip(error)
            row.claimed_at = None
            row.claimed_by = None
            if row.order_pk is not None:
                refs = status_card.stale_of([row.order_pk])
    return refs


def record_chat_not_found(row_id: int, worker: str, kind: str, chat_id: int, error: str) -> None:
    """Telegram said 400 chat not found to a customer: they never started the bot (or deleted the chat).

    The customer is unreachable until they write to the bot (subscribe-status: never_started). A status waits
    for that: it and the chat's other pending statuses are set aside as `blocked` with WAITING_ERROR, and
    `customers.heard_from` queues them again. Any other message (a staff member's) fails: its batch summary
    tells the staff member it could not be delivered (not that the customer blocked the bot).
    """
    with _turn(), transaction():
        row = _claimed(row_id, worker)
        customer = customers.find(chat_id)  # a private chat's id is the user's id
        if row is not None and customer is not None and customer.reachable_at is not None and row.claimed_at is not None:
            if customer.reachable_at >= row.claimed_at:
                # They started the bot while this was on its way: Telegram's answer is already stale. Again, now.
                row.state, row.next_attempt_at, row.last_error = OutboxState.PENDING, utcnow(), _clip(error)
                row.claimed_at = row.claimed_by = None
                return
        if row is not None:
            waits = kind in customers.WAITING_KINDS
            row.state = OutboxState.BLOCKED if waits else OutboxState.FAILED
            row.last_error = customers.WAITING_ERROR if waits else _clip(f"{NOT_STARTED_ERROR}: {error}")
            row.claimed_at = None
            row.claimed_by = None
        customers.waiting_statuses(BotName.CUSTOMER, chat_id)
        if customer is not None:
            customers.chat_not_found(customer)


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
                state=OutboxState.PENDING,
                claimed_at=None,
                claimed_by=None,
                attempts=OutboxMessage.attempts - 1,
                next_attempt_at=utcnow() + timedelta(seconds=max(delay, 0.0)),
            )
        )


def set_has_button(row_id: int, has_button: bool) -> None:
    """Remember whether the message now carries a keyboard (bot/cancel_button.py is the one caller). Own transaction."""
    with _turn(), transaction() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(has_button=has_button))
