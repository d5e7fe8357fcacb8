"""Deliver the backend's webhook events (the outbox `services.events.emit` fills), signed per Standard Webhooks.

One scheduler tick (`deliver_due`) claims due events, POSTs each stored body as is to BACKEND_WEBHOOK_URL
and records the outcome: sent, retried later with exponential backoff and jitter, or failed once the event
has been retried for RETRY_WINDOW. The `webhook-id` header is the event's id, the same on every retry, so
the backend can drop duplicates (a send whose answer was lost is sent again).
"""

from __future__ import annotations

import base64
import binascii
import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask
from sqlalchemy import or_, select, update
from standardwebhooks.webhooks import Webhook

from config import ConfigError
from models import WebhookEvent, db, utcnow

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # the Standard Webhooks specification asks for 24 to 64 random bytes
REQUEST_TIMEOUT = 5.0  # seconds, for connecting and for each read
BACKOFF_BASE = 5.0  # seconds before the first retry, doubling after every failure
BACKOFF_CAP = 3600.0  # never wait more than an hour between attempts
RETRY_WINDOW = timedelta(hours=24)  # keep retrying for at least this long after the event was created
CLAIM_TIMEOUT = timedelta(seconds=60)  # a claim older than this belongs to a process that died: take it over
# Stop starting sends well before our claims go stale, so no other process takes over an event we still send.
TICK_BUDGET = 30.0
MAX_ERROR_CHARS = 500

STATE_PENDING = "pending"
STATE_SENT = "sent"
STATE_FAILED = "failed"


def _setting(config: Any, name: str) -> str:
    """A setting from a `config.Config` or a mapping such as Flask's `app.config`."""
    value = config.get(name) if isinstance(config, Mapping) else getattr(config, name, None)
    return (value or "").strip() if isinstance(value, str) else ""


def decode_secret(secret: str) -> bytes:
    """The key bytes of a `whsec_<base64>` secret; ConfigError (never quoting the secret) when malformed."""
    if not secret:
        raise ConfigError(
            "BACKEND_WEBHOOK_URL is set but WEBHOOK_SECRET is not: set WEBHOOK_SECRET to whsec_<base64 of 32 random bytes>"
            " (see docs/webhooks.md)"
        )
    if not secret.startswith(SECRET_PREFIX):
        raise ConfigError("WEBHOOK_SECRET must have the form whsec_<base64> (it does not start with whsec_)")
    encoded = secret[len(SECRET_PREFIX):]
    if not encoded:
        raise ConfigError("WEBHOOK_SECRET must have the form whsec_<base64>: there is nothing after whsec_")
    try:
        # Strict decoding: the library silently drops invalid characters, which would sign with another key.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("WEBHOOK_SECRET must have the form whsec_<base64>: the part after whsec_ is not valid base64") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"WEBHOOK_SECRET is too short: it decodes to {len(key)} bytes, use at least {MIN_SECRET_BYTES} (32 recommended)"
        )
    return key


def check_config(config: Any) -> None:
    """Refuse to start when BACKEND_WEBHOOK_URL is set without a usable WEBHOOK_SECRET (one line, no secret in it)."""
    url = _setting(config, "BACKEND_WEBHOOK_URL")
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"BACKEND_WEBHOOK_URL must be an http(s) URL with a host, got {mask_url(url)!r}")
    decode_secret(_setting(config, "WEBHOOK_SECRET"))


def mask_url(url: str) -> str:
    """The URL as it may appear in logs and in last_error: user info and query string replaced by ***."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    netloc = ("***@" if "@" in parts.netloc else "") + (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    query = "?***" if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


def _scrub(text: str, url: str, secret: str) -> str:
    """Take anything secret out of an error text: the URL's user info, password and query, the signing secret."""
    parts = urlsplit(url)
    text = text.replace(url, mask_url(url))
    if "@" in parts.netloc:
        text = text.replace(parts.netloc.rsplit("@", 1)[0] + "@", "***@")
    if parts.password and len(parts.password) >= 4:
        text = text.replace(parts.password, "***")
    if parts.query:
        text = text.replace(parts.query, "***")
    for value in (secret, secret.removeprefix(SECRET_PREFIX)):
        if value:
            text = text.replace(value, "***")
    return text[:MAX_ERROR_CHARS]


def backoff(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: 5 s doubling, capped at an hour, ±20 % jitter."""
    delay = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    return delay * random.uniform(0.8, 1.2)


@dataclass(frozen=True)
class _Claimed:
    """What a tick needs of a claimed event, read before the claim is committed."""

    pk: int
    event_id: str
    body: str
    attempts: int
    created_at: datetime
    claimed_at: datetime


@dataclass(frozen=True)
class _Result:
    ok: bool
    final: bool  # no point retrying (410 Gone)
    error: str | None


def _claim(limit: int) -> list[_Claimed]:
    """Claim up to `limit` due events and commit, so no other tick sends them (SKIP LOCKED on PostgreSQL)."""
    now = utcnow()
    try:
        rows = db.session.scalars(
            select(WebhookEvent)
            .where(
                WebhookEvent.state == STATE_PENDING,
                WebhookEvent.next_attempt_at <= now,
                or_(WebhookEvent.claimed_at.is_(None), WebhookEvent.claimed_at < now - CLAIM_TIMEOUT),
            )
            .order_by(WebhookEvent.next_attempt_at, WebhookEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # SQLite has no row locks; BEGIN IMMEDIATE serializes ticks there
        ).all()
        claimed = []
        for row in rows:
            row.claimed_at = now
            claimed.append(_Claimed(row.id, row.event_id, row.body, row.attempts, row.created_at, now))
        db.session.commit()
        return claimed
    except Exception:
        db.session.rollback()
        raise


def _post(http: requests.Session, url: str, secret: str, signer: Webhook, event: _Claimed) -> _Result:
    """POST one event, signed for this attempt's timestamp."""
    sent_at = datetime.now(UTC)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": event.event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signer.sign(event.event_id, sent_at, event.body),
    }
    try:
        response = http.post(url, data=event.body.encode(), headers=headers, timeout=REQUEST_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        return _Result(False, False, _scrub(f"{type(exc).__name__} posting to {mask_url(url)}: {exc}", url, secret))
    if 200 <= response.status_code < 300:
        return _Result(True, False, None)
    snippet = " ".join(response.text[:200].split())
    error = f"HTTP {response.status_code} {response.reason or ''}".rstrip() + (f": {snippet}" if snippet else "")
    return _Result(False, response.status_code == 410, _scrub(error, url, secret))


def _record(event: _Claimed, result: _Result) -> str | None:
    """Store the outcome, only if our claim still stands (a taken-over claim is the other process's to record)."""
    now = utcnow()
    values: dict[str, Any] = {"attempts": event.attempts + 1, "claimed_at": None, "last_error": result.error}
    if result.ok:
        state = STATE_SENT
        values.update(state=state, delivered_at=now)
    elif result.final or now - event.created_at >= RETRY_WINDOW:
        state = STATE_FAILED
        values.update(state=state)
    else:
        state = STATE_PENDING
        values.update(next_attempt_at=now + timedelta(seconds=backoff(event.attempts + 1)))
    try:
        done = db.session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == event.pk, WebhookEvent.claimed_at == event.claimed_at)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    if done.rowcount != 1:
        log.warning("webhook %s: claim was taken over meanwhile, outcome not recorded", event.event_id)
        return None
    return state


def _release(events: list[_Claimed]) -> None:
    """Give back claims this tick did not send; the next tick takes them without waiting for the claim to go stale."""
    if not events:
        return
    try:
        for event in events:
            db.session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id == event.pk, WebhookEvent.claimed_at == event.claimed_at)
                .values(claimed_at=None)
                .execution_options(synchronize_session=False)
            )
        db.session.commit()
    except Exception:  # best effort: a claim left behind is taken over after CLAIM_TIMEOUT anyway
        db.session.rollback()
        log.exception("could not release %d webhook claims", len(events))


def _log_outcome(event: _Claimed, result: _Result, state: str | None) -> None:
    attempt = event.attempts + 1
    if state == STATE_FAILED:
        log.error("webhook %s failed for good at attempt %d: %s", event.event_id, attempt, result.error)
    elif state == STATE_PENDING:
        log.warning("webhook %s attempt %d failed, will retry: %s", event.event_id, attempt, result.error)


def deliver_due(app: Flask, limit: int = 100, stop: threading.Event | None = None) -> int:
    """One scheduler tick: send up to `limit` due events; returns how many were attempted (0 when disabled).

    Once `stop` is set (the bot process is shutting down) no further event is sent; the rest are given back.
    """
    with app.app_context():
        url = _setting(app.config, "BACKEND_WEBHOOK_URL")
        if not url:
            return 0
        check_config(app.config)
        secret = _setting(app.config, "WEBHOOK_SECRET")
        signer = Webhook(secret)
        claimed = _claim(limit)
        if not claimed:
            return 0
        started = time.monotonic()
        attempted = 0
        remaining = list(claimed)
        try:
            with requests.Session() as http:
                while remaining and time.monotonic() - started <= TICK_BUDGET and not (stop and stop.is_set()):
                    event = remaining.pop(0)
                    result = _post(http, url, secret, signer, event)
                    attempted += 1
                    _log_outcome(event, result, _record(event, result))
        finally:
            _release(remaining)
        return attempted
