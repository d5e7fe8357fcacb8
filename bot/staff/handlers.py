"""The HoReCa staff bot: join by code, the cabinet of dialogs with multi-select, replies, quick replies.

Handlers translate between Telegram and `services.staff` / `services.dialogs`; every one runs in its own app
context and never lets an exception escape (telebot has already advanced the offset past the update).
Staff-bound outbox rows (bot "horeca", kind "staff_notice") are drawn by `bot.staff.notices`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from typing import Any

from flask import Flask
from telebot import TeleBot
from telebot.apihelper import ApiTelegramException
from telebot.types import BotCommand, CallbackQuery, Message, ReplyKeyboardRemove

from bot.staff import keyboards as kb
from bot.staff import texts as staff_texts
from bot.staff.texts import PARSE_MODE, StaffTexts
from services import dialogs, linking, staff
from services.customers import Profile
from services.errors import Invalid, NotFound
from services.staff import NotStaff

log = logging.getLogger(__name__)

COMMANDS = ("dialogs", "replies", "horeca", "cancel", "help")


def _t(user: Any) -> StaffTexts:
    return staff_texts.for_user(user)


def _profile(user: Any) -> Profile:
    return Profile(
        first_name=getattr(user, "first_name", None), last_name=getattr(user, "last_name", None),
        username=getattr(user, "username", None), language_code=getattr(user, "language_code", None),
    )


def _send(bot: TeleBot, chat_id: int, text: str, markup: Any = None) -> None:
    bot.send_message(chat_id, text, parse_mode=PARSE_MODE, reply_markup=markup, disable_web_page_preview=True)


def _edit(bot: TeleBot, message: Message, text: str, markup: Any = None) -> None:
    """Replace a message's text and keyboard; an edit that changes nothing is fine."""
    try:
        bot.edit_message_text(
            text, message.chat.id, message.message_id, parse_mode=PARSE_MODE, reply_markup=markup,
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


def guarded(app: Flask, handler: Callable[[Any, TeleBot], None]) -> Callable[..., None]:
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


def _menu(t: StaffTexts, cab: staff.Cabinet | None) -> Any:
    return kb.menu(t, several_horecas=bool(cab and cab.memberships > 1))


def _join(message: Message, bot: TeleBot, code: str) -> None:
    """Claim a staff code typed or passed through /start, within the wrong-code limit."""
    user, t = message.from_user, _t(message.from_user)
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
    user, t = message.from_user, _t(message.from_user)
    cab = staff.cabinet(user.id, message.chat.id, _profile(user))
    if cab is None:
        _send(bot, message.chat.id, t.not_staff, ReplyKeyboardRemove())
        return
    _send(bot, message.chat.id, t.help.format(horeca=escape(cab.horeca_name)), _menu(t, cab))
    _show_dialogs(bot, message.chat.id, user, page=0)


def _cabinet_or_refuse(message: Message, bot: TeleBot) -> staff.Cabinet | None:
    """The sender's cabinet; None (after telling them how to join) when they are nobody's staff."""
    cab = staff.cabinet(message.from_user.id, message.chat.id, _profile(message.from_user))
    if cab is None:
        _send(bot, message.chat.id, _t(message.from_user).not_staff, ReplyKeyboardRemove())
    return cab


# --- the dialog list -------------------------------------------------------------------------------


def _ago(t: StaffTexts, when: datetime) -> str:
    seconds = max(0, int((datetime.now(UTC).replace(tzinfo=None) - when).total_seconds()))
    if t.lang == "ru":
        return "сейчас" if seconds < 60 else f"{seconds // 60} мин" if seconds < 3600 else f"{seconds // 3600} ч"
    return "now" if seconds < 60 else f"{seconds // 60} min" if seconds < 3600 else f"{seconds // 3600} h"


def dialogs_text(t: StaffTexts, page: dialogs.DialogPage) -> str:
    """The text above the cabinet's buttons."""
    lines = [t.dialogs_title.format(horeca=escape(page.horeca_name))]
    if not page.items:
        lines.append(t.dialogs_empty)
        if page.selected:
            lines.append(t.selected_count.format(n=page.selected))
        return "\n".join(lines)
    first = page.page * dialogs.page_size() + 1
    lines.append(t.dialogs_range.format(first=first, last=first + len(page.items) - 1, total=page.total))
    lines.append(t.dialogs_hint)
    for item in page.items:
        if item.colleague:
            lines.append(t.colleague_line.format(colleague=escape(item.colleague), customer=escape(item.name)))
    lines.append(t.selected_count.format(n=page.selected))
    return "\n".join(lines)


def _show_dialogs(bot: TeleBot, chat_id: int, user: Any, page: int, edit: Message | None = None) -> None:
    t = _t(user)
    listed = dialogs.list_dialogs(user.id, page)
    text, markup = dialogs_text(t, listed), kb.dialogs(t, listed)
    if edit is not None:
        _edit(bot, edit, text, markup)
    else:
        _send(bot, chat_id, text, markup)


def on_dialogs(message: Message, bot: TeleBot) -> None:
    """/dialogs or the menu button: the first page of the cabinet."""
    if _cabinet_or_refuse(message, bot) is None:
        return
    _show_dialogs(bot, message.chat.id, message.from_user, page=0)


def _compose_prompt(t: StaffTexts, target: dialogs.Target) -> str:
    horeca = escape(target.horeca_name)
    if target.count == 1:
        customer = escape(target.names[0]) if target.names else "?"
        if target.order_id:
            text = t.compose_one_order.format(customer=customer, order_id=escape(target.order_id), horeca=horeca)
        else:
            text = t.compose_one.format(customer=customer, horeca=horeca)
    else:
        text = t.compose_many.format(n=target.count, names=t.names(target.names, target.count), horeca=horeca)
    for customer, colleague in target.colleagues.items():
        text += "\n" + t.compose_colleague.format(colleague=escape(colleague), customer=escape(customer))
    return text


def _send_prompt(bot: TeleBot, chat_id: int, user: Any, target: dialogs.Target) -> None:
    t = _t(user)
    replies = dialogs.list_replies(user.id)
    text = _compose_prompt(t, target)
    if replies:
        text += "\n\n" + t.compose_canned_hint
    _send(bot, chat_id, text, kb.compose(t, replies))


# --- texts -----------------------------------------------------------------------------------------


def _report_sent(bot: TeleBot, chat_id: int, t: StaffTexts, sent: dialogs.Sent) -> None:
    """What the staff member hears right after sending; the delivery summary follows from the delivery job."""
    if sent.summarized:
        _send(bot, chat_id, t.nothing_sent_blocked.format(names=t.names(sent.blocked_names, sent.blocked)))
        return
    text = t.sending.format(n=sent.queued)
    if sent.blocked:
        text += "\n" + t.sending_blocked.format(n=sent.blocked)
    _send(bot, chat_id, text)


def _explain(t: StaffTexts, error: Invalid) -> str:
    if error.code == "empty_text":
        return t.empty_text
    if error.code == "text_too_long":
        return t.too_long.format(limit=dialogs.MAX_TEXT)
    if error.code == "too_many_replies":
        return t.too_many_replies.format(n=dialogs.MAX_REPLIES)
    if error.code == "nothing_selected":
        return t.alert_nothing_selected
    return t.idle_hint


def on_text(message: Message, bot: TeleBot) -> None:
    """Plain text: a message to the selected customers, a new quick reply, a staff code, or a hint."""
    user, t = message.from_user, _t(message.from_user)
    text = message.text or ""
    cab = staff.cabinet(user.id, message.chat.id, _profile(user))
    if cab is None:
        if linking.looks_like_code(text):
            _join(message, bot, text.strip())
        else:
            _send(bot, message.chat.id, t.not_staff, ReplyKeyboardRemove())
        return
    try:
        if cab.mode == "composing":
            _report_sent(bot, message.chat.id, t, dialogs.send_to_selected(user.id, text))
            return
        if cab.mode == "adding_reply":
            dialogs.add_reply(user.id, text)
            _send(bot, message.chat.id, t.reply_saved)
            _show_replies(bot, message.chat.id, user)
            return
    except Invalid as error:
        _send(bot, message.chat.id, _explain(t, error))
        return
    if linking.looks_like_code(text):
        _join(message, bot, text.strip())
        return
    _send(bot, message.chat.id, t.idle_hint, _menu(t, cab))


def on_other_content(message: Message, bot: TeleBot) -> None:
    """Photos, stickers and the like: only text goes to customers for now."""
    if _cabinet_or_refuse(message, bot) is None:
        return
    _send(bot, message.chat.id, _t(message.from_user).not_text)


def on_cancel(message: Message, bot: TeleBot) -> None:
    """/cancel: stop composing a message or a quick reply."""
    if _cabinet_or_refuse(message, bot) is None:
        return
    staff.set_mode(message.from_user.id, "idle")
    _send(bot, message.chat.id, _t(message.from_user).compose_cancelled)


def on_help(message: Message, bot: TeleBot) -> None:
    """/help (and unknown commands)."""
    cab = _cabinet_or_refuse(message, bot)
    if cab is None:
        return
    t = _t(message.from_user)
    _send(bot, message.chat.id, t.help.format(horeca=escape(cab.horeca_name)), _menu(t, cab))


# --- quick replies ---------------------------------------------------------------------------------


def _replies_view(t: StaffTexts, horeca_name: str, items: list[dict]) -> str:
    lines = [t.replies_title.format(horeca=escape(horeca_name))]
    if not items:
        lines.append(t.replies_empty)
    else:
        lines.extend(f"{n}. {escape(r['text'])}" for n, r in enumerate(items, start=1))
        lines.append("")
        lines.append(t.replies_hint)
    return "\n".join(lines)


def _show_replies(bot: TeleBot, chat_id: int, user: Any, edit: Message | None = None) -> None:
    t = _t(user)
    cab = staff.cabinet(user.id)
    if cab is None:
        return
    items = dialogs.list_replies(user.id)
    text, markup = _replies_view(t, cab.horeca_name, items), kb.replies(t, items)
    if edit is not None:
        _edit(bot, edit, text, markup)
    else:
        _send(bot, chat_id, text, markup)


def on_replies(message: Message, bot: TeleBot) -> None:
    """/replies or the menu button: list, send, delete and add quick replies."""
    if _cabinet_or_refuse(message, bot) is None:
        return
    _show_replies(bot, message.chat.id, message.from_user)


# --- horecas ---------------------------------------------------------------------------------------


def on_horeca(message: Message, bot: TeleBot) -> None:
    """/horeca or the menu button: pick the horeca to work for."""
    if _cabinet_or_refuse(message, bot) is None:
        return
    t = _t(message.from_user)
    items = staff.memberships(message.from_user.id)
    _send(bot, message.chat.id, t.horecas_title, kb.horecas(items, dialogs.horeca_key))


# --- buttons ---------------------------------------------------------------------------------------


def _dialog_view(t: StaffTexts, view: dict) -> str:
    lines = [t.dialog_title.format(customer=escape(view["customer"]["name"]))]
    if view.get("order"):
        lines.append(t.dialog_order.format(order_id=escape(view["order"]["order_id"]), status=t.status(view["order"]["status"])))
    if view.get("colleague"):
        lines.append(t.colleague_line.format(colleague=escape(view["colleague"]), customer=escape(view["customer"]["name"])))
    lines.append("")
    if not view["messages"]:
        lines.append(t.dialog_empty)
    for m in view["messages"]:
        when = _ago(t, datetime.fromisoformat(m["created_at"].replace("Z", "+00:00")).replace(tzinfo=None))
        body = escape(m["text"] if len(m["text"]) <= 300 else m["text"][:299] + "…")
        if m["direction"] == "in":
            lines.append(t.dialog_in.format(time=when, text=body))
        else:
            name = escape(m["staff"]["name"]) if m["staff"] else "?"
            lines.append(t.dialog_out.format(time=when, staff=name, text=body))
    return "\n".join(lines)


def on_callback(call: CallbackQuery, bot: TeleBot) -> None:
    """Every inline button of the staff bot; forged or stale data changes nothing and is answered."""
    user, t = call.from_user, _t(call.from_user)
    parsed = kb.parse(call.data)
    if parsed is None or call.message is None:
        _answer(bot, call, t.alert_gone, alert=True)
        return
    action, arg, page = parsed
    chat_id = call.message.chat.id
    try:
        _dispatch(bot, call, t, user, chat_id, action, arg, page)
    except NotStaff:
        _answer(bot, call, t.not_staff.split("\n")[0], alert=True)
    except NotFound as error:
        _answer(bot, call, t.reply_gone if error.code == "reply_not_found" else t.alert_gone, alert=True)
    except Invalid as error:
        _answer(bot, call, _explain(t, error), alert=True)


def _dispatch(bot: TeleBot, call: CallbackQuery, t: StaffTexts, user: Any, chat_id: int, action: str,
              arg: int | str | None, page: int | None) -> None:
    if action == kb.NOOP:
        _answer(bot, call)
    elif action == kb.TOGGLE:
        selected = dialogs.toggle(user.id, int(arg))
        _show_dialogs(bot, chat_id, user, page or 0, edit=call.message)
        _answer(bot, call, t.toast_selected if selected else t.toast_unselected)
    elif action == kb.PAGE:
        _show_dialogs(bot, chat_id, user, int(arg), edit=call.message)
        _answer(bot, call)
    elif action == kb.SELECT_ALL:
        count = dialogs.select_all(user.id)
        _show_dialogs(bot, chat_id, user, int(arg), edit=call.message)
        _answer(bot, call, t.toast_all_selected.format(n=count))
    elif action == kb.CLEAR:
        dialogs.clear(user.id)
        _show_dialogs(bot, chat_id, user, int(arg), edit=call.message)
        _answer(bot, call, t.toast_cleared)
    elif action == kb.WRITE:
        target = dialogs.start_composing(user.id)
        _answer(bot, call)
        _send_prompt(bot, chat_id, user, target)
    elif action == kb.REPLY:
        target = dialogs.reply_to_message(user.id, int(arg))
        _answer(bot, call)
        _send_prompt(bot, chat_id, user, target)
    elif action == kb.REPLY_TO:
        target = dialogs.reply_to_customer(user.id, int(arg))
        _answer(bot, call)
        _send_prompt(bot, chat_id, user, target)
    elif action == kb.OPEN:
        view = dialogs.open_dialog(user.id, int(arg))
        _answer(bot, call)
        _send(bot, chat_id, _dialog_view(t, view), kb.open_dialog(t, int(arg)))
    elif action == kb.CANCEL:
        staff.set_mode(user.id, "idle")
        _answer(bot, call, t.compose_cancelled)
        _edit(bot, call.message, t.compose_cancelled)
    elif action == kb.SEND_CANNED:
        sent = dialogs.send_reply(user.id, int(arg))
        _answer(bot, call)
        _report_sent(bot, chat_id, t, sent)
    elif action == kb.DELETE_CANNED:
        deleted = dialogs.delete_reply(user.id, int(arg))
        _show_replies(bot, chat_id, user, edit=call.message)
        _answer(bot, call, t.reply_deleted if deleted else t.reply_gone)
    elif action == kb.ADD_CANNED:
        staff.set_mode(user.id, "adding_reply")
        _answer(bot, call)
        _send(bot, chat_id, t.add_reply_prompt.format(limit=dialogs.MAX_REPLY_CHARS), kb.cancel_only(t))
    elif action == kb.HORECA:
        match = next((m for m in staff.memberships(user.id) if dialogs.horeca_key(m["horeca_id"]) == arg), None)
        if match is None:
            raise NotStaff("not staff of this horeca")
        cab = staff.switch_horeca(user.id, match["horeca_id"])
        _answer(bot, call)
        _edit(bot, call.message, t.horeca_switched.format(horeca=escape(cab.horeca_name)))
        _show_dialogs(bot, chat_id, user, page=0)
    else:  # pragma: no cover - parse() only returns the actions above
        _answer(bot, call, t.alert_gone, alert=True)


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
    add(on_other_content, content_types=["photo", "video", "audio", "voice", "document", "sticker", "animation",
                                         "video_note", "location", "contact"])
    bot.register_callback_query_handler(guarded(app, on_callback), func=lambda c: True, pass_bot=True)


def commands() -> dict[str | None, list[BotCommand]]:
    """The staff bot's command menu per language (None: the default, Russian)."""
    return {
        language: [BotCommand(name, getattr(catalog, f"command_{name}")) for name in COMMANDS]
        for language, catalog in ((None, staff_texts.RU), ("en", staff_texts.EN))
    }
