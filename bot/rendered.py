"""What the delivery job sends for one outbox row (a renderer's result); the table of renderers is bot/renderers.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from telebot.types import InlineKeyboardMarkup

from services.delivery import Job


@dataclass(frozen=True)
class Rendered:
    """What to send for one outbox row."""

    text: str
    markup: InlineKeyboardMarkup | None = None
    supersedes: bool = False  # once sent, older messages of the same order lose their buttons
    swept: bool = True  # the keyboard is one the delivery sweep takes off (the Cancel one); not the rating stars

    @property
    def has_button(self) -> bool:
        """Recorded as `has_button`: the message carries a keyboard the sweep looks after."""
        return self.markup is not None and self.swept


class NoRenderer(LookupError):
    """No renderer for a (bot, kind): the row waits (and is retried) until a version that has one is deployed."""


Renderer = Callable[[Job], Rendered]
