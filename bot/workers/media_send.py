"""The delivery worker's send call for media and edits (`Rendered.body`); plain text stays in bot/workers/telegram.py.

A file received by one bot is sent by the other: its `file_id` is no use there, so the file is downloaded
through the bot that received it (getFile, then `/file/bot<token>/<path>`) and uploaded through the sending
bot, whose answer gives the file_id for that bot. `services.media` keeps it per (file_unique_id, bot): the
next send of the same file through that bot is by file_id, without a download. In one process the threads
take turns per file, so a photo broadcast to 200 customers goes up once, not once per worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

from flask import Flask
from telebot import TeleBot, apihelper
from telebot.apihelper import ApiTelegramException
from telebot.types import (
    InlineKeyboardMarkup,
    InputMediaAudio,
    InputMediaDocument,
    InputMediaPhoto,
    InputMediaVideo,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
)

from bot.rendered import AlbumBody, EditBody, MediaBody, Rendered, carries_text
from bot.telegram import _session
from bot.texts import PARSE_MODE
from services import media
from services.media import CAPTIONED, MediaKind, MediaRef

_INPUT_MEDIA = {"photo": InputMediaPhoto, "video": InputMediaVideo, "document": InputMediaDocument, "audio": InputMediaAudio}


class DownloadFailed(RuntimeError):
    """The file could not be fetched from the bot that received it (a retry may pass)."""


class MediaSender:
    """Sends a row's media (or edit) through one bot; returns the message id to record for the row."""

    def __init__(self, app: Flask, bots: Mapping[str, TeleBot], timeout: float) -> None:
        self.app = app
        self.bots = bots
        self.timeout: Any = timeout  # telebot declares int; requests takes a float
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._known: dict[tuple[str, str], str] = {}  # (file_unique_id, bot) → file_id, as services.media keeps it
        self._link_preview = LinkPreviewOptions(is_disabled=True)

    def send(self, bot_name: str, bot: TeleBot, chat_id: int, rendered: Rendered, thread: int | None = None) -> int:
        """Send `rendered` (whose body is not None), into the forum topic `thread` if given; Telegram's exceptions
        propagate to the worker's classify(). An empty text (a topic's copy of a customer's photo without words)
        sends the media alone."""
        body = rendered.body
        if isinstance(body, EditBody):
            return self._edit(bot, chat_id, rendered, body, thread)
        if isinstance(body, AlbumBody):
            if not rendered.text:
                return self._album(bot_name, bot, chat_id, body.items, None, thread)[0].message_id
            first = self._text(bot, chat_id, rendered.text, rendered.markup, thread)
            self._album(bot_name, bot, chat_id, body.items, first.message_id, thread)
            return first.message_id
        assert isinstance(body, MediaBody)
        if carries_text(body.ref, rendered.text) or not rendered.text:
            return self._media(bot_name, bot, chat_id, body.ref, rendered.text, rendered.markup, None, thread).message_id
        first = self._text(bot, chat_id, rendered.text, rendered.markup, thread)
        self._media(bot_name, bot, chat_id, body.ref, None, None, first.message_id, thread)
        return first.message_id

    def wait_ready(self, bot_name: str, rendered: Rendered) -> None:
        """Wait while another thread uploads this row's file through the bot (call before taking a send slot:
        a slot taken and then spent waiting would bunch the sends up past the rate limit)."""
        body = rendered.body
        items = body.items if isinstance(body, AlbumBody) else (body.ref,) if isinstance(body, MediaBody) else ()
        for item in items:
            if item.is_file and item.source_bot != bot_name and (item.file_unique_id or "", bot_name) not in self._known:
                with self._lock((item.file_unique_id or "", bot_name)):
                    pass

    # --- text, media, albums -----------------------------------------------------------------------

    def _text(
        self, bot: TeleBot, chat_id: int, text: str, markup: InlineKeyboardMarkup | None, thread: int | None = None
    ) -> Message:
        return bot.send_message(
            chat_id,
            text,
            parse_mode=PARSE_MODE,
            reply_markup=markup,
            link_preview_options=self._link_preview,
            message_thread_id=thread,
            timeout=self.timeout,
        )

    def _media(
        self,
        bot_name: str,
        bot: TeleBot,
        chat_id: int,
        ref: MediaRef,
        caption: str | None,
        markup: InlineKeyboardMarkup | None,
        reply_to: int | None,
        thread: int | None = None,
    ) -> Message:
        common: dict[str, Any] = {"reply_markup": markup, "timeout": self.timeout, "message_thread_id": thread}
        if reply_to is not None:
            common["reply_parameters"] = ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
        if ref.kind == MediaKind.LOCATION:
            return bot.send_location(chat_id, ref.latitude or 0.0, ref.longitude or 0.0, **common)
        if ref.kind == MediaKind.VENUE:
            return bot.send_venue(
                chat_id, ref.latitude or 0.0, ref.longitude or 0.0, ref.title or "", ref.address or "", **common
            )
        if ref.kind == MediaKind.CONTACT:
            return bot.send_contact(chat_id, ref.phone_number or "", ref.first_name or "", last_name=ref.last_name, **common)
        if caption and ref.kind in CAPTIONED:
            common.update(caption=caption, parse_mode=PARSE_MODE)
        if ref.kind == MediaKind.DOCUMENT and ref.file_name:
            common["visible_file_name"] = ref.file_name
        send = getattr(bot, f"send_{ref.kind}")
        with self._file(bot_name, ref) as (file, keep):
            message: Message = send(chat_id, file, **common)
            keep([message])
        return message

    def _album(
        self,
        bot_name: str,
        bot: TeleBot,
        chat_id: int,
        items: tuple[MediaRef, ...],
        reply_to: int | None,
        thread: int | None = None,
    ) -> list[Message]:
        with ExitStack() as stack:
            inputs = [stack.enter_context(self._file(bot_name, item)) for item in items]
            group = [
                _INPUT_MEDIA[item.kind](file, caption=item.caption or None)  # the customer's own captions, as written
                for item, (file, _) in zip(items, inputs, strict=True)
            ]
            reply = ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to is not None else None
            messages = bot.send_media_group(
                chat_id, group, reply_parameters=reply, message_thread_id=thread, timeout=self.timeout
            )
            for (_, keep), message in zip(inputs, messages, strict=False):
                keep([message])
        return messages

    # --- files: the cached file_id, or download and upload -----------------------------------------

    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    @contextmanager
    def _file(self, bot_name: str, ref: MediaRef) -> Iterator[tuple[Any, Any]]:
        """What to send for a file through `bot_name`: its file_id there, or its bytes (then `keep` the new file_id).

        Only an upload holds the file's lock (until its send returned), so the threads of this process upload a
        file once and then send by file_id side by side."""
        if ref.source_bot == bot_name and ref.file_id:
            yield ref.file_id, _ignore
            return
        key = (ref.file_unique_id or "", bot_name)
        known = self._known.get(key)
        if known is None:
            lock = self._lock(key)
            lock.acquire()
            try:
                known = self._known.get(key)
                if known is None:
                    with self.app.app_context():
                        known = media.cached_file_id(*key)
                if known is None:
                    data = self._download(ref)

                    def keep(messages: list[Message]) -> None:
                        file_id = _file_id(messages[0], ref.kind) if messages else None
                        if file_id:
                            with self.app.app_context():
                                media.remember_upload(key[0], bot_name, file_id)
                            self._known[key] = file_id

                    yield data, keep
                    return
                self._known[key] = known
            finally:
                lock.release()
        yield known, _ignore

    def _download(self, ref: MediaRef) -> bytes:
        source = self.bots.get(ref.source_bot or "")
        if source is None or not ref.file_id:
            raise DownloadFailed(f"no bot {ref.source_bot!r} to download the file from")
        info = source.get_file(ref.file_id)
        if not info.file_path:
            raise DownloadFailed("getFile gave no file_path")
        template = apihelper.FILE_URL or "https://api.telegram.org/file/bot{0}/{1}"
        response = _session().get(template.format(source.token, info.file_path), timeout=self.timeout)
        if response.status_code != 200:
            raise DownloadFailed(f"download answered {response.status_code}")
        return response.content

    # --- edits -------------------------------------------------------------------------------------

    def _edit(self, bot: TeleBot, chat_id: int, rendered: Rendered, body: EditBody, thread: int | None = None) -> int:
        with self.app.app_context():
            message_id = media.sent_message_id(body.of_outbox_id)
        if message_id is None:  # the copy never went out: say it anew
            return self._text(bot, chat_id, body.fallback, None, thread).message_id
        try:
            if body.caption:
                bot.edit_message_caption(
                    rendered.text, chat_id, message_id, parse_mode=PARSE_MODE, reply_markup=rendered.markup, timeout=self.timeout
                )
            else:
                bot.edit_message_text(
                    rendered.text,
                    chat_id,
                    message_id,
                    parse_mode=PARSE_MODE,
                    reply_markup=rendered.markup,
                    link_preview_options=self._link_preview,
                    timeout=self.timeout,
                )
        except ApiTelegramException as exc:
            description = str(exc.description or "").lower()
            if exc.error_code != 400 or "chat not found" in description:
                raise  # blocked, rate limited, Telegram down: the worker sorts it out
            if "message is not modified" in description:
                return message_id
            # Too old, deleted, another kind of message, a caption grown too long: a follow-up says it.
            return self._text(bot, chat_id, body.fallback, None, thread).message_id
        return message_id


def _ignore(messages: list[Message]) -> None:
    """Nothing to keep: the file was sent by a file_id the bot already has."""


def _file_id(message: Message, kind: str) -> str | None:
    value = getattr(message, kind, None)
    if isinstance(value, list):  # photo: sizes, the largest last
        value = value[-1] if value else None
    return getattr(value, "file_id", None)
