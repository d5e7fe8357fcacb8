"""The one safety net of both bots' handlers: an app context per update, and no exception ever escapes.

telebot has already advanced the update offset when a handler runs, so an exception that escaped would lose
the update without a word. It is logged, and the user gets a short apology in their language.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Protocol

from flask import Flask
from telebot import TeleBot
from telebot.types import CallbackQuery, Message

from bot.telegram import describe

log = logging.getLogger(__name__)


class Apologies(Protocol):
    """The two words every catalog has for a handler that failed."""

    @property
    def apology(self) -> str: ...

    @property
    def apology_short(self) -> str: ...


Handler = Callable[[Any, TeleBot], None]


def guard(app: Flask, handler: Handler, catalog: Callable[[Any], Apologies]) -> Handler:
    """Run `handler` in its own app context; on any exception log it and apologise (`catalog(user)`), never re-raise."""

    @functools.wraps(handler)
    def run(update: Any, bot: TeleBot) -> None:
        with app.app_context():
            try:
                handler(update, bot)
            except Exception:
                log.exception("handler %s failed (%s)", handler.__name__, _who(update))
                _apologise(update, bot, catalog)

    return run


def _who(update: Any) -> str:
    user = getattr(update, "from_user", None)
    return f"user {getattr(user, 'id', '?')}"


def _apologise(update: Any, bot: TeleBot, catalog: Callable[[Any], Apologies]) -> None:
    try:
        t = catalog(getattr(update, "from_user", None))
        if isinstance(update, CallbackQuery):
            bot.answer_callback_query(update.id, t.apology_short, show_alert=True)
        elif isinstance(update, Message):
            bot.send_message(update.chat.id, t.apology)
    except Exception as exc:  # noqa: BLE001 - e.g. the query was answered already, or Telegram is down
        log.info("could not apologise to %s: %s", _who(update), describe(exc))
