"""Sending into the staff group's topics: what the delivery worker calls for a group row (kind group_message).

`send` opens the customer's topic when there is none (createForumTopic, then the header message with their
active orders), opens a new one when Telegram says the thread is gone or closed, and follows a group that
became a supergroup (a 400 with migrate_to_chat_id). `redraw_headers` (a job) edits the headers whose
customer's orders changed. The group's handlers and the bot's rights are `bot/staff/group.py`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from html import escape
from typing import Any

from flask import Flask
from telebot import TeleBot
from telebot.apihelper import ApiTelegramException
from telebot.types import LinkPreviewOptions

from bot.rendered import Rendered
from bot.rendering import edit_body, media_body
from bot.staff import group_texts
from bot.staff import texts as staff_texts
from bot.staff.group import PARSE_MODE, refresh_rights, say
from bot.staff.group_texts import GroupTexts
from bot.telegram import Undeliverable, describe
from models import OutboxKind
from services import staff_group
from services.delivery import Job
from services.staff_group import Destination, Header

log = logging.getLogger(__name__)

MediaSend = Callable[[int, int], int]  # (group chat id, topic) → message id: the worker's MediaSender for this row

_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class GroupNotReady(RuntimeError):
    """The bot cannot open a topic in the group now (rights, topics off): the row waits and is retried."""


def _payload(job: Job) -> dict[str, Any]:
    try:
        payload = json.loads(job.payload or "{}")
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


# --- what goes into a topic ---------------------------------------------------------------------------


def header_text(t: GroupTexts, header: Header, language_code: str | None) -> str:
    """The topic's first message: who the customer is and their active orders."""
    head = t.header.format(customer=escape(header.customer))
    if header.username and not header.customer.startswith("@"):
        head += t.header_username.format(username=escape(header.username))
    if not header.orders:
        return f"{head}\n{t.header_no_orders}"
    lines = [
        t.order_line.format(order_id=escape(o), status=escape(group_texts.status_name(language_code, s)))
        for o, s in header.orders
    ]
    return f"{head}\n{t.header_orders.format(orders=chr(10).join(lines))}"


def render_group_message(job: Job) -> Rendered:
    """A group row: the customer's text as it is (the topic is theirs), a cabinet reply under its author's name;
    with its media (the text is then the caption, maybe empty)."""
    payload = _payload(job)
    t = group_texts.for_language(payload.get("lang"))
    body = escape(str(payload.get("text") or ""))
    media = media_body(payload.get("media"))
    if payload.get("type") == "cabinet":
        return Rendered(
            f"{t.from_cabinet.format(author=escape(str(payload.get('author') or '?')))}\n{body}", body=media, topic=True
        )
    return Rendered(body, body=media, topic=True)


def render_group_edit(job: Job) -> Rendered:
    """The customer edited a message copied into their topic: its text (or caption) again, as it is now."""
    payload = _payload(job)
    text = escape(str(payload.get("text") or ""))
    edited = staff_texts.for_language(payload.get("lang")).edited
    return Rendered(text, body=edit_body(payload, text, f"{edited}\n{text}"), topic=True)


def into_group(job: Job) -> bool:
    """A row for a topic: a group message, or an edit of one (to a group: Telegram's group chat ids are negative)."""
    return job.kind == OutboxKind.GROUP_MESSAGE or (job.kind == OutboxKind.EDIT and job.chat_id < 0)


# --- sending (called by the delivery worker) -------------------------------------------------------------

_GONE = ("thread not found", "topic_closed", "topic_deleted", "topic closed", "topic_id_invalid")


def _moved_to(exc: ApiTelegramException) -> int | None:
    params = (exc.result_json or {}).get("parameters") or {}
    moved = params.get("migrate_to_chat_id")
    return int(moved) if moved else None


def _topic_gone(exc: ApiTelegramException) -> bool:
    description = str(exc.description or "").lower()
    return exc.error_code == 400 and any(marker in description for marker in _GONE)


def _open_topic(app: Flask, bot: TeleBot, horeca_id: str, customer_id: int, dest: Destination, timeout: float) -> int:
    """createForumTopic for the customer, then its header; GroupNotReady when the bot lacks what it takes."""
    try:
        topic = bot.create_forum_topic(dest.chat_id, dest.topic_name)
    except ApiTelegramException as exc:
        if _moved_to(exc) is None and exc.error_code in (400, 403):
            with app.app_context():
                problem = refresh_rights(bot, dest.chat_id)
            if problem is not None:
                raise GroupNotReady(f"cannot open a topic in group {dest.chat_id}: {problem}") from exc
        raise
    thread = topic.message_thread_id
    t = group_texts.for_language(dest.language_code)
    text = header_text(t, dest.header, dest.language_code)
    header_id = None
    try:
        header = bot.send_message(
            dest.chat_id,
            text,
            parse_mode=PARSE_MODE,
            message_thread_id=thread,
            timeout=timeout,  # type: ignore[arg-type]
        )
        header_id = header.message_id
    except ApiTelegramException as exc:  # the topic is there: the message itself matters more than its header
        log.info("the header of a new topic in group %s failed: %s", dest.chat_id, describe(exc))
    with app.app_context():
        staff_group.topic_opened(horeca_id, customer_id, thread, dest.topic_name, header_id, text)
        if staff_group.set_problem(dest.chat_id, None):  # it works again: say so once
            say(bot, dest.chat_id, t.fixed)
    return thread


def send(app: Flask, bot: TeleBot, job: Job, rendered: Rendered, timeout: float, media: MediaSend | None = None) -> int:
    """Send a group row into the customer's topic (opening, re-opening or following the group as needed); the
    message id. A row with media (`rendered.body`) goes through `media`, the worker's MediaSender."""
    payload = _payload(job)
    horeca_id, customer_id = str(payload.get("horeca_id") or ""), payload.get("customer_id")
    if not isinstance(customer_id, int):
        raise Undeliverable("a group row without its customer")
    for _ in range(3):
        with app.app_context():
            dest = staff_group.destination(horeca_id, customer_id)
        if dest is None:
            raise Undeliverable("the horeca has no staff group any more")
        thread = dest.thread_id
        try:
            if thread is None:
                thread = _open_topic(app, bot, horeca_id, customer_id, dest, timeout)
            if rendered.body is not None and media is not None:
                return media(dest.chat_id, thread)
            return bot.send_message(
                dest.chat_id,
                rendered.text,
                parse_mode=PARSE_MODE,
                reply_markup=rendered.markup,
                message_thread_id=thread,
                link_preview_options=_NO_PREVIEW,
                timeout=timeout,  # type: ignore[arg-type]
            ).message_id
        except ApiTelegramException as exc:
            moved = _moved_to(exc)
            if moved is not None:
                with app.app_context():
                    staff_group.migrated(dest.chat_id, moved)
                continue
            if thread is not None and _topic_gone(exc):
                log.info("topic %s of group %s is gone or closed: opening a new one", thread, dest.chat_id)
                with app.app_context():
                    staff_group.topic_lost(horeca_id, customer_id, thread)
                continue
            raise
    raise GroupNotReady("the customer's topic could not be opened")


# --- the headers' job ------------------------------------------------------------------------------------


def redraw_headers(bot: TeleBot, limit: int = 50) -> int:
    """Edit the header of every topic whose customer's orders changed (a scheduler tick, in an app context)."""
    done = 0
    for due in staff_group.headers_due(limit):
        t = group_texts.for_language(due.language_code)
        text = header_text(t, due.header, due.language_code)
        if text == due.text:
            staff_group.header_drawn(due.topic_id, text)
            continue
        try:
            bot.edit_message_text(text, due.chat_id, due.message_id, parse_mode=PARSE_MODE)
        except ApiTelegramException as exc:
            description = str(exc.description or "").lower()
            if "not modified" in description:
                staff_group.header_drawn(due.topic_id, text)
            elif exc.error_code == 400:  # the header (or its topic) is gone: the next topic gets a new one
                staff_group.header_drawn(due.topic_id, None)
            else:
                log.info("redrawing a topic header in group %s failed: %s", due.chat_id, describe(exc))
            continue
        staff_group.header_drawn(due.topic_id, text)
        done += 1
    return done
