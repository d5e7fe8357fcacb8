"""Telegram's send limits, kept on our side: a global and a per-chat pace per bot, and a pause after a 429.

Each send reserves the next free slot (GCRA with no burst): slots are spaced evenly, so a sliding
one-second window on Telegram's side never sees more than the rate, whatever the number of workers.
We run a little under the configured rate (SAFETY) so that network jitter cannot push two sends into
the same window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

SAFETY = 0.95
PRUNE_EVERY = 1000  # reservations between sweeps of the per-chat table


class RateLimiter:
    """Slots for sends of one bot: at most `global_rate` per second overall and `per_chat_rate` per chat."""

    def __init__(self, global_rate: float, per_chat_rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._global_gap = 1.0 / (global_rate * SAFETY) if global_rate > 0 else 0.0
        self._chat_gap = 1.0 / (per_chat_rate * SAFETY) if per_chat_rate > 0 else 0.0
        self._clock = clock
        self._lock = threading.Lock()
        self._global_next = 0.0
        self._chat_next: dict[int, float] = {}
        self._paused_until = 0.0
        self._reservations = 0

    def reserve(self, chat_id: int | None, max_wait: float) -> float | None:
        """Reserve a slot: seconds to wait before sending (0 = now); None (nothing reserved) if that exceeds `max_wait`.

        `chat_id` None (an edit) takes a global slot only.
        """
        with self._lock:
            now = self._clock()
            chat_next = self._chat_next.get(chat_id, 0.0) if chat_id is not None else 0.0
            slot = max(now, self._global_next, self._paused_until, chat_next)
            wait = slot - now
            if wait > max_wait:
                return None
            if self._global_gap:
                self._global_next = slot + self._global_gap
            if self._chat_gap and chat_id is not None:
                self._chat_next[chat_id] = slot + self._chat_gap
                self._reservations += 1
                if self._reservations % PRUNE_EVERY == 0:
                    self._chat_next = {c: t for c, t in self._chat_next.items() if t > now}
            return wait

    def earliest(self, chat_id: int | None) -> float:
        """Seconds until a send to `chat_id` could go (without reserving)."""
        with self._lock:
            now = self._clock()
            chat_next = self._chat_next.get(chat_id, 0.0) if chat_id is not None else 0.0
            return max(0.0, self._global_next - now, self._paused_until - now, chat_next - now)

    def pause(self, seconds: float) -> None:
        """Telegram said 429: no send of this bot before `seconds` from now."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def paused_for(self) -> float:
        """Seconds left of a 429 pause (0 when none)."""
        with self._lock:
            return max(0.0, self._paused_until - self._clock())


class Limiter(Protocol):
    """What the delivery worker needs of a limiter: this process's `RateLimiter`, or the budget every process
    shares on PostgreSQL (`bot.shared_budget.SharedRateLimiter`)."""

    def reserve(self, chat_id: int | None, max_wait: float) -> float | None: ...

    def earliest(self, chat_id: int | None) -> float: ...

    def pause(self, seconds: float) -> None: ...

    def paused_for(self) -> float: ...
