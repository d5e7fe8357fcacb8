"""Drawing a status card: the one place a status message's text and keyboard are made.

The delivery job draws a new card with `resting(card)`; the cancel button's steps draw the same card
with the confirmation question or the "cancel requested" note; a card that loses its keyboard is drawn
with no footer (the cancel hint goes with the button).
"""

from __future__ import annotations

from telebot.types import InlineKeyboardMarkup

from bot import keyboards, texts
from bot.texts import Footer, Texts
from services.status_card import StatusCard


def resting(card: StatusCard) -> Footer:
    """The footer a card shows while nobody is pressing anything: the cancel hint where the button belongs, the
    rating under a completed order's card."""
    if card.button:
        return Footer.HINT
    return Footer.RATE if card.rateable else Footer.NONE


def draw(
    card: StatusCard, footer: Footer, t: Texts | None = None, rating: int | None = None
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The card's text with `footer`, and the keyboard that goes with that footer (in the card's language unless `t`).

    `rating`: the stars the customer gave, shown under a completed order's card (Footer.RATE).
    """
    t = t or texts.for_language(card.language)
    text = t.status_message(card.order_id, card.cafe, card.status, card.text, footer)
    if footer == Footer.RATE:
        return f"{text}\n\n{t.rating_footer(rating)}", keyboards.rating(card.order_pk, rating)
    if footer == Footer.HINT:
        return text, keyboards.cancel(t, card.order_pk)
    if footer == Footer.CONFIRM:
        return text, keyboards.confirm(t, card.order_pk)
    return text, None
