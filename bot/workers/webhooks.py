"""The webhook job: POST the backend's events (queued by `services.events.emit`), signed per Standard Webhooks.

One tick claims due events (`services.webhooks.claim`), POSTs each stored body as is to BACKEND_WEBHOOK_URL
and records the outcome: sent, retried later with exponential backoff and jitter, or failed once the event
has been retried for RETRY.deadline. The `webhook-id` header is the event's id, the same on every retry, so
the backend can drop duplicates (a send whose answer was lost is sent again).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from flask import Flask
from standardwebhooks.webhooks import Webhook

from bot.workers.common import RetryPolicy, scheduled
from config import ConfigError
from models import utcnow
from services import webhooks
from services.webhooks import Claimed

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # the Standard Webhooks specification asks for 24 to 64 random bytes
REQUEST_TIMEOUT = 5.0  # seconds, for connecting and for each read
# 5 s after the first failure, doubling up to an hour, ±20 %; retried for at least 24 hours from the event's creation.
RETRY = RetryPolicy(base=5.0, cap=3600.0, deadline=24 * 3600.0, jitter_low=0.8, jitter_high=1.2, last_at_deadline=False)
# Stop starting sends well before our claims go stale, so no other process takes over an event we still send.
TICK_BUDGET = webhooks.CLAIM_TIMEOUT / 2
BATCH = 100  # events claimed per tick
MAX_ERROR_CHARS = 500


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
    encoded = secret[len(SECRET_PREFIX) :]
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


def secret_values(config: Any) -> list[str]:
    """What the webhook settings hold that no log line may show: the signing secret (with and without whsec_),
    the URL's password and query string, and the `Authorization: Basic` value requests makes of its user info.
    """
    secret = _setting(config, "WEBHOOK_SECRET")
    values = [secret, secret.removeprefix(SECRET_PREFIX)] if secret else []
    try:
        parts = urlsplit(_setting(config, "BACKEND_WEBHOOK_URL"))
        user, password = parts.username, parts.password
    except ValueError:
        return values
    if password:
        values.append(password)
        values.append(base64.b64encode(f"{unquote(user or '')}:{unquote(password)}".encode()).decode())
    if parts.query:
        values.append(parts.query)
    return values


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


_QUERY = re.compile(r"\?[^\s'\")]*")  # a query string as quoted in an exception text (urllib3: "with url: /path?q")


def _scrub(text: str, url: str, secret: str) -> str:
    """Take anything secret out of an error text: the URL's user info, password and query, the signing secret.

    Any query string goes, not only the URL's as configured: requests may quote it re-encoded.
    """
    parts = urlsplit(url)
    text = text.replace(url, mask_url(url))
    if "@" in parts.netloc:
        text = text.replace(parts.netloc.rsplit("@", 1)[0] + "@", "***@")
    if parts.password and len(parts.password) >= 4:
        text = text.replace(parts.password, "***")
    if parts.query:
        text = text.replace(parts.query, "***")
    text = _QUERY.sub("?***", text)
    for value in (secret, secret.removeprefix(SECRET_PREFIX)):
        if value:
            text = text.replace(value, "***")
    return text


@dataclass(frozen=True)
class _Result:
    ok: bool
    final: bool  # no point retrying (410 Gone)
    error: str | None


def _post(http: requests.Session, url: str, secret: str, signer: Webhook, event: Claimed) -> _Result:
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
        error = f"{type(exc).__name__} posting to {mask_url(url)}: {_scrub(str(exc), url, secret)}"
        return _Result(False, False, error[:MAX_ERROR_CHARS])
    if 200 <= response.status_code < 300:
        return _Result(True, False, None)
    return _Result(False, response.status_code == 410, describe_answer(response.status_code, response.headers, response.content))


def describe_answer(status: int, headers: Mapping[str, str], body: bytes) -> str:
    """What a failed answer is recorded as: its status, the length and media type of its body, never the body.

    A receiver's error body (or its reason phrase, or any header) may quote what it was sent: the Authorization
    header with the URL's user and password, the query string. Only the standard phrase of the status is used.
    """
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    head = f"HTTP {status} {phrase}".rstrip()
    if not body:
        return f"{head} (empty body)"
    media_type = headers.get("Content-Type", "").partition(";")[0].strip().lower()
    kind = media_type if _MEDIA_TYPE.fullmatch(media_type) else "unknown type"
    return f"{head} ({len(body)} bytes of {kind}, not kept)"


_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,40}/[a-z0-9][a-z0-9!#$&^_.+-]{0,60}")


def _record(event: Claimed, result: _Result) -> None:
    """Store the outcome (sent, retried after a backoff, or failed for good) and log a failure."""
    attempt = event.attempts + 1
    error = result.error or ""
    if result.ok:
        webhooks.record_sent(event)
        return
    wait = None if result.final else RETRY.delay(event.created_at, utcnow(), RETRY.backoff(attempt))
    if wait is None:
        if webhooks.record_failed(event, error):
            log.error("webhook %s failed for good at attempt %d: %s", event.event_id, attempt, error)
    elif webhooks.record_retry(event, error, wait):
        log.warning("webhook %s attempt %d failed, will retry: %s", event.event_id, attempt, error)


def send_due(config: Mapping[str, Any], limit: int = BATCH, stop: threading.Event | None = None) -> int:
    """Send up to `limit` due events (inside an app context); returns how many were attempted (0 when disabled).

    Once `stop` is set (the bot process is shutting down), or the tick has run for TICK_BUDGET, no further
    event is sent; the rest are given back.
    """
    url = _setting(config, "BACKEND_WEBHOOK_URL")
    if not url:
        return 0
    check_config(config)
    secret = _setting(config, "WEBHOOK_SECRET")
    signer = Webhook(secret)
    claimed = webhooks.claim(limit)
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
                _record(event, result)
    finally:
        webhooks.release(remaining)
    return attempted


def deliver_due(app: Flask, limit: int = BATCH, stop: threading.Event | None = None) -> int:
    """One tick in an app context of its own: send up to `limit` due events; how many were attempted."""
    with app.app_context():
        return send_due(app.config, limit, stop)


def webhook_job(app: Flask, stop: threading.Event) -> Callable[[], int]:
    """The scheduler job: one tick of `send_due`, an error logged and the next tick trying again."""
    return scheduled(app, "webhook delivery", lambda: send_due(app.config, BATCH, stop), stop)
