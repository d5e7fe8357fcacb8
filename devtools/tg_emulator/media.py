"""Media and edits in the emulator: files with real bytes, per-bot file ids, getFile, media groups, user edits.

Kept apart from core.py: `Emulator` mixes `MediaMixin` in and registers `media_methods()`. As in Telegram:

- a file is stored once, under a `file_unique_id` the same for every bot; each bot that sees it gets its own
  `file_id`, and a bot may send only its own file ids (another bot's: "wrong file identifier");
- `getFile` gives a `file_path` for `/file/bot<token>/<file_path>`, and refuses files over 20 MB;
- `sendMediaGroup` takes 2–10 photos/videos (or documents, or audios), uploaded (`attach://<name>`) or by file id;
- a user's edit of their message reaches the bot as an `edited_message` update.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import secrets
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .formatting import ApiError, bad_request, json_param, parse_reply_markup, render_text, utf16_len

if TYPE_CHECKING:
    from .core import Bot, Message, User

MAX_DOWNLOAD = 20 * 1024 * 1024  # getFile: the Bot API's download limit
MAX_CAPTION = 1024
# method → (parameter holding the file, the message field, a default MIME type and file name)
FILE_METHODS: dict[str, tuple[str, str, str, str]] = {
    "sendPhoto": ("photo", "photo", "image/jpeg", "photo.jpg"),
    "sendDocument": ("document", "document", "application/octet-stream", "file"),
    "sendVoice": ("voice", "voice", "audio/ogg", "voice.ogg"),
    "sendAudio": ("audio", "audio", "audio/mpeg", "audio.mp3"),
    "sendVideo": ("video", "video", "video/mp4", "video.mp4"),
    "sendVideoNote": ("video_note", "video_note", "video/mp4", "video_note.mp4"),
    "sendSticker": ("sticker", "sticker", "image/webp", "sticker.webp"),
    "sendAnimation": ("animation", "animation", "video/mp4", "animation.mp4"),
}
NO_CAPTION = frozenset({"video_note", "sticker"})
KINDS = frozenset(kind for _, kind, _, _ in FILE_METHODS.values())
GROUP_KINDS = frozenset({"photo", "video", "document", "audio"})
WRONG_FILE_ID = "wrong file identifier/HTTP URL specified"
Caption = tuple[str, str, list[dict[str, Any]], str | None]  # _caption's (as sent, as shown, entities, parse mode)


@dataclass
class StoredFile:
    """One file's bytes (shared by every bot) and what Telegram tells about it."""

    unique_id: str
    kind: str
    data: bytes
    file_name: str | None
    mime_type: str | None
    path: str
    width: int = 0
    height: int = 0


@dataclass
class MediaState:
    """Files and per-bot file ids; survives /control/reset like the files on Telegram's servers."""

    files: dict[str, StoredFile] = field(default_factory=dict)  # unique id → file
    by_path: dict[str, str] = field(default_factory=dict)  # file_path → unique id
    file_ids: dict[str, tuple[int, str]] = field(default_factory=dict)  # file_id → (bot id, unique id)
    bot_file_ids: dict[tuple[int, str], str] = field(default_factory=dict)  # (bot id, unique id) → file_id
    groups: itertools.count[int] = field(default_factory=lambda: itertools.count(13_000_000_000_000_000))


def _image_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG or JPEG (0, 0 for anything else)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + length
    return 0, 0


def decode_data(value: Any) -> bytes:
    """Bytes from base64 text (a `data:` URL too), for the control API."""
    text = str(value or "")
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("data must be base64") from None


class MediaMixin:
    """The media half of `Emulator` (see the module docstring); uses the core's users, bots, lock and helpers."""

    lock: threading.RLock
    users: dict[int, User]
    messages_cond: threading.Condition
    media: MediaState
    _chat_user: Callable[..., User]
    _rate_check: Callable[[Bot, int | None], None]
    _next_message_id: Callable[[Bot, int], int]
    _message_json: Callable[[Bot, Message], dict[str, Any]]
    _enqueue: Callable[[Bot, str, dict[str, Any]], int | None]
    _apply_edit: Callable[..., dict[str, Any]]
    _message_to_edit: Callable[[Bot, dict[str, Any]], Message]
    _active_user: Callable[[Bot, int], User]
    resolve_bot: Callable[[Any], Bot]

    def media_methods(self) -> dict[str, Callable[[Bot, dict[str, Any]], Any]]:
        """The Bot API methods of this section, for core's method table."""
        methods: dict[str, Callable[[Bot, dict[str, Any]], Any]] = {
            name: (lambda bot, p, name=name: self._send_file(bot, p, name)) for name in FILE_METHODS
        }
        methods.update(
            {
                "sendLocation": self._send_location,
                "sendVenue": self._send_venue,
                "sendContact": self._send_contact,
                "sendMediaGroup": self._send_media_group,
                "getFile": self._get_file,
                "editMessageCaption": self._edit_message_caption,
            }
        )
        return methods

    # --- files -------------------------------------------------------------------------------------

    def store_file(self, kind: str, data: bytes, file_name: str | None, mime_type: str | None) -> StoredFile:
        """Keep uploaded bytes; the same bytes of the same kind are one file (one unique id), as in Telegram."""
        unique_id = "AQAD" + hashlib.blake2b(kind.encode() + b":" + data, digest_size=12).hexdigest()
        stored = self.media.files.get(unique_id)
        if stored is None:
            width, height = _image_size(data) if kind in ("photo", "sticker") else (0, 0)
            suffix = (file_name or "").rpartition(".")[2] if file_name and "." in file_name else "bin"
            path = f"{kind}s/file_{len(self.media.files)}.{suffix}"
            stored = StoredFile(unique_id, kind, data, file_name, mime_type, path, width, height)
            self.media.files[unique_id] = stored
            self.media.by_path[path] = unique_id
        return stored

    def file_id_for(self, bot: Bot, stored: StoredFile) -> str:
        """The bot's own file id of a file (made on first sight)."""
        key = (bot.id, stored.unique_id)
        file_id = self.media.bot_file_ids.get(key)
        if file_id is None:
            file_id = "BQAC" + secrets.token_urlsafe(24)
            self.media.bot_file_ids[key] = file_id
            self.media.file_ids[file_id] = key
        return file_id

    def _own_file(self, bot: Bot, file_id: str) -> StoredFile:
        owner = self.media.file_ids.get(file_id)
        if owner is None or owner[0] != bot.id:
            raise bad_request(WRONG_FILE_ID)  # Telegram: a file id is valid only for the bot that got it
        return self.media.files[owner[1]]

    def _input_file(self, bot: Bot, p: dict[str, Any], value: Any, kind: str, default_name: str) -> StoredFile:
        """An uploaded file (multipart) or a file id of this bot."""
        if isinstance(value, dict) and isinstance(value.get("data"), bytes):
            name = str(value.get("filename") or default_name)
            stored = self.store_file(kind, value["data"], name, value.get("content_type"))
            bot.counts["uploads"] += 1
            return stored
        if isinstance(value, str) and value.startswith("attach://"):
            return self._input_file(bot, p, p.get(value[len("attach://") :]), kind, default_name)
        if isinstance(value, str) and value.strip():
            if value.startswith(("http://", "https://")):
                raise bad_request("failed to get HTTP URL content")  # the emulator fetches nothing from the web
            stored = self._own_file(bot, value.strip())
            if stored.kind != kind and not (kind == "document"):
                raise bad_request(f"can't use file of type {stored.kind.title()} as {kind.title()}")
            return stored
        raise bad_request(f"there is no {kind} in the request")

    def file_json(self, bot: Bot, stored: StoredFile, kind: str) -> Any:
        """The message field for a file (PhotoSize list for photos), with this bot's file id."""
        d: dict[str, Any] = {
            "file_id": self.file_id_for(bot, stored),
            "file_unique_id": stored.unique_id,
            "file_size": len(stored.data),
        }
        if kind == "photo":
            return [{**d, "width": stored.width, "height": stored.height}]
        if kind == "sticker":
            return {
                **d,
                "width": stored.width or 512,
                "height": stored.height or 512,
                "type": "regular",
                "is_animated": False,
                "is_video": False,
            }
        if kind in ("document", "audio", "video", "animation") and stored.file_name:
            d["file_name"] = stored.file_name
        if kind != "video_note" and stored.mime_type:
            d["mime_type"] = stored.mime_type
        if kind in ("voice", "audio", "video", "video_note", "animation"):
            d["duration"] = 1
        if kind == "video_note":
            d["length"] = 240
        if kind in ("video", "animation"):
            d["width"], d["height"] = 640, 360
        return d

    def _get_file(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        stored = self._own_file(bot, str(p.get("file_id") or "").strip())
        if len(stored.data) > MAX_DOWNLOAD:
            raise bad_request("file is too big")
        return {
            "file_id": self.file_id_for(bot, stored),
            "file_unique_id": stored.unique_id,
            "file_size": len(stored.data),
            "file_path": stored.path,
        }

    def download(self, bot: Bot, path: str) -> StoredFile | None:
        """`/file/bot<token>/<path>`: the bytes, for a bot that knows the file (None: 404)."""
        with self.lock:
            unique_id = self.media.by_path.get(path)
            if unique_id is None or (bot.id, unique_id) not in self.media.bot_file_ids:
                return None
            stored = self.media.files[unique_id]
            if len(stored.data) > MAX_DOWNLOAD:
                return None
            bot.counts["downloads"] += 1
            return stored

    def file_by_unique_id(self, unique_id: str) -> StoredFile | None:
        """A file's bytes for the sandbox page (`/media/<file_unique_id>`)."""
        with self.lock:
            return self.media.files.get(unique_id)

    # --- sending -----------------------------------------------------------------------------------

    def _caption(self, p: dict[str, Any], kind: str) -> tuple[str, str, list[dict[str, Any]], str | None]:
        caption = p.get("caption")
        if caption in (None, "") or kind in NO_CAPTION:
            return "", "", [], None
        parse_mode = p.get("parse_mode") or None
        plain, entities = render_text(str(caption), parse_mode, p.get("caption_entities"))
        if utf16_len(plain) > MAX_CAPTION:
            raise bad_request("message caption is too long")
        return str(caption), plain, entities, parse_mode

    def _post(
        self,
        bot: Bot,
        user: User,
        media: dict[str, Any],
        p: dict[str, Any],
        caption: tuple[str, str, list[dict[str, Any]], str | None],
    ) -> Message:
        from .core import Message

        text, plain, entities, parse_mode = caption
        markup = parse_reply_markup(p.get("reply_markup"))
        now = time.time()
        options: dict[str, Any] = {}
        if p.get("reply_parameters") not in (None, ""):
            options["reply_parameters"] = json_param(p["reply_parameters"], "reply_parameters")
        msg = Message(
            chat_id=user.id,
            message_id=self._next_message_id(bot, user.id),
            outgoing=True,
            text=text,
            plain=plain,
            entities=entities,
            parse_mode=parse_mode,
            reply_markup=markup,
            date=int(now),
            received_at=now,
            options=options,
            media=media,
        )
        msg.original = {"text": text, "parse_mode": parse_mode, "reply_markup": markup}
        bot.messages.setdefault(user.id, {})[msg.message_id] = msg
        bot.counts["sent"] += 1
        self.messages_cond.notify_all()
        return msg

    def _send_file(self, bot: Bot, p: dict[str, Any], method: str) -> dict[str, Any]:
        param, kind, mime, name = FILE_METHODS[method]
        user = self._chat_user(bot, p)
        stored = self._input_file(bot, p, p.get(param), kind, name)
        caption = self._caption(p, kind)
        self._rate_check(bot, user.id)
        msg = self._post(bot, user, {"type": kind, "unique_id": stored.unique_id}, p, caption)
        return self._message_json(bot, msg)

    def _send_location(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        return self._send_place(bot, p, "location")

    def _send_venue(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        return self._send_place(bot, p, "venue")

    def _send_contact(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        return self._send_place(bot, p, "contact")

    def _send_place(self, bot: Bot, p: dict[str, Any], kind: str) -> dict[str, Any]:
        user = self._chat_user(bot, p)
        media = self._place(p, kind)
        self._rate_check(bot, user.id)
        return self._message_json(bot, self._post(bot, user, media, p, ("", "", [], None)))

    def _place(self, p: dict[str, Any], kind: str) -> dict[str, Any]:
        """The media of sendLocation, sendVenue or sendContact (validated)."""
        if kind == "contact":
            phone, first = str(p.get("phone_number") or ""), str(p.get("first_name") or "")
            if not phone or not first:
                raise bad_request("phone_number and first_name are required")
            contact = {"phone_number": phone, "first_name": first}
            if p.get("last_name"):
                contact["last_name"] = str(p["last_name"])
            return {"type": "contact", "contact": contact}
        location = self._location(p)
        if kind == "location":
            return {"type": "location", "location": location}
        title, address = str(p.get("title") or ""), str(p.get("address") or "")
        if not title or not address:
            raise bad_request("venue title and address are required")
        return {"type": "venue", "venue": {"location": location, "title": title, "address": address}}

    @staticmethod
    def _location(p: dict[str, Any]) -> dict[str, float]:
        try:
            latitude, longitude = float(p.get("latitude")), float(p.get("longitude"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise bad_request("wrong latitude or longitude") from None
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise bad_request("wrong latitude or longitude")
        return {"latitude": latitude, "longitude": longitude}

    def _send_media_group(self, bot: Bot, p: dict[str, Any]) -> list[dict[str, Any]]:
        user = self._chat_user(bot, p)
        prepared = self._album_items(bot, p)
        self._rate_check(bot, user.id)
        group = str(next(self.media.groups))
        sent = []
        for kind, stored, caption in prepared:
            media = {"type": kind, "unique_id": stored.unique_id, "media_group_id": group}
            sent.append(self._message_json(bot, self._post(bot, user, media, {}, caption)))
        return sent

    def _album_items(self, bot: Bot, p: dict[str, Any]) -> list[tuple[str, StoredFile, Caption]]:
        """sendMediaGroup's items (validated, files stored): (kind, file, caption) each."""
        items = json_param(p.get("media"), "media")
        if not isinstance(items, list) or not 2 <= len(items) <= 10:
            raise bad_request("wrong number of media in the album: 2–10 are allowed")
        kinds = {str(item.get("type")) if isinstance(item, dict) else "" for item in items}
        if not kinds <= GROUP_KINDS or ("document" in kinds or "audio" in kinds) and len(kinds) > 1:
            raise bad_request("MEDIA_INVALID: documents and audios can be grouped only with their own kind")
        prepared = []
        for item in items:
            kind = str(item["type"])
            stored = self._input_file(bot, p, item.get("media"), kind, FILE_METHODS[f"send{kind.title()}"][3])
            prepared.append((kind, stored, self._caption(item, kind)))
        return prepared

    # --- edits -------------------------------------------------------------------------------------

    def _edit_message_caption(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        msg = self._message_to_edit(bot, p)
        kind = (msg.media or {}).get("type")
        if kind is None or kind in NO_CAPTION or kind in ("location", "venue", "contact"):
            raise bad_request("there is no caption in the message to edit")
        text, plain, entities, parse_mode = self._caption(p, kind)
        markup = parse_reply_markup(p.get("reply_markup"), inline_only=True)
        if plain == msg.plain and entities == msg.entities and markup == msg.inline_markup:
            from .core import NOT_MODIFIED

            raise bad_request(NOT_MODIFIED)
        return self._apply_edit(bot, msg, text=text, plain=plain, entities=entities, parse_mode=parse_mode, reply_markup=markup)

    # --- what a message shows ----------------------------------------------------------------------

    def media_fields(self, bot: Bot, msg: Message, d: dict[str, Any]) -> None:
        """Turn a message's JSON into a media message's: the file field, the caption instead of the text."""
        media = msg.media
        if not media:
            return
        kind = media["type"]
        d.pop("text", None)
        entities = d.pop("entities", None)
        if kind in ("location", "venue", "contact"):
            d[kind] = media[kind]
            if kind == "venue":
                d["location"] = media["venue"]["location"]
            return
        d[kind] = self.file_json(bot, self.media.files[media["unique_id"]], kind)
        if media.get("media_group_id"):
            d["media_group_id"] = media["media_group_id"]
        if msg.plain:
            d["caption"] = msg.plain
            if entities:
                d["caption_entities"] = entities

    def media_record(self, msg: Message) -> dict[str, Any] | None:
        """The control API's view of a message's media (the page and tests; file bytes at /media/<unique id>)."""
        media = msg.media
        if not media:
            return None
        record = {k: v for k, v in media.items() if k != "unique_id"}
        if "unique_id" in media:
            stored = self.media.files[media["unique_id"]]
            record.update(
                file_unique_id=stored.unique_id,
                file_size=len(stored.data),
                file_name=stored.file_name,
                mime_type=stored.mime_type,
                url=f"/media/{stored.unique_id}",
            )
        return record

    # --- the user's side (control API) -------------------------------------------------------------

    def _user_post(self, bot: Bot, user: User, media: dict[str, Any] | None, caption: str) -> Message:
        from .core import Message

        now = time.time()
        msg = Message(
            chat_id=user.id,
            message_id=self._next_message_id(bot, user.id),
            outgoing=False,
            text=caption,
            plain=caption,
            entities=[],
            parse_mode=None,
            reply_markup=None,
            date=int(now),
            received_at=now,
            media=media,
        )
        bot.messages.setdefault(user.id, {})[msg.message_id] = msg
        return msg

    def _user_media(self, bot: Bot | None, item: dict[str, Any], group: str | None) -> dict[str, Any]:
        kind = str(item.get("type") or "")
        if kind in ("location", "venue", "contact"):
            p = dict(item)
            try:
                if kind == "contact":
                    contact = {"phone_number": str(p["phone_number"]), "first_name": str(p["first_name"])}
                    return {"type": kind, "contact": contact}
                location = self._location(p)
                if kind == "venue":
                    return {"type": kind, "venue": {"location": location, "title": str(p["title"]), "address": str(p["address"])}}
                return {"type": kind, "location": location}
            except (KeyError, ApiError) as exc:
                from .core import ControlError

                raise ControlError(400, f"{kind}: missing or wrong fields ({exc})") from None
        if kind not in KINDS:
            from .core import ControlError

            raise ControlError(400, f"type must be one of {', '.join(sorted(KINDS | {'location', 'venue', 'contact'}))}")
        if item.get("size") not in (None, ""):
            data = b"\0" * int(item["size"])  # a big file without sending its bytes (the 20 MB limit)
        else:
            try:
                data = decode_data(item.get("data"))
            except ValueError as exc:
                from .core import ControlError

                raise ControlError(400, str(exc)) from None
        if not data:
            from .core import ControlError

            raise ControlError(400, "data (base64) or size is required")
        method = next(m for m, spec in FILE_METHODS.items() if spec[1] == kind)
        _, _, mime, name = FILE_METHODS[method]
        stored = self.store_file(kind, data, str(item.get("file_name") or name), str(item.get("mime_type") or mime))
        media: dict[str, Any] = {"type": kind, "unique_id": stored.unique_id}
        if group:
            media["media_group_id"] = group
        return media

    def send_media(self, data: dict[str, Any]) -> dict[str, Any]:
        """The user sends media (`type` + base64 `data`, or `size` for a filler file), or an album (`album`: a list)."""
        from .core import ControlError, _ctl_int

        with self.lock:
            bot = self.resolve_bot(data.get("bot"))
            user_id = _ctl_int(data, "user_id")
            assert user_id is not None
            user = self._active_user(bot, user_id)
            album = data.get("album")
            if album is not None:
                if not isinstance(album, list) or not 2 <= len(album) <= 10:
                    raise ControlError(400, "album must be a list of 2 to 10 items")
                group = str(next(self.media.groups))
                items = [(self._user_media(bot, dict(item), group), str(item.get("caption") or "")) for item in album]
            else:
                items = [(self._user_media(bot, data, None), str(data.get("caption") or ""))]
            sent = []
            for media, caption in items:
                msg = self._user_post(bot, user, media, caption if media["type"] not in NO_CAPTION else "")
                update_id = self._enqueue(bot, "message", self._message_json(bot, msg))
                sent.append({"update_id": update_id, "message_id": msg.message_id})
            self.messages_cond.notify_all()
            return sent[0] if album is None else {"messages": sent}

    def edit_by_user(self, data: dict[str, Any]) -> dict[str, Any]:
        """The user edits one of their messages (`text`, or `caption` of a media message): an edited_message update."""
        from .core import ControlError, _ctl_int

        with self.lock:
            bot = self.resolve_bot(data.get("bot"))
            user_id, message_id = _ctl_int(data, "user_id"), _ctl_int(data, "message_id")
            assert user_id is not None and message_id is not None
            self._active_user(bot, user_id)
            msg = bot.messages.get(user_id, {}).get(message_id)
            if msg is None or msg.outgoing or msg.deleted:
                raise ControlError(400, f"user message {message_id} not found in chat {user_id}")
            new = data.get("caption") if msg.media else data.get("text")
            if not isinstance(new, str) or (not new and not msg.media):
                raise ControlError(400, "caption is required" if msg.media else "text is required")
            if msg.media and msg.media["type"] in NO_CAPTION | {"location", "venue", "contact"}:
                raise ControlError(400, "this message has no caption to edit")
            now = time.time()
            msg.text = msg.plain = new
            msg.edit_date = int(now)
            msg.edits.append({"text": new, "at": now})
            update_id = self._enqueue(bot, "edited_message", self._message_json(bot, msg))
            self.messages_cond.notify_all()
            return {"update_id": update_id, "message_id": message_id}
