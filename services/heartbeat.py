"""The bot process's heartbeat: what it last did, read by the web app's health checks."""

from __future__ import annotations

import os
import socket

from database import transaction
from models import BotHeartbeat, utcnow


def beat(
    name: str,
    username: str | None = None,
    *,
    started: bool = False,
    get_updates_ok: bool = False,
    delivery_tick: bool = False,
    polls: bool = False,
) -> None:
    """Record that bot `name` ('customer', 'horeca') is alive, and what it just did. Own transaction.

    `polls` (or `get_updates_ok`): this process is the one polling the bot (issue 10: one poller per token).
    """
    now = utcnow()
    with transaction() as session:
        row = session.get(BotHeartbeat, name, with_for_update=True)
        if row is None:
            row = BotHeartbeat(name=name)
            session.add(row)
        row.last_seen = now
        row.pid = os.getpid()
        row.hostname = socket.gethostname()
        if username:
            row.username = username
        if started:
            row.started_at = now
        if get_updates_ok:
            row.last_get_updates_ok = now
        if get_updates_ok or polls:
            row.poller = f"{row.hostname}:{row.pid}"
        if delivery_tick:
            row.last_delivery_tick = now
