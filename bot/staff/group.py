"""The staff bot in a staff group: linking by group code, replies in customers' topics, the bot's rights.

Handlers (`register_group_handlers`): a group code (`/link <code>`, or the bare code outside a topic) links the
group; a text or media (an album as one) in a customer's topic goes to the customer when its author is staff of
the horeca (others are told once who may answer); `migrate_to_chat_id` is followed; a change of the bot's rights
is checked and, when topics cannot be opened, said in the group in one line (and stored for /healthz).

Sending into the customers' topics (the delivery worker's side) is `bot/staff/topics.py`.
"""

from __future__ import annotations

import logging
import re
from html import escape
from typing import Any

from flask import Flask, current_app
from telebot import TeleBot
from telebot.apihelper import ApiTelegramException
from telebot.types import ChatMemberUpdated, LinkPreviewOptions, Message

from bot import media_in
from bot.guard import guard
from bot.staff import group_texts
from bot.staff import texts as staff_texts
from bot.telegram import describe
from models import BotName, GroupProblem
from services import linking, staff_group
from services.staff_group import TopicOutcome

log = logging.getLogger(__name__)

PARSE_MODE = "HTML"
GROUP_CHATS = ["group", "supergroup"]
_LINK = re.compile(r"/(?:link|start)(?:@\w+)?\s+(\S+)\s*", re.IGNORECASE)  # /start: the startgroup deep link
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


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
        say(bot, chat_id, t.problems[problem] if problem else t.fixed)
    return problem


def say(bot: TeleBot, chat_id: int, text: str, thread: int | None = None) -> None:
    """One message of the bot in the group (in a topic with `thread`); a failure is logged, never raised."""
    try:
        bot.send_message(chat_id, text, parse_mode=PARSE_MODE, message_thread_id=thread, link_preview_options=_NO_PREVIEW)
    except ApiTelegramException as exc:
        log.info("could not write to group %s: %s", chat_id, describe(exc))


# --- handlers ----------------------------------------------------------------------------------------


def _code(message: Message) -> str | None:
    """The group code in a message: `/link <code>`, or a bare code outside a topic of a group not linked yet."""
    text = (message.text or "").strip()
    match = _LINK.fullmatch(text)
    if match:
        return match.group(1)
    if message.is_topic_message or not linking.looks_like_code(text):
        return None
    # In a linked group a word that merely looks like a code is chat, not a wrong code to count.
    return text if staff_group.group_of_chat(message.chat.id) is None else None


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
        say(bot, chat.id, refusals.get(typed.outcome, t.used_code))
        return
    template = t.already_linked if linked.already else t.linked
    say(bot, chat.id, template.format(horeca=escape(linked.horeca_name)))
    problem = check_rights(bot, chat.id)
    staff_group.set_problem(chat.id, problem)
    if problem is not None:
        say(bot, chat.id, t.problems[problem])


def on_group_text(message: Message, bot: TeleBot) -> None:
    """A text in a group: a group code links it; in a customer's topic, a staff member's reply to the customer."""
    user = message.from_user
    if user is None or user.is_bot:
        return
    code = _code(message)
    if code is not None:
        _link(message, bot, code)
        return
    _topic_reply([message], bot)


def on_group_media(messages: list[Message], bot: TeleBot) -> None:
    """A photo, file, voice note, location, ... (or an album) in a customer's topic: to the customer, like a text."""
    user = messages[0].from_user
    if user is None or user.is_bot:
        return
    _topic_reply(messages, bot)


def _topic_reply(messages: list[Message], bot: TeleBot) -> None:
    message = messages[0]
    user = message.from_user
    assert user is not None
    thread = message.message_thread_id if message.is_topic_message else None
    if thread is None:
        return
    if message.content_type == "text":
        found = staff_group.reply_from_topic(message.chat.id, thread, user.id, message.text or "")
    else:
        attachment = media_in.attachment(messages, BotName.HORECA)
        if attachment is None:
            return  # a kind we do not pass on (a poll, a dice)
        caption = attachment.caption if not attachment.album else ""
        found = staff_group.reply_from_topic(message.chat.id, thread, user.id, caption, attachment=attachment)
    if found.outcome in (TopicOutcome.NOT_A_DIALOG, TopicOutcome.NOT_STAFF_AGAIN):
        return
    info = staff_group.group_of_chat(message.chat.id)
    t = group_texts.for_language(info.language_code if info else user.language_code)
    if found.outcome == TopicOutcome.NOT_STAFF:
        who = escape(user.first_name or user.username or str(user.id))
        names = ", ".join(escape(n) for n in found.staff_names) or t.nobody
        say(bot, message.chat.id, t.not_staff.format(user=who, horeca=escape(found.horeca_name), names=names), thread)
    elif found.outcome == TopicOutcome.INVALID:
        say(bot, message.chat.id, t.too_long, thread)
    elif found.outcome == TopicOutcome.TOO_BIG:
        say(bot, message.chat.id, t.media_too_big, thread)
    elif found.outcome == TopicOutcome.CAPTION_TOO_LONG:
        say(bot, message.chat.id, t.caption_too_long, thread)
    elif found.blocked:
        say(bot, message.chat.id, t.customer_blocked.format(customer=escape(found.customer_name)), thread)


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
    albums = media_in.AlbumCollector(app, on_group_media, staff_texts.for_user)  # an album's messages, as one

    def on_media(message: Message, bot: TeleBot) -> None:
        if message.media_group_id:
            albums.add(message, bot)
        else:
            on_group_media([message], bot)

    add(on_media, content_types=media_in.CONTENT_TYPES)
    bot.register_my_chat_member_handler(
        guard(app, on_member, staff_texts.for_user), func=lambda u: u.chat.type in GROUP_CHATS, pass_bot=True
    )
