"""The customer bot's outbox renderers: a status card, and a message from a cafe's staff (see bot/renderers.py)."""

from __future__ import annotations

import json

from bot import card as cards
from bot import texts
from bot.rendered import Rendered
from bot.texts import Footer
from services.delivery import Job


def render_status(job: Job) -> Rendered:
    """A status update: a new card; the newest one of a cancellable order carries the Cancel button."""
    if job.card is None:
        raise ValueError(f"status row {job.id} has no order")  # every status row has one; without, the row fails
    footer = cards.resting(job.card)
    text, markup = cards.draw(job.card, footer)
    return Rendered(text, markup, supersedes=True, swept=footer != Footer.RATE)


def render_customer_message(job: Job) -> Rendered:
    """A message the cafe's staff wrote to the customer (payload: horeca name and language)."""
    try:
        payload = json.loads(job.payload or "{}")
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    t = texts.for_language(job.language or payload.get("lang"))
    horeca = payload.get("horeca") or payload.get("horeca_id")
    return Rendered(t.staff_message(str(horeca) if horeca else None, job.text or ""))
