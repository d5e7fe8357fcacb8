"""The staff bot in a staff group: linking by group code, replies in customers' topics, sending into topics.

Handlers (`register_group_handlers`): a group code (`/link <code>`, or the bare code outside a topic) links the
group; a text in a customer's topic goes to the customer when its author is staff of the horeca (others are
told once who may answer); `migrate_to_chat_id` is followed; a change of the bot's rights is checked and, when
topics cannot be opened, said in the group in one line (and stored for /healthz).

`send` is what the delivery worker calls for a group row (kind group_message): it opens the customer's topic
when there is none (createForumTopic, then the header message with their active orders), re-opens it when
Telegram says the thread is gone or closed, and follows a group that became a supergroup.
"""

from __future__ import annotations

import json
import logging
import re
from html import escape
from typing import Any

from flask import Flask, current_app
from telebot import TeleBot
from telebot.apihelper import ApiTelegramException
from telebot.types import ChatMemberUpdated, LinkPreviewOptions, Message

from bot.guard import guard
from bot.rendered import Rendered
from bot.staff import group_texts
from bot.staff import texts as staff_texts
from bot.staff.group_texts import GroupTexts
from bot.telegram import Undeliverable, describe
from models import GroupProblem
from services import linking, staff_group
from services.delivery import Job
from services.staff_group import Destination, Header, TopicOutcome

log = logging.getLogger(__name__)

PARSE_MODE = "HTML"
GROUP_CHATS = ["group", "supergroup"]
_LINK = re.compile(r"/(?:link|start)(?:@\w+)?\s+(\S+)\s*", re.IGNORECASE)  # /start: the startgroup deep link
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class GroupNotReady(RuntimeError):
    """The bot cannot open a topic in the group now (rights, topics off): the row waits and is retried."""


def _payload(job: Job) -> dict[str, Any]:
    try:
        payload = json.loads(job.payload or "{}")
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


# --- rights ------------------------------------------------------------------------------------------


def bot_id(bot: TeleBot) -> int:
    """The bot's own user id (the number before the colon of its token)."""
    return int(bot.token.partition(":")[0])


def check_rights(bot: TeleBot, chat_id: int) -> GroupProblem | None:
    """What keeps the bot from opening topics in the group, asked from Telegram (None: nothing)."""
    try:
        chat = bot.get_chat(chat_id)
        member = bot.get_chat_member(chat_id, bot_id(bot))
    except ApiTelegramException as exc:
        if exc.error_code in (400, 403):
            return GroupProblem.NOT_MEMBER
        raise
    if member.status in ("left", "kicked"):
        return GroupProblem.NOT_MEMBER
    if chat.type != "supergroup" or not chat.is_forum:
        return GroupProblem.NOT_FORUM
    if member.status == "creator":
        return None
    if member.status != "administrator":
        return GroupProblem.NOT_ADMIN
    if not getattr(member, "can_manage_topics", False):  # ChatMemberAdministrator's
        return GroupProblem.NO_MANAGE_TOPICS
    return None


def refresh_rights(bot: TeleBot, chat_id: int) -> GroupProblem | None:
    """Check the bot's rights, store the outcome, and say it in the group in one line when it changed."""
    problem = check_rights(bot, chat_id)
    if staff_group.set_problem(chat_id, problem) and problem != GroupProblem.NOT_MEMBER:
        info = staff_group.group_of_chat(chat_id)
        t = group_texts.for_language(info.language_code if info else None)
        _say(bot, chat_id, t.problems[problem] if problem else t.fixed)
    return problem


def _say(bot: TeleBot, chat_id: int, text: str, thread: int | None = None) -> None:
    try:
        bot.send_message(chat_id, text, parse_mode=PARSE_MODE, message_thread_id=thread, link_preview_options=_NO_PREVIEW)
    except ApiTelegramException as exc:
        log.info("could not write to group %s: %s", chat_id, describe(exc))


# --- handlers ----------------------------------------------------------------------------------------


def _code(message: Message) -> str | None:
    """The group code in a message: `/link <code>`, or a bare code written outside a topic."""
    text = (message.text or "").strip()
    match = _LINK.fullmatch(text)
    if match:
        return match.group(1)
    if not message.is_topic_message and linking.looks_like_code(text):
        return text
    return None


def _link(message: Message, bot: TeleBot, code: str) -> None:
    user = message.from_user
    assert user is not None
    t = group_texts.for_language(user.language_code)
    per_minute = current_app.config["WRONG_CODES_PER_MINUTE"]
    chat = message.chat
    typed = linking.claim_typed(
        user.id, lambda: staff_group.link(code, chat.id, chat.title, user.id, user.language_code), per_minute
    )
    linked = typed.value
    if linked is None:
        refusals = {
            linking.Typed.TOO_MANY: t.too_many_codes,
            linking.Typed.BUSY: t.too_many_codes,
            linking.Typed.UNKNOWN: t.unknown_code,
        }
        _say(bot, chat.id, refusals.get(typed.outcome, t.used_code))
        return
    template = t.already_linked if linked.already else t.linked
    _say(bot, chat.id, template.format(horeca=escape(linked.horeca_name)))
    problem = check_rights(bot, chat.id)
    staff_group.set_problem(chat.id, problem)
    if problem is not None:
        _say(bot, chat.id, t.problems[problem])


def on_group_text(message: Message, bot: TeleBot) -> None:
    """A text in a group: a group code links it; in a customer's topic, a staff member's reply to the customer."""
    user = message.from_user
    if user is None or user.is_bot:
        return
    code = _code(message)
    if code is not None:
        _link(message, bot, code)
        return
    thread = message.message_thread_id if message.is_topic_message else None
    if thread is None:
        return
    found = staff_group.reply_from_topic(message.chat.id, thread, user.id, message.text or "")
    if found.outcome in (TopicOutcome.NOT_A_DIALOG, TopicOutcome.NOT_STAFF_AGAIN):
        return
    info = staff_group.group_of_chat(message.chat.id)
    t = group_texts.for_language(info.language_code if info else user.language_code)
    if found.outcome == TopicOutcome.NOT_STAFF:
        who = escape(user.first_name or user.username or str(user.id))
        names = ", ".join(escape(n) for n in found.staff_names) or t.nobody
        _say(bot, message.chat.id, t.not_staff.format(user=who, horeca=escape(found.horeca_name), names=names), thread)
    elif found.outcome == TopicOutcome.INVALID:
        _say(bot, message.chat.id, t.too_long, thread)
    elif found.blocked:
        _say(bot, message.chat.id, t.customer_blocked.format(customer=escape(found.customer_name)), thread)


def on_migrate(message: Message, bot: TeleBot) -> None:
    """A group upgraded to a supergroup: the linked group's chat id follows (either service message says it)."""
    if message.migrate_to_chat_id:
        old, new = message.chat.id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id:
        old, new = message.migrate_from_chat_id, message.chat.id
    else:
        return
    if staff_group.migrated(old, new):
        log.info("staff group %s became supergroup %s", old, new)
        refresh_rights(bot, new)


def on_member(update: ChatMemberUpdated, bot: TeleBot) -> None:
    """The bot's rights in a linked group changed: check them again (and say so in the group)."""
    if staff_group.group_of_chat(update.chat.id) is not None:
        refresh_rights(bot, update.chat.id)


def register_group_handlers(bot: TeleBot, app: Flask) -> None:
    """Wire the staff bot's handlers for groups (its private-chat handlers are `register_staff_handlers`)."""

    def add(handler: Any, **filters: Any) -> None:
        bot.register_message_handler(guard(app, handler, staff_texts.for_user), chat_types=GROUP_CHATS, pass_bot=True, **filters)

    add(on_migrate, content_types=["migrate_to_chat_id", "migrate_from_chat_id"])
    add(on_group_text, content_types=["text"])
    bot.register_my_chat_member_handler(
        guard(app, on_member, staff_texts.for_user), func=lambda u: u.chat.type in GROUP_CHATS, pass_bot=True
    )


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
    """A group row: the customer's text as it is (the topic is theirs), a cabinet reply under its author's name."""
    payload = _payload(job)
    t = group_texts.for_language(payload.get("lang"))
    body = escape(str(payload.get("text") or ""))
    if payload.get("type") == "cabinet":
        return Rendered(f"{t.from_cabinet.format(author=escape(str(payload.get('author') or '?')))}\n{body}")
    return Rendered(body)


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
            _say(bot, dest.chat_id, t.fixed)
    return thread


def send(app: Flask, bot: TeleBot, job: Job, rendered: Rendered, timeout: float) -> Message:
    """Send a group row into the customer's topic (opening, re-opening or following the group as needed)."""
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
            return bot.send_message(
                dest.chat_id,
                rendered.text,
                parse_mode=PARSE_MODE,
                reply_markup=rendered.markup,
                message_thread_id=thread,
                link_preview_options=_NO_PREVIEW,
                timeout=timeout,  # type: ignore[arg-type]
            )
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
