"""The HoReCa staff bot: join by code, the cabinet of dialogs with multi-select, replies, quick replies.

Handlers translate between Telegram and the services (`staff`, `cabinet`, `outreach`, `conversation`, `canned`);
the words and screens come from `bot.staff.texts` and `bot.staff.views`. Every handler runs in its own app context
and never lets an exception escape (telebot has already advanced the offset past the update). Each inline button
action has one handler in `ACTIONS`. Staff-bound outbox rows are drawn by `bot.staff.notices`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any

from flask import Flask, current_app
from telebot import TeleBot
from telebot.apihelper import ApiTelegramException
from telebot.types import (
    BotCommand,
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
from models import StaffMode
from services import cabinet, canned, conversation, linking, outreach, staff
from services.cabinet import CabinetSettings
from services.customers import Profile
from services.errors import Invalid, NotFound
from services.relay import horeca_key
from services.staff import NotStaff

log = logging.getLogger(__name__)

COMMANDS = ("dialogs", "replies", "horeca", "cancel", "help")

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


def _t(user: User | None) -> StaffTexts:
    return staff_texts.for_user(user)


def _sender(message: Message) -> User:
    """Who wrote a private message (Telegram always says so in private chats, the only ones registered)."""
    user = message.from_user
    assert user is not None
    return user


def _settings() -> CabinetSettings:
    """The cabinet's settings from the app this update runs in (tests change them between updates)."""
    return CabinetSettings.from_config(current_app.config)


def _profile(user: User) -> Profile:
    return Profile(first_name=user.first_name, last_name=user.last_name, username=user.username, language_code=user.language_code)


def _send(bot: TeleBot, chat_id: int, text: str, markup: Markup = None) -> None:
    bot.send_message(chat_id, text, parse_mode=PARSE_MODE, reply_markup=markup, disable_web_page_preview=True)


def _edit(bot: TeleBot, message: Message | InaccessibleMessage, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
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


def _answer(bot: TeleBot, call: CallbackQuery, text: str | None = None, alert: bool = False) -> None:
    try:
        bot.answer_callback_query(call.id, text, show_alert=alert)
    except ApiTelegramException:  # too old to answer: nothing the user can still see
        log.info("could not answer callback query %s", call.id)


def guarded(app: Flask, handler: Callable[[Any, TeleBot], None]) -> Callable[[Any, TeleBot], None]:
    """Run a handler in its own app context; log any exception and apologize instead of letting it escape."""

    @functools.wraps(handler)
    def run(update: Any, bot: TeleBot) -> None:
        with app.app_context():
            try:
                handler(update, bot)
            except Exception:
                log.exception("staff bot handler %s failed", handler.__name__)
                t = _t(getattr(update, "from_user", None))
                try:
                    if isinstance(update, CallbackQuery):
                        _answer(bot, update, t.apology_short, alert=True)
                    else:
                        bot.send_message(update.chat.id, t.apology)
                except Exception:  # noqa: BLE001 - Telegram unreachable: the log line above is all we can do
                    log.warning("could not apologize for a failed staff handler")

    return run


# --- joining ---------------------------------------------------------------------------------------


def _menu(t: StaffTexts, cab: staff.Cabinet | None) -> ReplyKeyboardMarkup:
    return kb.menu(t, several_horecas=bool(cab and cab.memberships > 1))


def _join(message: Message, bot: TeleBot, code: str) -> None:
    """Claim a staff code typed or passed through /start, within the wrong-code limit."""
    user = _sender(message)
    t = _t(user)
    typed = linking.claim_typed(user.id, lambda: staff.join(code, user.id, message.chat.id, _profile(user)))
    joined = typed.value
    if joined is None:
        refusals = {linking.Typed.TOO_MANY: t.too_many_codes, linking.Typed.UNKNOWN: t.unknown_code}
        _send(bot, message.chat.id, refusals.get(typed.outcome, t.used_code))
        return
    template = t.already_staff if joined.already else t.rejoined if joined.rejoined else t.joined
    cab = staff.cabinet(user.id)
    _send(bot, message.chat.id, template.format(horeca=escape(joined.horeca_name)), _menu(t, cab))
    _show_dialogs(bot, message.chat.id, user, page=0)


def on_start(message: Message, bot: TeleBot) -> None:
    """/start with a staff code joins; without one, staff get the help and the cabinet, others how to join."""
    _, _, payload = (message.text or "").partition(" ")
    payload = payload.strip()
    if payload:
        _join(message, bot, payload)
        return
    user = _sender(message)
    t = _t(user)
    cab = staff.cabinet(user.id, message.chat.id, _profile(user))
    if cab is None:
        _send(bot, message.chat.id, t.not_staff, ReplyKeyboardRemove())
        return
    _send(bot, message.chat.id, t.help.format(horeca=escape(cab.horeca_name)), _menu(t, cab))
    _show_dialogs(bot, message.chat.id, user, page=0)


def _cabinet_or_refuse(message: Message, bot: TeleBot) -> staff.Cabinet | None:
    """The sender's cabinet; None (after telling them how to join) when they are nobody's staff."""
    user = _sender(message)
    cab = staff.cabinet(user.id, message.chat.id, _profile(user))
    if cab is None:
        _send(bot, message.chat.id, _t(user).not_staff, ReplyKeyboardRemove())
    return cab


# --- the dialog list -------------------------------------------------------------------------------


def _show_dialogs(bot: TeleBot, chat_id: int, user: User, page: int, edit: Message | InaccessibleMessage | None = None) -> None:
    t = _t(user)
    listed = cabinet.list_dialogs(user.id, page, _settings())
    text, markup = views.dialogs_text(t, listed), kb.dialogs(t, listed)
    if edit is not None:
        _edit(bot, edit, text, markup)
    else:
        _send(bot, chat_id, text, markup)


def on_dialogs(message: Message, bot: TeleBot) -> None:
    """/dialogs or the menu button: the first page of the cabinet."""
    if _cabinet_or_refuse(message, bot) is None:
        return
    _show_dialogs(bot, message.chat.id, _sender(message), page=0)


def _send_prompt(bot: TeleBot, chat_id: int, user: User, target: outreach.Target) -> None:
    t = _t(user)
    replies = canned.list_replies(user.id)
    _send(bot, chat_id, views.compose_prompt(t, target, with_replies=bool(replies)), kb.compose(t, replies))


# --- texts -----------------------------------------------------------------------------------------


def on_text(message: Message, bot: TeleBot) -> None:
    """Plain text: a message to the selected customers, a new quick reply, a staff code, or a hint."""
    user = _sender(message)
    t = _t(user)
    text = message.text or ""
    cab = staff.cabinet(user.id, message.chat.id, _profile(user))
    if cab is None:
        if linking.looks_like_code(text):
            _join(message, bot, text.strip())
        else:
            _send(bot, message.chat.id, t.not_staff, ReplyKeyboardRemove())
        return
    try:
        if cab.mode == StaffMode.COMPOSING:
            _send(bot, message.chat.id, views.sent_text(t, outreach.send_to_selected(user.id, text)))
            return
        if cab.mode == StaffMode.ADDING_REPLY:
            canned.add_reply(user.id, text)
            _send(bot, message.chat.id, t.reply_saved)
            _show_replies(bot, message.chat.id, user)
            return
    except Invalid as error:
        _send(bot, message.chat.id, views.explain(t, error))
        return
    if linking.looks_like_code(text):
        _join(message, bot, text.strip())
        return
    _send(bot, message.chat.id, t.idle_hint, _menu(t, cab))


def on_other_content(message: Message, bot: TeleBot) -> None:
    """Photos, stickers and the like: only text goes to customers for now."""
    if _cabinet_or_refuse(message, bot) is None:
        return
    _send(bot, message.chat.id, _t(_sender(message)).not_text)


def on_cancel(message: Message, bot: TeleBot) -> None:
    """/cancel: stop composing a message or a quick reply."""
    if _cabinet_or_refuse(message, bot) is None:
        return
    user = _sender(message)
    staff.set_mode(user.id, StaffMode.IDLE)
    _send(bot, message.chat.id, _t(user).compose_cancelled)


def on_help(message: Message, bot: TeleBot) -> None:
    """/help (and unknown commands)."""
    cab = _cabinet_or_refuse(message, bot)
    if cab is None:
        return
    t = _t(_sender(message))
    _send(bot, message.chat.id, t.help.format(horeca=escape(cab.horeca_name)), _menu(t, cab))


# --- quick replies ---------------------------------------------------------------------------------


def _show_replies(bot: TeleBot, chat_id: int, user: User, edit: Message | InaccessibleMessage | None = None) -> None:
    t = _t(user)
    cab = staff.cabinet(user.id)
    if cab is None:
        return
    items = canned.list_replies(user.id)
    text, markup = views.replies_text(t, cab.horeca_name, items), kb.replies(t, items)
    if edit is not None:
        _edit(bot, edit, text, markup)
    else:
        _send(bot, chat_id, text, markup)


def on_replies(message: Message, bot: TeleBot) -> None:
    """/replies or the menu button: list, send, delete and add quick replies."""
    if _cabinet_or_refuse(message, bot) is None:
        return
    _show_replies(bot, message.chat.id, _sender(message))


# --- horecas ---------------------------------------------------------------------------------------


def on_horeca(message: Message, bot: TeleBot) -> None:
    """/horeca or the menu button: pick the horeca to work for."""
    if _cabinet_or_refuse(message, bot) is None:
        return
    user = _sender(message)
    _send(bot, message.chat.id, _t(user).horecas_title, kb.horecas(staff.memberships(user.id)))


# --- buttons: one handler per action ---------------------------------------------------------------


@dataclass(frozen=True)
class Pressed:
    """One inline button press, decoded: who pressed what, under which message."""

    bot: TeleBot
    call: CallbackQuery
    message: Message | InaccessibleMessage  # an inaccessible one (too old) still has its chat and id
    user: User
    t: StaffTexts
    press: kb.Press

    @property
    def chat_id(self) -> int:
        return self.message.chat.id

    def answer(self, text: str | None = None, alert: bool = False) -> None:
        _answer(self.bot, self.call, text, alert)

    def show_dialogs(self, page: int, edit: bool = True) -> None:
        _show_dialogs(self.bot, self.chat_id, self.user, page, edit=self.message if edit else None)

    def prompt(self, target: outreach.Target) -> None:
        self.answer()
        _send_prompt(self.bot, self.chat_id, self.user, target)


def _noop(p: Pressed) -> None:
    p.answer()


def _toggle(p: Pressed) -> None:
    selected = cabinet.toggle(p.user.id, p.press.number)
    p.show_dialogs(p.press.page)
    p.answer(p.t.toast_selected if selected else p.t.toast_unselected)


def _page(p: Pressed) -> None:
    p.show_dialogs(p.press.number)
    p.answer()


def _select_all(p: Pressed) -> None:
    count = cabinet.select_all(p.user.id, _settings())
    p.show_dialogs(p.press.number)
    p.answer(p.t.toast_all_selected.format(n=count))


def _clear(p: Pressed) -> None:
    cabinet.clear(p.user.id)
    p.show_dialogs(p.press.number)
    p.answer(p.t.toast_cleared)


def _write(p: Pressed) -> None:
    p.prompt(outreach.start_composing(p.user.id, _settings()))


def _reply(p: Pressed) -> None:
    p.prompt(outreach.reply_to_message(p.user.id, p.press.number, _settings()))


def _reply_to(p: Pressed) -> None:
    p.prompt(outreach.reply_to_customer(p.user.id, p.press.number, _settings()))


def _open(p: Pressed) -> None:
    opened = conversation.open_dialog(p.user.id, p.press.number, settings=_settings())
    p.answer()
    _send(p.bot, p.chat_id, views.dialog_text(p.t, opened), kb.open_dialog(p.t, opened.customer_id))


def _cancel(p: Pressed) -> None:
    staff.set_mode(p.user.id, StaffMode.IDLE)
    p.answer(p.t.compose_cancelled)
    _edit(p.bot, p.message, p.t.compose_cancelled)


def _send_canned(p: Pressed) -> None:
    sent = canned.send_reply(p.user.id, p.press.number)
    p.answer()
    _send(p.bot, p.chat_id, views.sent_text(p.t, sent))


def _delete_canned(p: Pressed) -> None:
    deleted = canned.delete_reply(p.user.id, p.press.number)
    _show_replies(p.bot, p.chat_id, p.user, edit=p.message)
    p.answer(p.t.reply_deleted if deleted else p.t.reply_gone)


def _add_canned(p: Pressed) -> None:
    staff.set_mode(p.user.id, StaffMode.ADDING_REPLY)
    p.answer()
    _send(p.bot, p.chat_id, p.t.add_reply_prompt.format(limit=canned.MAX_REPLY_CHARS), kb.cancel_only(p.t))


def _switch_horeca(p: Pressed) -> None:
    match = next((m for m in staff.memberships(p.user.id) if horeca_key(m.horeca_id) == p.press.key), None)
    if match is None:
        raise NotStaff("not staff of this horeca")
    cab = staff.switch_horeca(p.user.id, match.horeca_id)
    p.answer()
    _edit(p.bot, p.message, p.t.horeca_switched.format(horeca=escape(cab.horeca_name)))
    p.show_dialogs(0, edit=False)


ACTIONS: dict[str, Callable[[Pressed], None]] = {
    kb.NOOP: _noop,
    kb.TOGGLE: _toggle,
    kb.PAGE: _page,
    kb.SELECT_ALL: _select_all,
    kb.CLEAR: _clear,
    kb.WRITE: _write,
    kb.REPLY: _reply,
    kb.REPLY_TO: _reply_to,
    kb.OPEN: _open,
    kb.CANCEL: _cancel,
    kb.SEND_CANNED: _send_canned,
    kb.DELETE_CANNED: _delete_canned,
    kb.ADD_CANNED: _add_canned,
    kb.HORECA: _switch_horeca,
}


def on_callback(call: CallbackQuery, bot: TeleBot) -> None:
    """Every inline button of the staff bot; forged or stale data changes nothing and is answered."""
    t = _t(call.from_user)
    press = kb.parse(call.data)
    action = ACTIONS.get(press.action) if press is not None else None
    if press is None or action is None or call.message is None:
        _answer(bot, call, t.alert_gone, alert=True)
        return
    try:
        action(Pressed(bot, call, call.message, call.from_user, t, press))
    except NotStaff:
        _answer(bot, call, t.not_staff.split("\n")[0], alert=True)
    except NotFound as error:
        _answer(bot, call, t.reply_gone if error.code == "reply_not_found" else t.alert_gone, alert=True)
    except Invalid as error:
        _answer(bot, call, views.explain(t, error), alert=True)


# --- wiring ----------------------------------------------------------------------------------------


def _is_menu(label: str) -> Callable[[Message], bool]:
    labels = {getattr(catalog, label) for catalog in staff_texts.CATALOGS.values()}
    return lambda m: (m.text or "").strip() in labels


def register_staff_handlers(bot: TeleBot, app: Flask) -> None:
    """Wire every staff bot handler (order matters: commands, menu buttons, then any text)."""
    private = ["private"]

    def add(handler: Callable[[Any, TeleBot], None], **filters: Any) -> None:
        bot.register_message_handler(guarded(app, handler), chat_types=private, pass_bot=True, **filters)

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
    other = ["photo", "video", "audio", "voice", "document", "sticker", "animation", "video_note", "location", "contact"]
    add(on_other_content, content_types=other)
    bot.register_callback_query_handler(guarded(app, on_callback), func=lambda c: True, pass_bot=True)


def commands() -> dict[str | None, list[BotCommand]]:
    """The staff bot's command menu per language (None: the default, Russian)."""
    return {
        language: [BotCommand(name, getattr(catalog, f"command_{name}")) for name in COMMANDS]
        for language, catalog in ((None, staff_texts.RU), ("en", staff_texts.EN))
    }
