"""The customer bot's side of the staff dialogs: a customer's text or media goes to the staff of their horeca.

`relay_text` is called by the customer bot's text handler, `media_handler` handles photos, files, voice notes,
locations, ... and albums (collected by `bot.media_in.AlbumCollector`), `on_edit` passes a customer's edit on;
`on_choice` answers the "which cafe?" buttons.
"""

from __future__ import annotations

import logging
import re
from html import escape

from flask import Flask, current_app
from telebot import TeleBot
from telebot.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot import media_in, texts
from bot.guard import Handler
from bot.texts import PARSE_MODE
from services import customer_chat, customers, edits, relay
from services.cabinet import CabinetSettings
from services.edits import EditOutcome
from services.media import Attachment
from services.relay import Relayed, RelayOutcome

BOT_NAME = "customer"  # the bot that receives the customer's files (services.media.MediaRef.source_bot)

log = logging.getLogger(__name__)

CHOOSE = "dh"  # dh:<dialog_message_id>:<horeca key>   "this message is for that cafe"
_CHOICE = re.compile(r"dh:([1-9][0-9]{0,18}):([0-9a-f]{12})")


def is_choice(call: CallbackQuery) -> bool:
    """Whether a button press is one of ours (so the customer bot's own button handler never sees it)."""
    return bool(call.data and call.data.startswith(CHOOSE + ":"))


def _settings() -> CabinetSettings:
    return CabinetSettings.from_config(current_app.config)


def relay_text(message: Message, bot: TeleBot, text: str) -> bool:
    """Send the customer's text to their horeca's staff (or ask which horeca); False when it is not for a cafe."""
    if text.startswith("/"):
        return False  # commands keep their meaning (and linking codes do: the service leaves them alone)
    user = message.from_user
    if user is None:  # a channel post: nobody to relay for
        return False
    profile = customers.Profile(user.first_name, user.last_name, user.username, user.language_code)
    relayed = relay.relay_from_customer(
        user.id, text, chat_id=message.chat.id, profile=profile, settings=_settings(), source_message_id=message.message_id
    )
    return _answer(message, bot, relayed)


def _answer(message: Message, bot: TeleBot, relayed: Relayed, media: bool = False) -> bool:
    """Tell the customer what became of their message; False when it was for no cafe (the caller answers)."""
    t = texts.for_user(message.from_user)
    if relayed.outcome == RelayOutcome.TOO_BIG:
        bot.send_message(message.chat.id, t.media_too_big, parse_mode=PARSE_MODE)
        return True
    if relayed.outcome == RelayOutcome.INVALID:
        bot.send_message(message.chat.id, t.caption_too_long if media else t.message_too_long, parse_mode=PARSE_MODE)
        return True
    if relayed.outcome == RelayOutcome.RELAYED:
        text = t.message_relayed.format(horeca=escape(relayed.horeca_name or ""))
        bot.send_message(message.chat.id, text, parse_mode=PARSE_MODE)
        return True
    if relayed.outcome == RelayOutcome.CHOOSE:
        markup = InlineKeyboardMarkup()
        for key, name in relayed.choices:
            data = f"{CHOOSE}:{relayed.dialog_message_id}:{key}"
            markup.row(InlineKeyboardButton(name[:60], callback_data=data))
        bot.send_message(message.chat.id, t.which_horeca, parse_mode=PARSE_MODE, reply_markup=markup)
        return True
    return False


def media_handler(app: Flask) -> Handler:
    """The handler of the customer bot's media messages; an album's messages are collected and relayed as one."""
    albums = media_in.AlbumCollector(app, relay_media, texts.for_user)

    def on_media(message: Message, bot: TeleBot) -> None:
        if message.media_group_id:
            albums.add(message, bot)
        else:
            relay_media([message], bot)

    return on_media


def relay_media(messages: list[Message], bot: TeleBot) -> None:
    """A photo, file, voice note, location, ... (or an album) to the staff; else the usual hint to send text."""
    first = messages[0]
    user = first.from_user
    if user is None:
        return
    attachment: Attachment | None = media_in.attachment(messages, BOT_NAME)
    if attachment is not None:
        profile = customers.Profile(user.first_name, user.last_name, user.username, user.language_code)
        relayed = relay.relay_from_customer(
            user.id,
            attachment.caption if not attachment.album else "",
            chat_id=first.chat.id,
            profile=profile,
            settings=_settings(),
            attachment=attachment,
            source_message_id=first.message_id,
        )
        if _answer(first, bot, relayed, media=True):
            return
    customer_chat.heard(user.id)  # not for a cafe: the bot only understands codes (but the user did start it)
    bot.send_message(first.chat.id, texts.for_user(user).send_text, parse_mode=PARSE_MODE)


def on_edit(message: Message, bot: TeleBot) -> None:
    """The customer edited a message they had sent to a cafe: the staff's copies follow (other edits change nothing)."""
    user = message.from_user
    if user is None:
        return
    outcome = edits.customer_edited(user.id, message.message_id, message.text or message.caption or "")
    if outcome.outcome == EditOutcome.INVALID:
        t = texts.for_user(user)
        bot.send_message(message.chat.id, t.caption_too_long if message.caption is not None else t.message_too_long)


def on_choice(call: CallbackQuery, bot: TeleBot) -> None:
    """The customer picked the cafe a waiting message is for; forged or stale presses relay nothing."""
    t = texts.for_user(call.from_user)
    match = _CHOICE.fullmatch(call.data or "")
    if match is None or call.message is None:
        bot.answer_callback_query(call.id, t.alert_invalid, show_alert=True)
        return
    relayed = relay.choose_horeca(call.from_user.id, int(match.group(1)), match.group(2), _settings())
    if relayed.outcome in (RelayOutcome.RELAYED, RelayOutcome.ALREADY):
        bot.answer_callback_query(call.id)
        text = t.message_relayed.format(horeca=escape(relayed.horeca_name or ""))
        try:
            chat_id, message_id = call.message.chat.id, call.message.message_id
            bot.edit_message_text(text, chat_id, message_id, parse_mode=PARSE_MODE, reply_markup=None)
        except Exception:  # noqa: BLE001 - the confirmation is cosmetic; the message went to the staff
            log.info("could not edit the horeca choice of user %s", call.from_user.id)
        return
    bot.answer_callback_query(call.id, t.alert_invalid, show_alert=True)
