"""The backend's webhook events seen from the bot process: claim due ones, record each outcome, give back the rest.

`services.events.emit` queues an event in the transaction of the change it reports; `bot.workers.webhooks`
sends them. An event is `pending` (with `claimed_at` set while a process sends it) until it is `sent` or
`failed`. A claim older than the claim timeout belongs to a process that died and is taken over; an outcome
is recorded only while our claim still stands.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update

from database import transaction
from models import WebhookEvent, WebhookState, utcnow
from services.claims import MAX_CLAIM_TIMEOUT, claimable, stale_before

log = logging.getLogger(__name__)

CLAIM_TIMEOUT = MAX_CLAIM_TIMEOUT  # seconds: a claim older than this belongs to a process that died


@dataclass(frozen=True)
class Claimed:
    """What sending a claimed event needs, read before the claim is committed."""

    pk: int
    event_id: str
    body: str
    attempts: int  # attempts before this one
    created_at: datetime
    claimed_at: datetime


def claim(limit: int, claim_timeout: float = CLAIM_TIMEOUT) -> list[Claimed]:
    """Claim up to `limit` due events and commit, so no other tick sends them (SKIP LOCKED on PostgreSQL)."""
    now = utcnow()
    w = WebhookEvent
    with transaction() as session:
        rows = session.scalars(
            select(w)
            .where(
                w.state == WebhookState.PENDING,
                w.next_attempt_at <= now,  # only due events are claimed, so a claim is always of a due event
                claimable(unclaimed=w.claimed_at.is_(None), claimed_at=w.claimed_at, stale=stale_before(now, claim_timeout)),
            )
            .order_by(w.next_attempt_at, w.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # SQLite has no row locks; BEGIN IMMEDIATE serializes ticks there
        ).all()
        claimed = []
        for row in rows:
            row.claimed_at = now
            claimed.append(Claimed(row.id, row.event_id, row.body, row.attempts, row.created_at, now))
    return claimed


def record_sent(event: Claimed) -> bool:
    """The backend accepted the event. False if our claim was taken over meanwhile (nothing recorded)."""
    return _record(event, state=WebhookState.SENT, delivered_at=utcnow(), last_error=None)


def record_retry(event: Claimed, error: str, delay: float) -> bool:
    """The attempt failed: try again after `delay` seconds. False if our claim was taken over meanwhile."""
    return _record(event, next_attempt_at=utcnow() + timedelta(seconds=max(delay, 0.0)), last_error=error)


def record_failed(event: Claimed, error: str) -> bool:
    """The event can never be delivered. False if our claim was taken over meanwhile."""
    return _record(event, state=WebhookState.FAILED, last_error=error)


def _record(event: Claimed, **values: Any) -> bool:
    """Count the attempt and store its outcome, only if our claim still stands (else it is the other process's)."""
    with transaction() as session:
        done = cast(
            CursorResult[Any],
            session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id == event.pk, WebhookEvent.claimed_at == event.claimed_at)
                .values(attempts=event.attempts + 1, claimed_at=None, **values)
                .execution_options(synchronize_session=False)
            ),
        )
    if done.rowcount != 1:
        log.warning("webhook %s: claim was taken over meanwhile, outcome not recorded", event.event_id)
        return False
    return True


def release(events: list[Claimed]) -> None:
    """Give back claims that were not sent; the next tick takes them without waiting for the claim to go stale.

    Best effort: a claim left behind is taken over after the claim timeout anyway.
    """
    if not events:
        return
    try:
        with transaction() as session:
            for event in events:
                session.execute(
                    update(WebhookEvent)
                    .where(WebhookEvent.id == event.pk, WebhookEvent.claimed_at == event.claimed_at)
                    .values(claimed_at=None)
                    .execution_options(synchronize_session=False)
                )
    except Exception:
        log.exception("could not release %d webhook claims", len(events))
