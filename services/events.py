"""Events for the backend's webhook, added to the caller's transaction (the outbox pattern)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import current_app

from models import WebhookEvent, db, iso, utcnow


def emit(event_type: str, data: dict[str, Any]) -> WebhookEvent | None:
    """Queue one event in the current session; nothing when no webhook URL is configured."""
    if not current_app.config.get("BACKEND_WEBHOOK_URL"):
        return None
    now = utcnow()
    body = json.dumps({"type": event_type, "timestamp": iso(now), "data": data}, separators=(",", ":"))
    event = WebhookEvent(event_id=f"msg_{uuid.uuid4().hex}", type=event_type, body=body, created_at=now, next_attempt_at=now)
    db.session.add(event)
    return event
