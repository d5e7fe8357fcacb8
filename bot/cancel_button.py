"""Putting the Cancel keyboard on a status card and taking it off: the only module that edits keyboards and records them.

Every edit here is followed by recording whether the message now carries a keyboard (`has_button`), which
the delivery job's sweep reads to find keyboards that outlived their order. Telegram's "message is not
modified" means the message already looks as wanted, and counts as done.
"""

from __future__ import annotations

import logging
from typing import Any

from telebot import TeleBot
from telebot.apihelper import ApiTelegramException
from telebot.types import InlineKeyboardMarkup

from bot import card as cards
from bot.telegram import NOT_MODIFIED, Failure, classify
from bot.texts import PARSE_MODE, Footer, Texts
from services import delivery, status_card
from services.status_card import StatusCard

log = logging.getLogger(__name__)


def show(bot: TeleBot, card: StatusCard, footer: Footer, t: Texts | None = None) -> None:
    """Redraw a sent card with `footer` and the keyboard that goes with it, and record whether a keyboard is on."""
    text, markup = cards.draw(card, footer, t)
    _edit_text(bot, card, text, markup)
    delivery.set_has_button(card.row_id, markup is not None)


def drop(bot: TeleBot, card: StatusCard, shown: bool) -> None:
    """Take the keyboard off a pressed card, text as it is (`shown`: Telegram still shows one), and record it."""
    if shown:
        try:
            bot.edit_message_reply_markup(card.chat_id, card.message_id, reply_markup=None)
        except ApiTelegramException as exc:
            if not _not_modified(exc):
                raise
    delivery.set_has_button(card.row_id, False)


def strip(bot: TeleBot, card: StatusCard, timeout: float | None = None) -> Failure | None:
    """Redraw a sent card without its keyboard and cancel hint, and record that it has none.

    Returns None when done. Any other outcome is returned, sorted, with nothing recorded: the caller decides
    (the delivery job retries within its rate limit or calls `forget`; a handler leaves it to the sweep).
    """
    text, _ = cards.draw(card, Footer.NONE)
    options: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    try:  # editMessageText without reply_markup removes the keyboard too
        bot.edit_message_text(text, card.chat_id, card.message_id, parse_mode=PARSE_MODE, **options)
    except Exception as exc:  # noqa: BLE001 - sorted for the caller
        failure = classify(exc)
        if failure.kind != NOT_MODIFIED:
            return failure
    delivery.set_has_button(card.row_id, False)
    return None


def forget(card: StatusCard) -> None:
    """Record that a card has no keyboard although it could not be edited (the message is gone, the chat blocked)."""
    delivery.set_has_button(card.row_id, False)


def strip_order(bot: TeleBot, order_pk: int) -> None:
    """Take the keyboard off every card of an order that must lose it (after a cancel request); the sweep retries failures."""
    for stale in status_card.stale_of_order(order_pk):
        failure = strip(bot, stale)
        if failure is not None:
            log.info("could not remove the keyboard of row %s: %s", stale.row_id, failure.reason)


def recheck(bot: TeleBot, card: StatusCard) -> None:
    """A keyboard was just put back: if the order closed or a newer card went out meanwhile, take it off again."""
    if card.message_id is None:
        return
    now = status_card.of_message(card.bot, card.chat_id, card.message_id, card.order_pk)
    if now is not None and not now.button:
        failure = strip(bot, now)
        if failure is not None:
            log.info("could not remove the keyboard of row %s: %s", now.row_id, failure.reason)


def _edit_text(bot: TeleBot, card: StatusCard, text: str, markup: InlineKeyboardMarkup | None) -> None:
    try:
        bot.edit_message_text(text, card.chat_id, card.message_id, parse_mode=PARSE_MODE, reply_markup=markup)
    except ApiTelegramException as exc:
        if not _not_modified(exc):
            raise


def _not_modified(exc: ApiTelegramException) -> bool:
    return "message is not modified" in str(exc.description)
