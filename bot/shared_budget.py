"""Telegram's send limits shared by every bot process on one PostgreSQL (`services/send_budget.py` holds them).

`SharedRateLimiter` has the interface of `bot.ratelimit.RateLimiter`, so the delivery worker does not know
which it has. The delivery threads' requests that arrive together go to the database in one statement
(one thread asks for all of them, the group commit of slots), so the round trips grow with the bursts of
sends, not with each send. A 429 one process sees pauses all of them: `pause` writes it, and every
other process learns it with its next answer.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from flask import Flask

from bot.ratelimit import SAFETY, Limiter, RateLimiter
from bot.settings import BotSettings
from services import send_budget

log = logging.getLogger(__name__)

PRUNE_EVERY = 600.0  # seconds between sweeps of the per-chat rows
DATABASE_TROUBLE_WAIT = 1.0  # the database did not answer: the row goes back for this long
OFFSET_KEEP = 10.0  # seconds a clock offset measured over the shortest round trip is kept


@dataclass
class _Request:
    chat_id: int | None
    max_wait: float
    at: float = 0.0  # monotonic: when its slot comes, by this process's clock
    done: threading.Event = field(default_factory=threading.Event)
    grant: send_budget.Grant | None = None


class SharedRateLimiter:
    """Slots of one bot taken from the budget all bot processes share; same calls as `RateLimiter`."""

    def __init__(self, app: Flask, bot: str, global_rate: float, per_chat_rate: float) -> None:
        self.app = app
        self.bot = bot
        self._gap = 1.0 / (global_rate * SAFETY) if global_rate > 0 else 0.0
        self._chat_gap = 1.0 / (per_chat_rate * SAFETY) if per_chat_rate > 0 else 0.0
        self._lock = threading.Lock()
        self._waiting: list[_Request] = []
        self._asking = False  # a thread is at the database for the waiting requests
        self._paused_until = 0.0  # monotonic, from the last answer or our own 429
        self._earliest = threading.local()
        self._next_prune = time.monotonic() + PRUNE_EVERY
        self._offset = 0.0  # the server's clock minus this process's monotonic clock (`_local_time`)
        self._best_trip = float("inf")
        self._offset_at = 0.0

    def reserve(self, chat_id: int | None, max_wait: float) -> float | None:
        """Seconds to wait before sending (0 = now); None (nothing reserved) if the slot is later than `max_wait`."""
        request = _Request(chat_id, max_wait)
        with self._lock:
            self._waiting.append(request)
            lead = not self._asking
            self._asking = True
        while True:
            if lead:
                self._round()
            request.done.wait()
            if request.grant is not None:
                break
            request.done.clear()  # woken without a grant: this thread takes the next round to the database
            lead = True
        grant = request.grant
        self._earliest.value = grant.earliest
        if grant.wait is None:
            return None
        return max(0.0, request.at - time.monotonic())

    def _round(self) -> None:
        """Take the waiting requests (one per chat) to the database; then the next waiting thread leads."""
        with self._lock:
            batch: list[_Request] = []
            later: list[_Request] = []
            chats: set[int] = set()
            for request in self._waiting:
                if request.chat_id is not None and request.chat_id in chats:
                    later.append(request)  # a chat's row is updated once per statement
                else:
                    batch.append(request)
                    if request.chat_id is not None:
                        chats.add(request.chat_id)
            self._waiting = later
        for request, grant in zip(batch, self._grants(batch), strict=True):
            request.grant = grant
            request.done.set()
        with self._lock:
            if self._waiting:
                self._waiting[0].done.set()  # no grant: it leads the next round (this thread goes to send)
            else:
                self._asking = False

    def _grants(self, batch: list[_Request]) -> list[send_budget.Grant]:
        max_wait = min(r.max_wait for r in batch)
        asked_at = time.monotonic()
        try:
            with self.app.app_context():
                grants = send_budget.reserve(self.bot, [r.chat_id for r in batch], self._gap, self._chat_gap, max_wait)
                if time.monotonic() >= self._next_prune:
                    self._next_prune = time.monotonic() + PRUNE_EVERY
                    send_budget.prune()
        except Exception as exc:  # noqa: BLE001 - no slot without the database: the rows go back and wait
            log.warning("the shared send budget of bot %s is unreachable: %s", self.bot, type(exc).__name__)
            return [send_budget.Grant(None, DATABASE_TROUBLE_WAIT, 0.0) for _ in batch]
        answered_at = time.monotonic()
        local = self._local_time(grants[0].now, asked_at, answered_at) if grants else answered_at
        for request, grant in zip(batch, grants, strict=True):
            request.at = local + (grant.wait or 0.0)
        paused = max(g.paused_for for g in grants)
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + paused) if paused else self._paused_until
        return grants

    def _local_time(self, server_now: float, asked_at: float, answered_at: float) -> float:
        """This process's monotonic time at the server's `server_now`, as NTP reckons it: the server read its clock
        halfway through the round trip, give or take half of it; the shortest recent round trip is the best guess.
        Every process thus sends at the server's slot times give or take half its shortest round trip (well under
        a millisecond on one machine), however long a particular answer took (a busy server, a thread of ours
        that was not running)."""
        trip = answered_at - asked_at
        offset = server_now - (asked_at + answered_at) / 2
        with self._lock:
            if trip <= self._best_trip or answered_at - self._offset_at > OFFSET_KEEP:
                self._offset, self._best_trip, self._offset_at = offset, trip, answered_at
            return server_now - self._offset

    def earliest(self, chat_id: int | None) -> float:
        """Seconds until a slot could be free, as the calling thread's last refused `reserve` learned it."""
        return max(getattr(self._earliest, "value", 0.0), self.paused_for())

    def pause(self, seconds: float) -> None:
        """Telegram said 429: no process sends for this bot before `seconds` from now."""
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)
        try:
            with self.app.app_context():
                send_budget.pause(self.bot, seconds)
        except Exception as exc:  # noqa: BLE001 - this process pauses anyway; the others hear of it from Telegram
            log.warning("could not share the 429 pause of bot %s: %s", self.bot, type(exc).__name__)

    def paused_for(self) -> float:
        """Seconds left of a 429 pause this process knows of (0 when none)."""
        with self._lock:
            return max(0.0, self._paused_until - time.monotonic())


def limiters(app: Flask, bots: list[str], settings: BotSettings) -> dict[str, Limiter]:
    """A limiter per bot: the shared budget on PostgreSQL (unless SHARED_SEND_BUDGET=0), this process's own on SQLite."""
    from models import db

    with app.app_context():
        shared = settings.shared_budget and db.engine.dialect.name == "postgresql"
    if shared:
        return {name: SharedRateLimiter(app, name, settings.global_rate, settings.per_chat_rate) for name in bots}
    return {name: RateLimiter(settings.global_rate, settings.per_chat_rate) for name in bots}
