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

# Callback data: "<prefix>" or "<prefix>:<number>" (":<number>" twice for a toggle). All under 64 bytes.
TOGGLE = "st"  # st:<customer_id>:<page>
OPEN = "so"  # so:<customer_id>
PAGE = "sp"  # sp:<page>
SELECT_ALL = "sa"  # sa:<page>
CLEAR = "sc"  # sc:<page>
WRITE = "sw"  # sw
REPLY = "sr"  # sr:<dialog_message_id>   the Reply button under a customer's message
REPLY_TO = "sy"  # sy:<customer_id>      Reply from an opened dialog
CANCEL = "sx"  # sx
NOOP = "sn"  # sn                       the page counter
SEND_CANNED = "qs"  # qs:<reply_id>
DELETE_CANNED = "qd"  # qd:<reply_id>
ADD_CANNED = "qa"  # qa
HORECA = "sh"  # sh:<horeca key>         a short hash of the horeca id

_NUMERIC = re.compile(r"(st|so|sp|sa|sc|sr|sy|qs|qd):([0-9]{1,19})(?::([0-9]{1,6}))?")
_BARE = re.compile(r"(sw|sx|sn|qa)")
_HORECA = re.compile(r"sh:([0-9a-f]{12})")
_MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Press:
    """A button press decoded from callback data we made."""

    action: str
    number: int = 0  # the id (customer, message, reply) or page the button carries
    page: int = 0  # the cabinet page a toggle was pressed on
    key: str = ""  # a horeca key


def parse(data: str | None) -> Press | None:
    """The press from callback data we made; None for anything else (forged, from an older version)."""
    if not data:
        return None
    if match := _BARE.fullmatch(data):
        return Press(match.group(1))
    if match := _HORECA.fullmatch(data):
        return Press(HORECA, key=match.group(1))
    match = _NUMERIC.fullmatch(data)
    if match is None:
        return None
    action, number, page = match.group(1), int(match.group(2)), match.group(3)
    if number > _MAX_ID or (action == TOGGLE) != (page is not None):
        return None
    return Press(action, number, int(page) if page is not None else 0)


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
            InlineKeyboardButton(item_label(t, item), callback_data=f"{TOGGLE}:{item.customer_id}:{page.page}"),
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
            InlineKeyboardButton(t.button_select_all, callback_data=f"{SELECT_ALL}:{page.page}"),
            InlineKeyboardButton(t.button_clear, callback_data=f"{CLEAR}:{page.page}"),
        )
    if page.selected:
        markup.row(InlineKeyboardButton(t.button_write.format(n=page.selected), callback_data=WRITE))
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


def compose(t: StaffTexts, replies: list[Reply]) -> InlineKeyboardMarkup:
    """Under the "write your message" prompt: the canned replies (one tap sends), and Cancel."""
    markup = InlineKeyboardMarkup()
    for reply in replies[:10]:
        markup.row(InlineKeyboardButton("⚡ " + _clip(reply.text, 40), callback_data=f"{SEND_CANNED}:{reply.id}"))
    markup.row(InlineKeyboardButton(t.button_cancel_compose, callback_data=CANCEL))
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


def cancel_only(t: StaffTexts) -> InlineKeyboardMarkup:
    """Only a Cancel button (while typing a canned reply)."""
    markup = InlineKeyboardMarkup()
    markup.add(InlineKeyboardButton(t.button_cancel_compose, callback_data=CANCEL))
    return markup


def horecas(items: list[Membership]) -> InlineKeyboardMarkup:
    """One button per horeca the account serves; the current one ticked."""
    markup = InlineKeyboardMarkup()
    for item in items:
        label = ("✓ " if item.current else "") + _clip(item.name, 40)
        markup.row(InlineKeyboardButton(label, callback_data=f"{HORECA}:{horeca_key(item.horeca_id)}"))
    return markup
