"""Media arriving at either bot: a Telegram message read into an `Attachment`, and albums collected.

An album reaches a bot as separate messages sharing one `media_group_id`, with no sign of which is last.
`AlbumCollector` keeps them in memory for a short window after the newest one (ALBUM_WINDOW seconds), then
hands the whole album, in message order, to one handler. Telegram delivers an album's messages together,
so a second is plenty; the cost is that an album received in the last second before a kill is lost with it
(its updates were already confirmed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask
from telebot import TeleBot
from telebot.types import Message

from bot.guard import Apologies, guard
from services.media import Attachment, MediaKind, MediaRef

log = logging.getLogger(__name__)

ALBUM_WINDOW = 1.0
CONTENT_TYPES = [kind.value for kind in MediaKind]


def media_ref(message: Message, bot_name: str) -> MediaRef | None:
    """The media of one message (None: a kind we do not pass on, e.g. a poll or a dice)."""
    kind = message.content_type
    caption = message.caption or ""
    if kind == MediaKind.LOCATION and message.location is not None:
        loc = message.location
        return MediaRef(kind, latitude=loc.latitude, longitude=loc.longitude, message_id=message.message_id)
    if kind == MediaKind.VENUE and message.venue is not None:
        venue = message.venue
        return MediaRef(
            kind,
            latitude=venue.location.latitude,
            longitude=venue.location.longitude,
            title=venue.title,
            address=venue.address,
            message_id=message.message_id,
        )
    if kind == MediaKind.CONTACT and message.contact is not None:
        contact = message.contact
        return MediaRef(
            kind,
            phone_number=contact.phone_number,
            first_name=contact.first_name,
            last_name=contact.last_name,
            message_id=message.message_id,
        )
    value: Any = getattr(message, kind, None) if kind in CONTENT_TYPES else None
    if isinstance(value, list):  # photo: sizes, the largest last
        value = value[-1] if value else None
    if value is None or not getattr(value, "file_id", None):
        return None
    return MediaRef(
        kind,
        source_bot=bot_name,
        file_id=value.file_id,
        file_unique_id=value.file_unique_id,
        file_size=getattr(value, "file_size", None),
        file_name=getattr(value, "file_name", None),
        mime_type=getattr(value, "mime_type", None),
        caption=caption,
        message_id=message.message_id,
    )


def attachment(messages: list[Message], bot_name: str) -> Attachment | None:
    """One message's media, or an album's (items in message order, each with its caption)."""
    refs = [ref for ref in (media_ref(m, bot_name) for m in messages) if ref is not None]
    if not refs:
        return None
    return Attachment(tuple(refs), album=len(refs) > 1)


AlbumHandler = Callable[[list[Message], TeleBot], None]


class AlbumCollector:
    """Collects the messages of albums (per bot, chat and media_group_id) and hands each album over once."""

    def __init__(
        self, app: Flask, handler: AlbumHandler, catalog: Callable[[Any], Apologies], window: float = ALBUM_WINDOW
    ) -> None:
        self.app = app
        self.handler = handler
        self.catalog = catalog
        self.window = window
        self._lock = threading.Lock()
        self._albums: dict[tuple[int, int, str], tuple[list[Message], threading.Timer]] = {}

    def add(self, message: Message, bot: TeleBot) -> None:
        """One message of an album: wait for the rest (the window restarts with each)."""
        key = (id(bot), message.chat.id, str(message.media_group_id))
        with self._lock:
            messages, timer = self._albums.get(key, ([], None))
            if timer is not None:
                timer.cancel()
            messages.append(message)
            timer = threading.Timer(self.window, self._flush, args=(key, bot))
            timer.daemon = True
            self._albums[key] = (messages, timer)
            timer.start()

    def _flush(self, key: tuple[int, int, str], bot: TeleBot) -> None:
        with self._lock:
            entry = self._albums.pop(key, None)
        if entry is None:
            return
        messages = sorted(entry[0], key=lambda m: m.message_id)
        run = guard(self.app, lambda first, b: self.handler(messages, b), self.catalog)
        run(messages[0], bot)
