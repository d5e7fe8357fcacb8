"""Keyboards of the staff bot and the callback data they carry (validated strictly on the way back)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from telebot.types import InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup

from bot.staff.texts import StaffTexts
from services.cabinet import DialogItem, DialogPage
from services.canned import Reply
from services.relay import horeca_key
from services.staff import Membership

# Callback data: "<prefix>" and its fields, ":"-separated; every one well under Telegram's 64 bytes. A list's
# acting buttons carry the selection stamp it was drawn for (`DialogPage.stamp`), a prompt's buttons the prompt's
# number: the services refuse a press whose list or prompt is no longer the current one.
TOGGLE = "st"  # st:<customer_id>:<page>:<stamp>
OPEN = "so"  # so:<customer_id>
PAGE = "sp"  # sp:<page>
SELECT_ALL = "sa"  # sa:<page>:<stamp>
CLEAR = "sc"  # sc:<page>:<stamp>
WRITE = "sw"  # sw:<page>:<stamp>
REPLY = "sr"  # sr:<dialog_message_id>   the Reply button under a customer's message
REPLY_TO = "sy"  # sy:<customer_id>      Reply from an opened dialog
CANCEL = "sx"  # sx:<prompt>
NOOP = "sn"  # sn                       the page counter
SEND_CANNED = "qs"  # qs:<reply_id>           ➤ in the quick replies list
PROMPT_CANNED = "qp"  # qp:<reply_id>:<prompt>  ⚡ under a compose prompt
DELETE_CANNED = "qd"  # qd:<reply_id>
ADD_CANNED = "qa"  # qa
HORECA = "sh"  # sh:<horeca key>         a short hash of the horeca id

_FIELD = {
    "id": re.compile(r"[0-9]{1,19}"),
    "page": re.compile(r"[0-9]{1,6}"),
    "stamp": re.compile(r"[0-9a-f]{8}"),
    "prompt": re.compile(r"[0-9]{1,9}"),
    "key": re.compile(r"[0-9a-f]{12}"),
}
# Per action: its fields, and how many of them must be there. Buttons drawn before stamps and prompt numbers
# existed ("sw", "sx", "st:<id>:<page>") still parse: a missing stamp never matches (the list re-draws), a missing
# prompt number is prompt 0, the one every account had then.
_SHAPES: dict[str, tuple[tuple[str, ...], int]] = {
    TOGGLE: (("id", "page", "stamp"), 2),
    OPEN: (("id",), 1),
    PAGE: (("page",), 1),
    SELECT_ALL: (("page", "stamp"), 1),
    CLEAR: (("page", "stamp"), 1),
    WRITE: (("page", "stamp"), 0),
    REPLY: (("id",), 1),
    REPLY_TO: (("id",), 1),
    CANCEL: (("prompt",), 0),
    NOOP: ((), 0),
    SEND_CANNED: (("id",), 1),
    PROMPT_CANNED: (("id", "prompt"), 2),
    DELETE_CANNED: (("id",), 1),
    ADD_CANNED: ((), 0),
    HORECA: (("key",), 1),
}
_MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Press:
    """A button press decoded from callback data we made."""

    action: str
    number: int = 0  # the id (customer, message, reply) or page the button carries
    page: int = 0  # the cabinet page a list button was drawn on
    key: str = ""  # a horeca key
    stamp: str = ""  # the selection stamp of the list the button was drawn on ("" never matches)
    prompt: int = 0  # the number of the prompt the button was drawn under


def parse(data: str | None) -> Press | None:
    """The press from callback data we made; None for anything else (forged, malformed)."""
    if not data or len(data) > 64:
        return None
    action, *values = data.split(":")
    shape = _SHAPES.get(action)
    if shape is None:
        return None
    fields, required = shape
    if not required <= len(values) <= len(fields):
        return None
    parsed: dict[str, str] = {}
    for name, value in zip(fields, values, strict=False):
        if not _FIELD[name].fullmatch(value):
            return None
        parsed[name] = value
    number = int(parsed.get("id", "0"))
    if number > _MAX_ID:
        return None
    page = int(parsed.get("page", "0"))
    if action == PAGE:
        number = page  # a page button carries the page to show
    return Press(
        action,
        number=number,
        page=page,
        key=parsed.get("key", ""),
        stamp=parsed.get("stamp", ""),
        prompt=int(parsed.get("prompt", "0")),
    )


def menu(t: StaffTexts, several_horecas: bool = False) -> ReplyKeyboardMarkup:
    """The persistent menu under the input field."""
    markup = ReplyKeyboardMarkup(resize_keyboard=True, is_persistent=True)
    row = [KeyboardButton(t.menu_dialogs), KeyboardButton(t.menu_replies)]
    if several_horecas:
        row.append(KeyboardButton(t.menu_horeca))
    markup.row(*row)
    return markup


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def item_label(t: StaffTexts, item: DialogItem) -> str:
    """A dialog's button: tick, name, order and status, unread count (plain text: buttons have no markup)."""
    parts = [("☑ " if item.selected else "☐ ") + _clip(item.name, 24)]
    if item.order_id:
        parts.append(t.order_short.format(order_id=_clip(item.order_id, 16), status=t.status(item.order_status)))
    if item.unread:
        parts.append(t.unread_badge.format(n=item.unread))
    if item.colleague:
        parts.append("✍️")
    return " · ".join(parts)


def dialogs(t: StaffTexts, page: DialogPage) -> InlineKeyboardMarkup:
    """The cabinet: one toggle (and an open button) per dialog, paging, select all / clear, write to selected."""
    markup = InlineKeyboardMarkup()
    for item in page.items:
        markup.row(
            InlineKeyboardButton(item_label(t, item), callback_data=f"{TOGGLE}:{item.customer_id}:{page.page}:{page.stamp}"),
            InlineKeyboardButton(t.button_open, callback_data=f"{OPEN}:{item.customer_id}"),
        )
    if page.pages > 1:
        nav = []
        if page.page > 0:
            nav.append(InlineKeyboardButton(t.button_prev, callback_data=f"{PAGE}:{page.page - 1}"))
        nav.append(InlineKeyboardButton(f"{page.page + 1}/{page.pages}", callback_data=NOOP))
        if page.page < page.pages - 1:
            nav.append(InlineKeyboardButton(t.button_next, callback_data=f"{PAGE}:{page.page + 1}"))
        markup.row(*nav)
    if page.items:
        markup.row(
            InlineKeyboardButton(t.button_select_all, callback_data=f"{SELECT_ALL}:{page.page}:{page.stamp}"),
            InlineKeyboardButton(t.button_clear, callback_data=f"{CLEAR}:{page.page}:{page.stamp}"),
        )
    if page.selected:
        write = t.button_write.format(n=page.selected)
        markup.row(InlineKeyboardButton(write, callback_data=f"{WRITE}:{page.page}:{page.stamp}"))
    return markup


def reply_button(t: StaffTexts, dialog_message_id: int) -> InlineKeyboardMarkup:
    """The Reply button under a customer's message."""
    markup = InlineKeyboardMarkup()
    markup.add(InlineKeyboardButton(t.button_reply, callback_data=f"{REPLY}:{dialog_message_id}"))
    return markup


def open_dialog(t: StaffTexts, customer_id: int) -> InlineKeyboardMarkup:
    """Under an opened dialog: Reply to that customer."""
    markup = InlineKeyboardMarkup()
    markup.add(InlineKeyboardButton(t.button_reply, callback_data=f"{REPLY_TO}:{customer_id}"))
    return markup


def compose(t: StaffTexts, replies: list[Reply], prompt: int) -> InlineKeyboardMarkup:
    """Under the "write your message" prompt number `prompt`: the canned replies (one tap sends), and Cancel."""
    markup = InlineKeyboardMarkup()
    for reply in replies[:10]:
        label = "⚡ " + _clip(reply.text, 40)
        markup.row(InlineKeyboardButton(label, callback_data=f"{PROMPT_CANNED}:{reply.id}:{prompt}"))
    markup.row(InlineKeyboardButton(t.button_cancel_compose, callback_data=f"{CANCEL}:{prompt}"))
    return markup


def replies(t: StaffTexts, items: list[Reply]) -> InlineKeyboardMarkup:
    """The canned replies: send or delete each, add one."""
    markup = InlineKeyboardMarkup()
    for reply in items:
        markup.row(
            InlineKeyboardButton("➤ " + _clip(reply.text, 40), callback_data=f"{SEND_CANNED}:{reply.id}"),
            InlineKeyboardButton("🗑", callback_data=f"{DELETE_CANNED}:{reply.id}"),
        )
    markup.row(InlineKeyboardButton(t.button_add_reply, callback_data=ADD_CANNED))
    return markup


def cancel_only(t: StaffTexts, prompt: int) -> InlineKeyboardMarkup:
    """Only a Cancel button (under the prompt number `prompt` for a new quick reply)."""
    markup = InlineKeyboardMarkup()
    markup.add(InlineKeyboardButton(t.button_cancel_compose, callback_data=f"{CANCEL}:{prompt}"))
    return markup


def horecas(items: list[Membership]) -> InlineKeyboardMarkup:
    """One button per horeca the account serves; the current one ticked."""
    markup = InlineKeyboardMarkup()
    for item in items:
        label = ("✓ " if item.current else "") + _clip(item.name, 40)
        markup.row(InlineKeyboardButton(label, callback_data=f"{HORECA}:{horeca_key(item.horeca_id)}"))
    return markup
