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


# --- the rating of a completed order (issue 11) ------------------------------------------------------

RATE = "r"  # r:<order_pk>:<1-5>   a star under a completed order's card
_RATING = re.compile(r"r:([1-9][0-9]{0,18}):([1-5])")


def parse_rating(data: str | None) -> tuple[int, int] | None:
    """(order_pk, stars) from a rating button we made; None for anything else."""
    match = _RATING.fullmatch(data or "")
    if match is None or int(match.group(1)) > _MAX_PK:
        return None
    return int(match.group(1)), int(match.group(2))


def rating(order_pk: int, chosen: int | None = None) -> InlineKeyboardMarkup:
    """1 to 5 stars in one row; the chosen one marked (a tap on another changes it)."""
    markup = InlineKeyboardMarkup()
    markup.row(
        *(InlineKeyboardButton(f"{'✓' if n == chosen else ''}{n}★", callback_data=f"{RATE}:{order_pk}:{n}") for n in range(1, 6))
    )
    return markup
