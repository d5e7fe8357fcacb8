"""The staff bot's inline buttons: one handler per action, looked up in `ACTIONS` by the callback data's prefix.

Callback data is parsed strictly (`keyboards.parse`); forged data, and ids that are not the presser's, are
answered with an alert and change nothing. Buttons are bound to what they were drawn for: a dialog list's
buttons to the selection it showed (a stale list re-draws itself and says so instead of acting), a prompt's
buttons to that prompt (once it ended they answer how — sent, saved, cancelled, closed — and the prompt loses
its buttons). The services compare; the state lives in the database, so this holds across restarts and devices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from telebot import TeleBot
from telebot.types import CallbackQuery, InaccessibleMessage, Message, User

from bot.staff import keyboards as kb
from bot.staff import screens, views
from bot.staff.texts import StaffTexts
from models import PromptEnd
from services import cabinet, canned, conversation, outreach, staff
from services.cabinet import StaleList
from services.errors import Invalid, NotFound
from services.relay import horeca_key
from services.staff import NotStaff, PromptClosed


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
        screens.answer(self.bot, self.call, text, alert)

    def show_dialogs(self, page: int, edit: bool = True) -> None:
        screens.show_dialogs(self.bot, self.chat_id, self.user, page, in_place=self.message if edit else None)

    def prompt(self, target: outreach.Target) -> None:
        self.answer()
        screens.send_prompt(self.bot, self.chat_id, self.user, target)

    def prompt_ended(self, end: PromptEnd) -> None:
        """A button of a prompt that already ended: say how, and take the prompt's buttons off."""
        toast, line = views.prompt_ended(self.t, end)
        self.answer(toast)
        if line is None:
            screens.edit(self.bot, self.message, self.t.compose_cancelled)
        else:
            screens.close_prompt(self.bot, self.message, line)


def _noop(p: Pressed) -> None:
    p.answer()


def _toggle(p: Pressed) -> None:
    selected = cabinet.toggle(p.user.id, p.press.number, p.press.page, p.press.stamp, screens.settings())
    p.show_dialogs(p.press.page)
    p.answer(p.t.toast_selected if selected else p.t.toast_unselected)


def _page(p: Pressed) -> None:
    p.show_dialogs(p.press.page)
    p.answer()


def _select_all(p: Pressed) -> None:
    count = cabinet.select_all(p.user.id, screens.settings(), seen=p.press.stamp)
    p.show_dialogs(p.press.page)
    p.answer(p.t.toast_all_selected.format(n=count))


def _clear(p: Pressed) -> None:
    cabinet.clear(p.user.id, seen=p.press.stamp)
    p.show_dialogs(p.press.page)
    p.answer(p.t.toast_cleared)


def _write(p: Pressed) -> None:
    p.prompt(outreach.start_composing(p.user.id, screens.settings(), seen=p.press.stamp))


def _reply(p: Pressed) -> None:
    p.prompt(outreach.reply_to_message(p.user.id, p.press.number, screens.settings()))


def _reply_to(p: Pressed) -> None:
    p.prompt(outreach.reply_to_customer(p.user.id, p.press.number, screens.settings()))


def _open(p: Pressed) -> None:
    opened = conversation.open_dialog(p.user.id, p.press.number, settings=screens.settings())
    p.answer()
    screens.send(p.bot, p.chat_id, views.dialog_text(p.t, opened), kb.open_dialog(p.t, opened.customer_id))


def _cancel(p: Pressed) -> None:
    end = staff.cancel_prompt(p.user.id, p.press.prompt)
    if end is not None:
        p.prompt_ended(end)
        return
    p.answer(p.t.compose_cancelled)
    screens.edit(p.bot, p.message, p.t.compose_cancelled)


def _send_canned(p: Pressed) -> None:
    sent = canned.send_reply(p.user.id, p.press.number)
    p.answer()
    screens.send(p.bot, p.chat_id, views.sent_text(p.t, sent))


def _prompt_canned(p: Pressed) -> None:
    sent = canned.send_reply(p.user.id, p.press.number, prompt=p.press.prompt)
    p.answer()
    screens.close_prompt(p.bot, p.message, p.t.prompt_sent_line)
    screens.send(p.bot, p.chat_id, views.sent_text(p.t, sent))


def _delete_canned(p: Pressed) -> None:
    deleted = canned.delete_reply(p.user.id, p.press.number)
    screens.show_replies(p.bot, p.chat_id, p.user, in_place=p.message)
    p.answer(p.t.reply_deleted if deleted else p.t.reply_gone)


def _add_canned(p: Pressed) -> None:
    prompt = staff.add_reply_prompt(p.user.id)
    p.answer()
    text = p.t.add_reply_prompt.format(limit=canned.MAX_REPLY_CHARS)
    screens.send(p.bot, p.chat_id, text, kb.cancel_only(p.t, prompt))


def _switch_horeca(p: Pressed) -> None:
    match = next((m for m in staff.memberships(p.user.id) if horeca_key(m.horeca_id) == p.press.key), None)
    if match is None:
        raise NotStaff("not staff of this horeca")
    cab = staff.switch_horeca(p.user.id, match.horeca_id)
    p.answer()
    screens.edit(p.bot, p.message, p.t.horeca_switched.format(horeca=escape(cab.horeca_name)))
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
    kb.PROMPT_CANNED: _prompt_canned,
    kb.DELETE_CANNED: _delete_canned,
    kb.ADD_CANNED: _add_canned,
    kb.HORECA: _switch_horeca,
}


def on_callback(call: CallbackQuery, bot: TeleBot) -> None:
    """Every inline button of the staff bot; forged or stale data changes nothing and is answered."""
    t = screens.texts_for(call.from_user)
    press = kb.parse(call.data)
    action = ACTIONS.get(press.action) if press is not None else None
    if press is None or action is None or call.message is None:
        screens.answer(bot, call, t.alert_gone, alert=True)
        return
    pressed = Pressed(bot, call, call.message, call.from_user, t, press)
    try:
        action(pressed)
    except StaleList:  # drawn for another selection: show the list as it is now, act on the next press
        pressed.show_dialogs(press.page)
        pressed.answer(t.list_refreshed)
    except PromptClosed as closed:
        pressed.prompt_ended(closed.end)
    except NotStaff:
        screens.answer(bot, call, t.not_staff.split("\n")[0], alert=True)
    except NotFound as error:
        screens.answer(bot, call, t.reply_gone if error.code == "reply_not_found" else t.alert_gone, alert=True)
    except Invalid as error:
        screens.answer(bot, call, views.explain(t, error), alert=True)
