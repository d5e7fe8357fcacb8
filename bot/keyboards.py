"""Inline keyboards of the customer bot and the callback data they carry (validated strictly on the way back)."""

from __future__ import annotations

import re

from telebot.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.texts import Texts

CANCEL = "c"  # c:<order_pk>   "Cancel order" pressed: ask for confirmation
CONFIRM = "cy"  # cy:<order_pk> "Yes, cancel"
KEEP = "cn"  # cn:<order_pk>   "No": keep the order, bring the Cancel button back

_CALLBACK = re.compile(r"(c|cy|cn):([1-9][0-9]{0,18})")
_MAX_PK = 2**63 - 1


def parse(data: str | None) -> tuple[str, int] | None:
    """(action, order_pk) from callback data we made; None for anything else."""
    if not data:
        return None
    match = _CALLBACK.fullmatch(data)
    if match is None:
        return None
    pk = int(match.group(2))
    if pk > _MAX_PK:
        return None
    return match.group(1), pk


def cancel(t: Texts, order_pk: int) -> InlineKeyboardMarkup:
    """The single live button under the newest message of a cancellable order."""
    markup = InlineKeyboardMarkup()
    markup.add(InlineKeyboardButton(t.button_cancel, callback_data=f"{CANCEL}:{order_pk}"))
    return markup


def confirm(t: Texts, order_pk: int) -> InlineKeyboardMarkup:
    """Yes / No, shown after "Cancel order" was pressed."""
    markup = InlineKeyboardMarkup()
    markup.row(
        InlineKeyboardButton(t.button_yes, callback_data=f"{CONFIRM}:{order_pk}"),
        InlineKeyboardButton(t.button_no, callback_data=f"{KEEP}:{order_pk}"),
    )
    return markup
