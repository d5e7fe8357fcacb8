"""The customer bot's side of ratings (issue 11): the 1-5 stars under a completed order's card, and the comment after.

`on_rate` answers a star; `take_comment` is asked first by the text handler: within 10 minutes of a tap the
customer's text is the rating's comment (and is not relayed to the cafe's staff). The rules live in
`services/ratings.py`; this module only translates. The stars are not a keyboard the delivery sweep looks
after (`has_button` stays false): a tap redraws them here.
"""

from __future__ import annotations

import logging

from telebot import TeleBot
from telebot.apihelper import ApiTelegramException
from telebot.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import card as cards
from bot import keyboards, texts
from bot.texts import PARSE_MODE, Footer
from services import ratings, status_card
from services.order_status import Status
from services.ratings import CommentResult, RateResult

log = logging.getLogger(__name__)

BOT_NAME = "customer"


def is_rating(call: CallbackQuery) -> bool:
    """Whether a button press is a star (so the Cancel button's handler never sees it)."""
    return bool(call.data and call.data.startswith(keyboards.RATE + ":"))


def on_rate(call: CallbackQuery, bot: TeleBot) -> None:
    """A star: record it (or change it), redraw the card with it, thank and offer a comment. Forged or late: an alert."""
    t = texts.for_user(call.from_user)
    parsed = keyboards.parse_rating(call.data)
    message = call.message
    if parsed is None or not isinstance(message, Message) or not message.date:
        bot.answer_callback_query(call.id, t.alert_invalid, show_alert=True)
        return
    order_pk, value = parsed
    card = status_card.pressed(BOT_NAME, message.chat.id, message.message_id, order_pk, call.from_user.id)
    if card is None or card.status != Status.COMPLETED:  # not the owner's card of that order, or not its completed one
        log.info("user %s pressed a rating that is not theirs (%r)", call.from_user.id, call.data)
        bot.answer_callback_query(call.id, t.alert_invalid, show_alert=True)
        return
    t = texts.for_language(card.language or call.from_user.language_code)
    rated = ratings.rate(call.from_user.id, order_pk, value)
    if rated.outcome in (RateResult.NOT_COMPLETED, RateResult.TOO_LATE):
        bot.answer_callback_query(call.id, t.alert_rating_closed, show_alert=True)
        if not card.has_button:  # the stars go (a Cancel keyboard, which the sweep owns, is never touched here)
            _edit(bot, card, *cards.draw(card, Footer.NONE, t))
        return
    if rated.outcome == RateResult.NOT_FOUND:
        bot.answer_callback_query(call.id, t.alert_invalid, show_alert=True)
        return
    bot.answer_callback_query(call.id, t.toast_rated)
    _edit(bot, card, *cards.draw(card, Footer.RATE, t, rating=rated.value))
    if rated.outcome == RateResult.RATED or rated.outcome == RateResult.CHANGED:
        log.info("user %s rated order %s: %s", call.from_user.id, card.order_id, rated.value)
    bot.send_message(message.chat.id, t.rating_thanks, parse_mode=PARSE_MODE)


def take_comment(message: Message, bot: TeleBot, text: str) -> bool:
    """The text as the comment of a rating given in the last 10 minutes; False when there is none (it goes on as usual)."""
    user = message.from_user
    if user is None:
        return False
    commented = ratings.comment(user.id, text)
    if commented is None:
        return False
    t = texts.for_user(user)
    reply = t.rating_comment_saved if commented.outcome == CommentResult.SAVED else t.rating_comment_too_long
    bot.send_message(message.chat.id, reply, parse_mode=PARSE_MODE)
    return True


def _edit(bot: TeleBot, card: status_card.StatusCard, text: str, markup: InlineKeyboardMarkup | None) -> None:
    try:
        bot.edit_message_text(text, card.chat_id, card.message_id, parse_mode=PARSE_MODE, reply_markup=markup)
    except ApiTelegramException as exc:
        if "message is not modified" not in str(exc.description):
            raise
