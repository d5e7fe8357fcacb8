"""The retention job: five minutes after start, then hourly, delete finished history older than RETENTION_DAYS
(services/retention.py)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flask import Flask

from bot.workers.common import scheduled
from services import retention

log = logging.getLogger(__name__)

EVERY = 3600.0  # seconds between runs
FIRST = 300.0  # seconds from the process's start to the first run


def retention_job(app: Flask, stop: threading.Event) -> Callable[[], int]:
    """The scheduler job: purge in small batches, stopping between two batches when the process stops."""
    days = float(app.config["RETENTION_DAYS"])
    batch_size = int(app.config["RETENTION_BATCH_SIZE"])

    def run() -> int:
        result = retention.purge(days, batch_size, stop=stop.is_set)
        if result.total:
            counts = ", ".join(f"{table} {n}" for table, n in result.counts.items() if n)
            log.info(
                "retention: deleted %d rows older than %g days in %d batches (%s)", result.total, days, result.batches, counts
            )
        return result.total

    return scheduled(app, "history retention", run, stop)
