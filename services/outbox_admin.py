"""For an admin: list what the bot could not deliver (outbox) or the backend did not accept (webhooks), and queue it again.

Used by the CLI (`flask --app wsgi outbox ...`, `... webhooks ...`) and the admin API (`/admin/...`).
A retry puts a failed row back to pending with its attempts reset and due now; the reason it failed
is kept in `last_error` behind a note, so the story stays readable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, func, literal, select, update

from database import reading, transaction
from models import Order, OutboxMessage, OutboxState, WebhookEvent, WebhookState, iso, utcnow
from services.errors import Invalid

REQUEUED_NOTE = "requeued by an admin at {at}; last error: "
MAX_LIMIT = 500
MAX_IDS = 1000

# The filters a listing understands, and the states each one covers.
OUTBOX_FILTERS: dict[str, tuple[OutboxState, ...] | None] = {
    "all": None,
    "failed": (OutboxState.FAILED,),
    "blocked": (OutboxState.BLOCKED,),
    "pending": (OutboxState.PENDING, OutboxState.SENDING),
    "sent": (OutboxState.SENT,),
}
WEBHOOK_FILTERS: dict[str, tuple[WebhookState, ...] | None] = {
    "all": None,
    "failed": (WebhookState.FAILED,),
    "pending": (WebhookState.PENDING,),
    "sent": (WebhookState.SENT,),
}
# What a retry by id accepts: failed, and blocked outbox messages (the user may have come back).
OUTBOX_RETRYABLE: tuple[str, ...] = (OutboxState.FAILED, OutboxState.BLOCKED)
WEBHOOK_RETRYABLE: tuple[str, ...] = (WebhookState.FAILED,)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    bot: str
    chat_id: int
    horeca_id: str | None
    order_id: str | None
    status: str | None
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None


@dataclass(frozen=True)
class WebhookItem:
    id: int
    event_id: str
    type: str
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None


@dataclass(frozen=True)
class Skipped:
    id: int
    reason: str  # not_found, or the state the row is in (sent, pending, ...)


@dataclass(frozen=True)
class RetryResult:
    retried: list[int]
    skipped: list[Skipped]


def _check(state: str, filters: dict[str, Any], limit: int) -> None:
    if state not in filters:
        raise Invalid(f"state must be one of {', '.join(filters)}", "invalid_state")
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", "invalid_limit")


def list_outbox(state: str = "failed", limit: int = 50) -> list[OutboxItem]:
    """Outbox messages in the given filter (see OUTBOX_FILTERS), newest first."""
    _check(state, OUTBOX_FILTERS, limit)
    stmt = (
        select(OutboxMessage, Order.horeca_id, Order.order_id)
        .outerjoin(Order, Order.id == OutboxMessage.order_pk)
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    states = OUTBOX_FILTERS[state]
    if states is not None:
        stmt = stmt.where(OutboxMessage.state.in_(states))
    with reading() as session:
        return [
            OutboxItem(
                id=m.id,
                kind=m.kind,
                bot=m.bot,
                chat_id=m.chat_id,
                horeca_id=horeca_id,
                order_id=order_id,
                status=m.status,
                state=m.state,
                attempts=m.attempts,
                last_error=m.last_error,
                created_at=m.created_at,
                next_attempt_at=m.next_attempt_at if m.state in (OutboxState.PENDING, OutboxState.SENDING) else None,
                sent_at=m.sent_at,
            )
            for m, horeca_id, order_id in session.execute(stmt)
        ]


def list_webhooks(state: str = "failed", limit: int = 50) -> list[WebhookItem]:
    """Webhook events in the given filter (see WEBHOOK_FILTERS), newest first."""
    _check(state, WEBHOOK_FILTERS, limit)
    stmt = select(WebhookEvent).order_by(WebhookEvent.id.desc()).limit(limit)
    states = WEBHOOK_FILTERS[state]
    if states is not None:
        stmt = stmt.where(WebhookEvent.state.in_(states))
    with reading() as session:
        return [
            WebhookItem(
                id=e.id,
                event_id=e.event_id,
                type=e.type,
                state=e.state,
                attempts=e.attempts,
                last_error=e.last_error,
                created_at=e.created_at,
                next_attempt_at=e.next_attempt_at if e.state == WebhookState.PENDING else None,
                delivered_at=e.delivered_at,
            )
            for e in session.scalars(stmt)
        ]


def _requeue(
    model: Any, retryable: tuple[str, ...], failed: str, pending: str, ids: Iterable[int] | None, all_failed: bool
) -> RetryResult:
    """Move the chosen rows back to pending in one transaction; rows in other states are skipped.

    Set-based (no ORM objects), so `all_failed` over many thousands of rows stays quick. The rows are locked
    first (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE holds the write lock), so the update hits
    exactly the rows that were read.
    """
    wanted = list(dict.fromkeys(ids or ()))
    if len(wanted) > MAX_IDS:
        raise Invalid(f"at most {MAX_IDS} ids at once", "too_many_ids")
    now = utcnow()
    with transaction() as session:
        found: dict[int, str] = {}
        for chunk in _chunks(wanted):
            rows = session.execute(select(model.id, model.state).where(model.id.in_(chunk)).with_for_update())
            found.update((pk, state) for pk, state in rows)
        targets = [pk for pk in wanted if found.get(pk) in retryable]
        if all_failed:
            every_failed = session.scalars(select(model.id).where(model.state == failed).order_by(model.id).with_for_update())
            targets = list(dict.fromkeys([*targets, *every_failed]))
        values: dict[str, Any] = {
            "state": pending,
            "attempts": 0,
            "next_attempt_at": now,
            "claimed_at": None,
            "last_error": literal(REQUEUED_NOTE.format(at=iso(now)), String) + func.coalesce(model.last_error, "none"),
        }
        if model is OutboxMessage:
            values.update(claimed_by=None, first_attempt_at=None)  # the retry deadline starts again
        for chunk in _chunks(targets):
            session.execute(
                update(model)
                .where(model.id.in_(chunk), model.state.in_(retryable))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
    skipped = [Skipped(pk, found.get(pk, "not_found")) for pk in wanted if found.get(pk) not in retryable]
    return RetryResult(sorted(targets), skipped)


def _chunks(ids: list[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def retry_outbox(ids: Iterable[int] | None = None, all_failed: bool = False) -> RetryResult:
    """Queue failed (or blocked) messages again by id, or every failed one."""
    return _requeue(OutboxMessage, OUTBOX_RETRYABLE, OutboxState.FAILED, OutboxState.PENDING, ids, all_failed)


def retry_webhooks(ids: Iterable[int] | None = None, all_failed: bool = False) -> RetryResult:
    """Queue failed webhook events again by id, or every failed one."""
    return _requeue(WebhookEvent, WEBHOOK_RETRYABLE, WebhookState.FAILED, WebhookState.PENDING, ids, all_failed)
