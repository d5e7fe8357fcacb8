"""The staff delivery summaries: once every message of a staff member's batch is final, queue its summary."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from bot.workers.common import scheduled
from services import outreach


def summary_job(app: Flask) -> Callable[[], int]:
    """The scheduler job that queues each finished batch's delivery summary to its sender."""
    return scheduled(app, "queueing delivery summaries", lambda: outreach.finish_batches())
