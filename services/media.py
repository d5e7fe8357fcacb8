"""Media in the staff dialogs: what a message carries besides text, and the file_id of each file per bot.

A `file_id` belongs to the bot that received the file; the other bot must download it (getFile, 20 MB at
most) and upload it again. `media_uploads` keeps the file_id an upload gave, keyed by Telegram's
`file_unique_id` (the same for every bot) and the bot, so a file goes up once per bot: a photo broadcast to
200 customers is one upload, then 199 sends by file_id.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from database import reading, transaction
from models import MediaUpload, OutboxMessage, db, utcnow

MAX_DOWNLOAD = 20 * 1024 * 1024  # the Bot API's getFile limit: bigger files cannot be passed on
MAX_CAPTION = 1024  # Telegram's caption limit (the header a copy adds counts too)


class MediaKind(StrEnum):
    PHOTO = "photo"
    DOCUMENT = "document"
    VOICE = "voice"
    AUDIO = "audio"
    VIDEO = "video"
    VIDEO_NOTE = "video_note"
    STICKER = "sticker"
    ANIMATION = "animation"
    LOCATION = "location"
    VENUE = "venue"
    CONTACT = "contact"


FILE_KINDS = frozenset(
    {
        MediaKind.PHOTO,
        MediaKind.DOCUMENT,
        MediaKind.VOICE,
        MediaKind.AUDIO,
        MediaKind.VIDEO,
        MediaKind.VIDEO_NOTE,
        MediaKind.STICKER,
        MediaKind.ANIMATION,
    }
)
CAPTIONED = frozenset(FILE_KINDS - {MediaKind.VIDEO_NOTE, MediaKind.STICKER})  # the kinds that carry a caption
ALBUM = "album"


@dataclass(frozen=True)
class MediaRef:
    """One piece of media: a file of the bot that received it (`source_bot`), or a location, venue or contact."""

    kind: str
    source_bot: str | None = None
    file_id: str | None = None  # the source bot's
    file_unique_id: str | None = None
    file_size: int | None = None
    file_name: str | None = None
    mime_type: str | None = None
    caption: str = ""  # an album item's own caption
    message_id: int | None = None  # the message in the writer's chat
    latitude: float | None = None
    longitude: float | None = None
    title: str | None = None
    address: str | None = None
    phone_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    @property
    def is_file(self) -> bool:
        return self.kind in FILE_KINDS

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediaRef:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Attachment:
    """What a message carries besides its text: one piece of media, or an album (2–10, in order, with captions)."""

    items: tuple[MediaRef, ...]
    album: bool = False

    @property
    def kind(self) -> str:
        return ALBUM if self.album else self.items[0].kind

    @property
    def too_big(self) -> bool:
        """A file over the getFile limit: the other bot could never fetch it."""
        return any(item.is_file and (item.file_size or 0) > MAX_DOWNLOAD for item in self.items)

    @property
    def caption(self) -> str:
        """The caption of the message (an album's: its first caption)."""
        return next((item.caption for item in self.items if item.caption), "")

    def as_json(self) -> str:
        data: dict[str, Any] = (
            {"type": ALBUM, "items": [item.as_dict() for item in self.items]} if self.album else self.items[0].as_dict()
        )
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    def as_payload(self) -> dict[str, Any]:
        return json.loads(self.as_json())  # type: ignore[no-any-return]


def parse(value: str | dict[str, Any] | None) -> Attachment | None:
    """The attachment stored with a dialog message or an outbox payload (None: text only, or unreadable)."""
    if value is None or value == "":
        return None
    try:
        data = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if data.get("type") == ALBUM:
        items = [MediaRef.from_dict(item) for item in data.get("items") or [] if isinstance(item, dict) and item.get("kind")]
        return Attachment(tuple(items), album=True) if items else None
    if not data.get("kind"):
        return None
    return Attachment((MediaRef.from_dict(data),))


# --- the file_id of each file per bot ----------------------------------------------------------------


def cached_file_id(file_unique_id: str, bot: str) -> str | None:
    """The file_id a former upload through `bot` gave this file, if any."""
    with reading():
        return db.session.scalar(
            select(MediaUpload.file_id).where(MediaUpload.file_unique_id == file_unique_id, MediaUpload.bot == bot)
        )


def remember_upload(file_unique_id: str, bot: str, file_id: str) -> None:
    """Keep the file_id an upload through `bot` gave (a racing process may have kept one already: that one stays)."""
    try:
        with transaction():
            db.session.add(MediaUpload(file_unique_id=file_unique_id, bot=bot, file_id=file_id, created_at=utcnow()))
    except IntegrityError:
        pass


def sent_message_id(outbox_id: int) -> int | None:
    """The Telegram message an outbox row became (None while it is not sent, or if it never was)."""
    with reading():
        return db.session.scalar(select(OutboxMessage.telegram_message_id).where(OutboxMessage.id == outbox_id))
