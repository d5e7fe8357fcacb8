"""Outbox rows to Telegram messages: one renderer per (bot, kind), in one table (`RENDERERS`) the delivery job reads."""

from __future__ import annotations

import json
from typing import Any

from telebot import TeleBot

from bot import keyboards, texts
from bot.rendered import Rendered
from services.delivery import ButtonRef, Job, MessageRef
from services.orders import CANCELLABLE_STATUSES


def render_status(job: Job) -> Rendered:
    """A status update: a new message; the newest one of a cancellable order carries the Cancel button."""
    t = texts.for_language(job.language)
    button = job.order_open and job.newest and job.status in CANCELLABLE_STATUSES and job.order_pk is not None
    text = t.status_message(job.order_id or "?", job.horeca_id or "?", job.status, job.text, texts.HINT if button else None)
    markup = keyboards.cancel(t, job.order_pk) if button and job.order_pk is not None else None
    return Rendered(text, markup, supersedes=True)


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


def without_keyboard(ref: ButtonRef | MessageRef) -> str | None:
    """The text of a sent status message once its keyboard goes: the footer (the cancel hint) goes with it.

    None for other kinds of message, whose text stays as it is.
    """
    if getattr(ref, "kind", "status") != "status":
        return None
    t = texts.for_language(ref.language)
    return t.status_message(ref.order_id or "?", ref.horeca_id or "?", ref.status, ref.text)


def remove_keyboard(bot: TeleBot, chat_id: int, message_id: int, text: str | None, **kwargs: Any) -> None:
    """Take the inline keyboard off a sent message, and with it the text's cancel hint when `text` is given."""
    if text is None:
        bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None, **kwargs)
    else:  # editMessageText without reply_markup removes the keyboard too
        bot.edit_message_text(text, chat_id, message_id, parse_mode=texts.PARSE_MODE, **kwargs)


