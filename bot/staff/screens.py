"""What the staff bot's handlers share: the catalog and settings for an update, sending and editing, the screens.

A screen (the dialog list, the canned replies, the compose prompt) is a service outcome drawn by `views` and
`keyboards`; the message handlers and the button actions show the same screens through these functions.
"""

from __future__ import annotations

import logging

from flask import current_app
from telebot import TeleBot
from telebot.apihelper import ApiTelegramException
from telebot.types import (
    CallbackQuery,
    InaccessibleMessage,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    User,
)

from bot.staff import keyboards as kb
from bot.staff import texts as staff_texts
from bot.staff import views
from bot.staff.texts import PARSE_MODE, StaffTexts
from services import cabinet, canned, outreach, staff
from services.cabinet import CabinetSettings
from services.customers import Profile

log = logging.getLogger(__name__)

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


def texts_for(user: User | None) -> StaffTexts:
    """The catalog in the user's language."""
    return staff_texts.for_user(user)


def sender(message: Message) -> User:
    """Who wrote a private message (Telegram always says so in private chats, the only ones registered)."""
    user = message.from_user
    assert user is not None
    return user


def settings() -> CabinetSettings:
    """The cabinet's settings from the app this update runs in (tests change them between updates)."""
    return CabinetSettings.from_config(current_app.config)


def profile(user: User) -> Profile:
    """The names Telegram tells about the user, for the staff list."""
    return Profile(first_name=user.first_name, last_name=user.last_name, username=user.username, language_code=user.language_code)


def send(bot: TeleBot, chat_id: int, text: str, markup: Markup = None) -> None:
    bot.send_message(chat_id, text, parse_mode=PARSE_MODE, reply_markup=markup, disable_web_page_preview=True)


def edit(bot: TeleBot, message: Message | InaccessibleMessage, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Replace a message's text and keyboard; an edit that changes nothing is fine."""
    try:
        bot.edit_message_text(
            text,
            message.chat.id,
            message.message_id,
            parse_mode=PARSE_MODE,
            reply_markup=markup,
            disable_web_page_preview=True,
        )
    except ApiTelegramException as exc:
        if "message is not modified" not in str(exc.description or "").lower():
            raise


def close_prompt(bot: TeleBot, message: Message | InaccessibleMessage, line: str) -> None:
    """Take the buttons off a prompt that ended and add a line saying how (its text and formatting kept)."""
    try:
        if isinstance(message, Message) and message.text:
            bot.edit_message_text(
                f"{message.text}\n\n{line}",
                message.chat.id,
                message.message_id,
                entities=message.entities,
                disable_web_page_preview=True,
            )
        else:  # too old to be shown to the bot: only the keyboard can go
            bot.edit_message_reply_markup(message.chat.id, message.message_id, reply_markup=None)
    except ApiTelegramException as exc:  # gone, too old, or closed already by the other device
        log.info("could not close a staff prompt: %s", exc.description)


def answer(bot: TeleBot, call: CallbackQuery, text: str | None = None, alert: bool = False) -> None:
    try:
        bot.answer_callback_query(call.id, text, show_alert=alert)
    except ApiTelegramException:  # too old to answer: nothing the user can still see
        log.info("could not answer callback query %s", call.id)


def menu(t: StaffTexts, cab: staff.Cabinet | None) -> ReplyKeyboardMarkup:
    """The persistent menu; the horeca button only for staff of several."""
    return kb.menu(t, several_horecas=bool(cab and cab.memberships > 1))


def show_dialogs(
    bot: TeleBot, chat_id: int, user: User, page: int, in_place: Message | InaccessibleMessage | None = None
) -> None:
    t = texts_for(user)
    listed = cabinet.list_dialogs(user.id, page, settings())
    text, markup = views.dialogs_text(t, listed), kb.dialogs(t, listed)
    if in_place is not None:
        edit(bot, in_place, text, markup)
    else:
        send(bot, chat_id, text, markup)


def send_prompt(bot: TeleBot, chat_id: int, user: User, target: outreach.Target) -> None:
    t = texts_for(user)
    replies = canned.list_replies(user.id)
    send(bot, chat_id, views.compose_prompt(t, target, with_replies=bool(replies)), kb.compose(t, replies, target.prompt))


def show_replies(bot: TeleBot, chat_id: int, user: User, in_place: Message | InaccessibleMessage | None = None) -> None:
    t = texts_for(user)
    cab = staff.cabinet(user.id)
    if cab is None:
        return
    items = canned.list_replies(user.id)
    text, markup = views.replies_text(t, cab.horeca_name, items), kb.replies(t, items)
    if in_place is not None:
        edit(bot, in_place, text, markup)
    else:
        send(bot, chat_id, text, markup)
