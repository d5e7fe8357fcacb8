"""What the delivery job sends for one outbox row (a renderer's result); the table of renderers is bot/renderers.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from telebot.types import InlineKeyboardMarkup

from services.delivery import Job
from services.media import CAPTIONED, MAX_CAPTION, MediaRef


@dataclass(frozen=True)
class MediaBody:
    """A file, location, venue or contact. The text is its caption where the kind has one and the text fits;
    otherwise the text goes first, as a message with the markup, and the media follows as a reply to it."""

    ref: MediaRef


@dataclass(frozen=True)
class AlbumBody:
    """An album (sendMediaGroup), each item with its own caption; the text goes first with the markup."""

    items: tuple[MediaRef, ...]


@dataclass(frozen=True)
class EditBody:
    """An edit of the message another row (`of_outbox_id`) became: its text, or its caption (`caption`).
    Where Telegram cannot edit it, `fallback` is sent as a new message."""

    of_outbox_id: int
    caption: bool
    fallback: str


Body = MediaBody | AlbumBody | EditBody


def carries_text(ref: MediaRef, text: str) -> bool:
    """Whether a row's text rides as the media's caption (else it goes first, as its own message)."""
    return ref.kind in CAPTIONED and len(text) <= MAX_CAPTION


@dataclass(frozen=True)
class Rendered:
    """What to send for one outbox row."""

    text: str
    markup: InlineKeyboardMarkup | None = None
    supersedes: bool = False  # once sent, older messages of the same order lose their buttons
    body: Body | None = None  # media or an edit (bot/workers/media_send.py); None: a text message
    swept: bool = True  # the keyboard is one the delivery sweep takes off (the Cancel one); not the rating stars
    topic: bool = False  # into the customer's topic of the staff group (bot/staff/topics.send opens it when needed)

    @property
    def has_button(self) -> bool:
        """Recorded as `has_button`: the message carries a keyboard the sweep looks after."""
        return self.markup is not None and self.swept


class NoRenderer(LookupError):
    """No renderer for a (bot, kind): the row waits (and is retried) until a version that has one is deployed."""


Renderer = Callable[[Job], Rendered]
