"""The customer bot's outbox renderers: a status card, and a message from a cafe's staff (see bot/renderers.py)."""

from __future__ import annotations

import json
from typing import Any

from bot import card as cards
from bot import texts
from bot.rendered import AlbumBody, Body, EditBody, MediaBody, Rendered, carries_text
from bot.texts import Footer
from services import media
from services.delivery import Job


def render_status(job: Job) -> Rendered:
    """A status update: a new card; the newest one of a cancellable order carries the Cancel button."""
    if job.card is None:
        raise ValueError(f"status row {job.id} has no order")  # every status row has one; without, the row fails
    footer = cards.resting(job.card)
    text, markup = cards.draw(job.card, footer)
    return Rendered(text, markup, supersedes=True, swept=footer != Footer.RATE)


def _payload(job: Job) -> dict[str, Any]:
    try:
        payload = json.loads(job.payload or "{}")
    except ValueError:
        payload = {}
    return payload if isinstance(payload, dict) else {}


def render_customer_message(job: Job) -> Rendered:
    """A message the cafe's staff wrote to the customer (payload: horeca name and language; media if any)."""
    payload = _payload(job)
    t = texts.for_language(job.language or payload.get("lang"))
    horeca = payload.get("horeca") or payload.get("horeca_id")
    return Rendered(t.staff_message(str(horeca) if horeca else None, job.text or ""), body=media_body(payload.get("media")))


def render_order_note(job: Job) -> Rendered:
    """The backend's text about an order, without a status: no button, and older cards keep theirs."""
    if job.card is None:
        raise ValueError(f"order note {job.id} has no order")  # every note row has one; without, the row fails
    return Rendered(cards.draw_note(job.card))


def media_body(value: Any) -> Body | None:
    """The media of a row's payload as a `Rendered` body (None: a text message)."""
    attachment = media.parse(value) if isinstance(value, dict) else None
    if attachment is None:
        return None
    return AlbumBody(attachment.items) if attachment.album else MediaBody(attachment.items[0])


def edit_body(payload: dict[str, Any], text: str, fallback: str) -> EditBody:
    """The edit of the copy `payload["of"]`: a caption where the copy carried its text as one."""
    body = media_body(payload.get("media"))
    caption = isinstance(body, MediaBody) and carries_text(body.ref, text)
    return EditBody(int(payload.get("of") or 0), caption, fallback)


def render_customer_edit(job: Job) -> Rendered:
    """A staff member edited a message the customer got: the same drawing with the new text."""
    payload = _payload(job)
    t = texts.for_language(job.language or payload.get("lang"))
    horeca = payload.get("horeca") or payload.get("horeca_id")
    text = t.staff_message(str(horeca) if horeca else None, job.text or "")
    return Rendered(text, body=edit_body(payload, text, f"{t.edited}\n{text}"))
