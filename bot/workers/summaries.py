"""The staff delivery summaries: once every message of a staff member's batch is final, queue its summary."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask

from services import outreach as dialogs  # finish_batches lives in services.outreach

log = logging.getLogger(__name__)


def summary_job(app: Flask) -> Callable[[], int]:
    """The scheduler job that queues each finished batch's delivery summary to its sender."""

    def run() -> int:
        with app.app_context():
            try:
                return dialogs.finish_batches()
            except Exception:
                log.exception("queueing delivery summaries failed; the next run tries again")
                return 0

    return run
