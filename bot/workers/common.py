"""What the bot process's workers share: the retry rule (backoff with jitter, a deadline) and the job wrapper.

The claim rule itself (due, or claimed longer ago than the claim timeout) is the database's: `services.claims`.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import Flask

log = logging.getLogger(__name__)

MAX_DOUBLINGS = 64  # 2**64 times any base is past every cap; keeps the arithmetic in floats


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a failed send again: exponential backoff with jitter, until a deadline.

    The n-th failure waits base·2^(n-1), capped, times a random factor in [jitter_low, jitter_high]. Retries go
    on until `deadline` seconds after `since` (the first attempt, or the row's creation); with `last_at_deadline`
    the last wait is shortened so that the last attempt happens at the deadline, without it the first failure
    after the deadline is final.
    """

    base: float
    cap: float
    deadline: float
    jitter_low: float
    jitter_high: float
    last_at_deadline: bool = True

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        ceiling = min(self.cap, self.base * 2.0 ** min(max(attempts - 1, 0), MAX_DOUBLINGS))
        return ceiling * random.uniform(self.jitter_low, self.jitter_high)

    def delay(self, since: datetime, now: datetime, wait: float) -> float | None:
        """Seconds until the next attempt (given the `wait` wanted), or None: the deadline has passed, give up."""
        left = self.deadline - (now - since).total_seconds()
        if left <= 0:
            return None
        return min(wait, left) if self.last_at_deadline else wait


def scheduled(app: Flask, what: str, run: Callable[[], int], stop: threading.Event | None = None) -> Callable[[], int]:
    """A scheduler job: `run` in an app context of its own per tick; an exception is logged and the next tick
    tries again; once `stop` is set, ticks do nothing. Returns what `run` returned (0 after an error)."""

    def tick() -> int:
        if stop is not None and stop.is_set():
            return 0
        try:
            with app.app_context():
                return run()
        except Exception:
            log.exception("%s failed; the next run tries again", what)
            return 0

    tick.__name__ = tick.__qualname__ = what.replace(" ", "_")
    return tick
