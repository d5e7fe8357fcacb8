"""Events for the backend's webhook, added to the caller's transaction (the outbox pattern).

Whether events are recorded at all is a setting (a backend webhook is configured, BACKEND_WEBHOOK_URL). Events
are emitted deep inside services (a claim, a block, a cancel), called from the API, the bots and the workers,
so the setting is not threaded through each call: the edge that builds the app says once where it comes from
(`webapp.create_app` calls `use_setting`), and `emit` asks it. Without one, no events are recorded.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from models import WebhookEvent, db, iso, utcnow


def _never() -> bool:
    return False


_webhook_configured: Callable[[], bool] = _never


def use_setting(webhook_configured: Callable[[], bool]) -> None:
    """Where `emit` learns whether a backend webhook is configured (asked at each emit, in the caller's app)."""
    global _webhook_configured
    _webhook_configured = webhook_configured


def emit(event_type: str, data: dict[str, Any]) -> WebhookEvent | None:
    """Queue one event in the current session; nothing when no backend webhook is configured."""
    if not _webhook_configured():
        return None
    now = utcnow()
    body = json.dumps({"type": event_type, "timestamp": iso(now), "data": data}, separators=(",", ":"))
    event = WebhookEvent(event_id=f"msg_{uuid.uuid4().hex}", type=event_type, body=body, created_at=now, next_attempt_at=now)
    db.session.add(event)
    return event
