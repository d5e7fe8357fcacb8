"""The HoReCa staff bot: join by code, the cabinet of dialogs with multi-select, replies, quick replies.

Message handlers live here, the inline buttons in `bot.staff.buttons` (one handler per action), the shared
screens in `bot.staff.screens`. Handlers translate between Telegram and the services (`staff`, `cabinet`,
`outreach`, `conversation`, `canned`); every one runs in its own app context and never lets an exception escape
(telebot has already advanced the offset past the update). Staff-bound outbox rows are drawn by `bot.staff.notices`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from html import escape
from typing import Any

from flask import Flask, current_app
from telebot import TeleBot
from telebot.types import BotCommand, Message, ReplyKeyboardRemove

from bot import media_in
from bot.guard import guard
from bot.staff import buttons, screens, views
from bot.staff import keyboards as kb
from bot.staff import texts as staff_texts
from bot.staff.group import register_group_handlers
from bot.staff.texts import StaffTexts
from models import BotName, StaffMode
from services import canned, edits, linking, outreach, staff
from services.cabinet import MAX_TEXT
from services.edits import EditOutcome
from services.errors import Invalid
from services.media import MAX_CAPTION

log = logging.getLogger(__name__)

COMMANDS = ("dialogs", "replies", "horeca", "cancel", "help")


# --- joining ---------------------------------------------------------------------------------------


def _join(message: Message, bot: TeleBot, code: str) -> None:
    """Claim a staff code typed or passed through /start, within the wrong-code limit."""
    user = screens.sender(message)
    t = screens.texts_for(user)
    per_minute = current_app.config["WRONG_CODES_PER_MINUTE"]
    typed = linking.claim_typed(user.id, lambda: staff.join(code, user.id, message.chat.id, screens.profile(user)), per_minute)
    joined = typed.value
    if joined is None:
        refusals = {
            linking.Typed.TOO_MANY: t.too_many_codes,
            linking.Typed.BUSY: t.codes_busy,
            linking.Typed.UNKNOWN: t.unknown_code,
        }
        screens.send(bot, message.chat.id, refusals.get(typed.outcome, t.used_code))
        return
    template = t.already_staff if joined.already else t.rejoined if joined.rejoined else t.joined
    cab = staff.cabinet(user.id)
    screens.send(bot, message.chat.id, template.format(horeca=escape(joined.horeca_name)), screens.menu(t, cab))
    screens.show_dialogs(bot, message.chat.id, user, page=0)


def on_start(message: Message, bot: TeleBot) -> None:
    """/start with a staff code joins; without one, staff get the help and the cabinet, others how to join."""
    _, _, payload = (message.text or "").partition(" ")
    payload = payload.strip()
    if payload:
        _join(message, bot, payload)
        return
    user = screens.sender(message)
    t = screens.texts_for(user)
    cab = staff.cabinet(user.id, message.chat.id, screens.profile(user))
    if cab is None:
        screens.send(bot, message.chat.id, t.not_staff, ReplyKeyboardRemove())
        return
    screens.send(bot, message.chat.id, t.help.format(horeca=escape(cab.horeca_name)), screens.menu(t, cab))
    screens.show_dialogs(bot, message.chat.id, user, page=0)


def _cabinet_or_refuse(message: Message, bot: TeleBot) -> staff.Cabinet | None:
    """The sender's cabinet; None (after telling them how to join) when they are nobody's staff."""
    user = screens.sender(message)
    cab = staff.cabinet(user.id, message.chat.id, screens.profile(user))
    if cab is None:
        screens.send(bot, message.chat.id, screens.texts_for(user).not_staff, ReplyKeyboardRemove())
    return cab


# --- the dialog list -------------------------------------------------------------------------------


def on_dialogs(message: Message, bot: TeleBot) -> None:
    """/dialogs or the menu button: the first page of the cabinet."""
    if _cabinet_or_refuse(message, bot) is None:
        return
    screens.show_dialogs(bot, message.chat.id, screens.sender(message), page=0)


# --- texts -----------------------------------------------------------------------------------------


def on_text(message: Message, bot: TeleBot) -> None:
    """Plain text: a message to the selected customers, a new quick reply, a staff code, or a hint."""
    user = screens.sender(message)
    t = screens.texts_for(user)
    text = message.text or ""
    cab = staff.cabinet(user.id, message.chat.id, screens.profile(user))
    if cab is None:
        if linking.looks_like_code(text):
            _join(message, bot, text.strip())
        else:
            screens.send(bot, message.chat.id, t.not_staff, ReplyKeyboardRemove())
        return
    try:
        if cab.mode == StaffMode.COMPOSING:
            screens.send(
                bot,
                message.chat.id,
                views.sent_text(t, outreach.send_to_selected(user.id, text, source_message_id=message.message_id)),
            )
            return
        if cab.mode == StaffMode.ADDING_REPLY:
            canned.add_reply(user.id, text)
            screens.send(bot, message.chat.id, t.reply_saved)
            screens.show_replies(bot, message.chat.id, user)
            return
    except Invalid as error:
        screens.send(bot, message.chat.id, views.explain(t, error))
        return
    if linking.looks_like_code(text):
        _join(message, bot, text.strip())
        return
    screens.send(bot, message.chat.id, t.idle_hint, screens.menu(t, cab))


def on_other_content(message: Message, bot: TeleBot) -> None:
    """Photos, files, voice notes, locations, …: to the selected customers while composing (an album as one)."""
    if _cabinet_or_refuse(message, bot) is None:
        return
    send_media([message], bot)


def send_media(messages: list[Message], bot: TeleBot) -> None:
    """Media (or an album) to the selected customers, like a text; outside "Write to selected", how to do it."""
    first = messages[0]
    user = screens.sender(first)
    t = screens.texts_for(user)
    cab = staff.cabinet(user.id, first.chat.id, screens.profile(user))
    attachment = media_in.attachment(messages, BotName.HORECA)
    if cab is None or cab.mode != StaffMode.COMPOSING or attachment is None:
        screens.send(bot, first.chat.id, t.not_text)
        return
    caption = attachment.caption if not attachment.album else ""
    try:
        sent = outreach.send_to_selected(user.id, caption, attachment=attachment, source_message_id=first.message_id)
    except Invalid as error:
        screens.send(bot, first.chat.id, views.explain(t, error))
        return
    screens.send(bot, first.chat.id, views.sent_text(t, sent))


def on_edit(message: Message, bot: TeleBot) -> None:
    """A staff member edited a message they had sent to customers: each customer's copy follows."""
    user = screens.sender(message)
    outcome = edits.staff_edited(user.id, message.message_id, message.text or message.caption or "")
    if outcome.outcome == EditOutcome.INVALID:
        t = screens.texts_for(user)
        screens.send(bot, message.chat.id, t.too_long.format(limit=MAX_CAPTION if message.caption is not None else MAX_TEXT))


def on_cancel(message: Message, bot: TeleBot) -> None:
    """/cancel: stop composing a message or a quick reply."""
    if _cabinet_or_refuse(message, bot) is None:
        return
    user = screens.sender(message)
    staff.set_mode(user.id, StaffMode.IDLE)
    screens.send(bot, message.chat.id, screens.texts_for(user).compose_cancelled)


def on_help(message: Message, bot: TeleBot) -> None:
    """/help (and unknown commands)."""
    cab = _cabinet_or_refuse(message, bot)
    if cab is None:
        return
    t = screens.texts_for(screens.sender(message))
    screens.send(bot, message.chat.id, t.help.format(horeca=escape(cab.horeca_name)), screens.menu(t, cab))


# --- quick replies ---------------------------------------------------------------------------------


def on_replies(message: Message, bot: TeleBot) -> None:
    """/replies or the menu button: list, send, delete and add quick replies."""
    if _cabinet_or_refuse(message, bot) is None:
        return
    screens.show_replies(bot, message.chat.id, screens.sender(message))


# --- horecas ---------------------------------------------------------------------------------------


def on_horeca(message: Message, bot: TeleBot) -> None:
    """/horeca or the menu button: pick the horeca to work for."""
    if _cabinet_or_refuse(message, bot) is None:
        return
    user = screens.sender(message)
    screens.send(bot, message.chat.id, screens.texts_for(user).horecas_title, kb.horecas(staff.memberships(user.id)))


# --- wiring ----------------------------------------------------------------------------------------


def _is_menu(label: str) -> Callable[[Message], bool]:
    labels = {getattr(catalog, label) for catalog in staff_texts.CATALOGS.values()}
    return lambda m: (m.text or "").strip() in labels


def register_staff_handlers(bot: TeleBot, app: Flask) -> None:
    """Wire every staff bot handler (order matters: commands, menu buttons, then any text)."""
    private = ["private"]

    def add(handler: Callable[[Any, TeleBot], None], **filters: Any) -> None:
        bot.register_message_handler(guard(app, handler, staff_texts.for_user), chat_types=private, pass_bot=True, **filters)

    add(on_start, commands=["start"])
    add(on_dialogs, commands=["dialogs"])
    add(on_replies, commands=["replies"])
    add(on_horeca, commands=["horeca"])
    add(on_cancel, commands=["cancel"])
    add(on_help, commands=["help"])
    add(on_dialogs, func=_is_menu("menu_dialogs"))
    add(on_replies, func=_is_menu("menu_replies"))
    add(on_horeca, func=_is_menu("menu_horeca"))
    add(on_help, func=lambda m: (m.text or "").startswith("/"))  # unknown commands
    add(on_text, content_types=["text"])
    albums = media_in.AlbumCollector(app, send_media, staff_texts.for_user)  # an album's messages, sent as one

    def on_media(message: Message, bot: TeleBot) -> None:
        if message.media_group_id and _cabinet_or_refuse(message, bot) is not None:
            albums.add(message, bot)
        elif not message.media_group_id:
            on_other_content(message, bot)

    add(on_media, content_types=media_in.CONTENT_TYPES)
    edited = ["text", *media_in.CONTENT_TYPES]
    bot.register_edited_message_handler(
        guard(app, on_edit, staff_texts.for_user), content_types=edited, chat_types=private, pass_bot=True
    )
    bot.register_callback_query_handler(guard(app, buttons.on_callback, staff_texts.for_user), func=lambda c: True, pass_bot=True)
    register_group_handlers(bot, app)  # the staff group: linking, replies in customers' topics, migration, rights


def commands() -> dict[str | None, list[BotCommand]]:
    """The staff bot's command menu per language (None: the default catalog's, for every other language)."""
    catalogs: list[tuple[str | None, StaffTexts]] = [(None, staff_texts.DEFAULT)]
    catalogs += [(language, t) for language, t in staff_texts.CATALOGS.items() if t is not staff_texts.DEFAULT]
    return {language: [BotCommand(name, getattr(t, f"command_{name}")) for name in COMMANDS] for language, t in catalogs}
