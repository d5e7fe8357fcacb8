"""Drawing a status card: the one place a status message's text and keyboard are made.

The delivery job draws a new card with `resting(card)`; the cancel button's steps draw the same card
with the confirmation question or the "cancel requested" note; a card that loses its keyboard is drawn
with no footer (the cancel hint goes with the button).

A cafe's own template for the status (its profile, issue 11) replaces the catalog's status line; what the
template shows ({text}, {eta}, {pickup_code}) is not repeated on a line of its own. The ETA is Telegram's
date_time entity: the customer's app shows it in their own time; the text inside it (the cafe's time) is
what an app without date_time support shows.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import escape, unescape

from telebot.types import InlineKeyboardMarkup

from bot import keyboards, texts
from bot.texts import Footer, Texts
from services import cafes
from services.status_card import StatusCard

SAME_DAY = timedelta(hours=12)  # an ETA closer than this shows the time alone; a later one the date too
MISSING = "—"  # what a template shows for an ETA or pickup code the backend has not sent
# Telegram refuses a text over 4096 UTF-16 units: a card stays below it whatever the cafe and the backend sent.
MESSAGE_LIMIT = 4096
LINE_LIMIT = 2000  # the cafe's line, filled (its own 1,000 characters always fit)
ITEMS_LIMIT = 1000  # the item lines together


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
    text = _compose(card, footer, t, card.template(t.lang), ITEMS_LIMIT)
    if units(text) > MESSAGE_LIMIT:  # only a long template and a long list together: the built-in line, no items
        text = _compose(card, footer, t, None, 0)
    if footer == Footer.RATE:
        return f"{text}\n\n{t.rating_footer(rating)}", keyboards.rating(card.order_pk, rating)
    if footer == Footer.HINT:
        return text, keyboards.cancel(t, card.order_pk)
    if footer == Footer.CONFIRM:
        return text, keyboards.confirm(t, card.order_pk)
    return text, None


def _compose(card: StatusCard, footer: Footer, t: Texts, template: str | None, items_limit: int) -> str:
    shown: set[str] = set()
    line = None
    if template is not None:
        line = fill(template, card)
        shown = {name for _, name in cafes.pieces(template) if name is not None}
    return t.status_message(
        card.order_id,
        card.cafe,
        card.status,
        None if "text" in shown else card.text,
        footer,
        line=line,
        details=details(card, t, shown, items_limit),
    )


_TAG = re.compile(r"<[^>]*>")


def units(markup: str) -> int:
    """The length Telegram measures (UTF-16 code units of the text without its markup) of our own markup."""
    return len(unescape(_TAG.sub("", markup)).encode("utf-16-le")) // 2


def draw_note(card: StatusCard, t: Texts | None = None) -> str:
    """A text about the order without a status: the order's title and the text."""
    t = t or texts.for_language(card.language)
    title = t.order_title.format(order_id=escape(card.order_id), cafe=escape(card.cafe))
    return f"{title}\n{escape(card.text or '')}"


def eta(card: StatusCard, now: datetime | None = None) -> str:
    """The ETA as markup: a date_time entity around the time in the cafe's timezone; empty without one."""
    if card.details.eta is None:
        return ""
    moment = card.details.eta.replace(tzinfo=UTC)
    local = moment.astimezone(cafes.zone(card.timezone))
    now = now or datetime.now(UTC)
    same_day = abs(moment - now) < SAME_DAY
    shown, fmt = (local.strftime("%H:%M"), "t") if same_day else (local.strftime("%d.%m %H:%M"), "dt")
    return f'<tg-time unix="{int(moment.timestamp())}" format="{fmt}">{shown}</tg-time>'


def fill(template: str, card: StatusCard) -> str:
    """The cafe's template as markup: its text escaped, each placeholder replaced by its escaped value (an ETA or
    pickup code not sent yet by MISSING, a missing text by nothing)."""
    values = {
        "order_id": escape(card.order_id),
        "cafe": escape(card.cafe),
        "eta": eta(card) or MISSING,
        "pickup_code": escape(card.details.pickup_code or MISSING),
        "text": escape(card.text or ""),
    }
    out: list[str] = []
    used = 0
    for literal, name in cafes.pieces(template):
        for piece in (escape(literal), values.get(name, "") if name else ""):
            size = units(piece)
            if used + size > LINE_LIMIT:  # {text} ten times over: the line stops here
                return "".join(out) + "…"
            out.append(piece)
            used += size
    return "".join(out)


def details(card: StatusCard, t: Texts, shown: set[str], items_limit: int = ITEMS_LIMIT) -> list[str]:
    """The order's details as lines of markup, leaving out what the cafe's template already shows; the items
    while they fit in `items_limit` UTF-16 units, then how many more."""
    d = card.details
    items = d.items or ()
    lines: list[str] = []
    used = 0
    for n, i in enumerate(items):
        line = t.item_line.format(name=escape(i.name), qty=i.qty)
        used += units(line) + 1
        if used > items_limit:
            lines.append(f"… +{len(items) - n}")
            break
        lines.append(line)
    if d.total is not None:
        lines.append(t.total_line.format(total=escape(d.total)))
    if d.eta is not None and "eta" not in shown:
        lines.append(t.eta_line.format(eta=eta(card)))
    if d.pickup_code is not None and "pickup_code" not in shown:
        lines.append(t.pickup_line.format(pickup_code=escape(d.pickup_code)))
    return lines
