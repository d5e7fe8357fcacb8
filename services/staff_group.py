"""The staff group: a Telegram supergroup with topics, linked to a horeca, with one forum topic per customer.

A staff member adds the staff bot to the group and sends a group code there (`issue_code`, `link`). From then on
a customer's message to the horeca is also queued into the group (`queue_customer_message`: an outbox row of the
staff bot, kind group_message, chat = the group; the bot process opens the customer's topic when it sends the
first one), a staff member's reply in the topic goes to the customer like a cabinet reply does
(`reply_from_topic`), and a cabinet reply to one customer is copied into the topic (`queue_cabinet_reply`). The
topic's first message (its header) shows the customer's active orders and is redrawn when they change
(`headers_due`). Rights the bot lacks (`GroupProblem`) are stored on the group and shown by /healthz.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from database import reading, transaction
from models import (
    BotName,
    Customer,
    DialogMessage,
    GroupProblem,
    GroupStranger,
    GroupTopic,
    Order,
    OutboxKind,
    OutboxMessage,
    OutboxState,
    StaffGroup,
    StaffMember,
    db,
    utcnow,
)
from services import linking, media, staff
from services.cabinet import clean_text, mark_read_in, queue_staff_message
from services.errors import Invalid, NotFound
from services.orders import ACTIVE_STATUSES

TOPIC_NAME_MAX = 128  # Telegram's limit on a forum topic's name
PROBLEMS = tuple(GroupProblem)


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def issue_code(horeca_id: str, name: str | None = None, *, ttl_seconds: int = linking.DEFAULT_TTL_SECONDS) -> linking.IssuedCode:
    """A one-time code that links the group it is sent in to `horeca_id` (same rules as a staff code)."""
    with transaction():
        staff.ensure_horeca(horeca_id, name)
    return linking.issue(purpose="group", horeca_id=horeca_id, ttl_seconds=ttl_seconds)


# --- linking and the group's state ---------------------------------------------------------------------


@dataclass(frozen=True)
class Linked:
    horeca_id: str
    horeca_name: str
    already: bool  # this group was linked to this horeca already


def _group_of_chat(chat_id: int, lock: bool = False) -> StaffGroup | None:
    stmt = select(StaffGroup).where(StaffGroup.chat_id == chat_id)
    if lock:
        stmt = stmt.with_for_update()
    return db.session.scalar(stmt)


def _forget_topics(group_id: int) -> None:
    db.session.execute(delete(GroupTopic).where(GroupTopic.group_id == group_id))
    db.session.execute(delete(GroupStranger).where(GroupStranger.group_id == group_id))


def link(code: str, chat_id: int, title: str | None, telegram_user_id: int, language_code: str | None = None) -> Linked:
    """Claim a group code in a group: the group becomes the horeca's staff group (replacing an earlier one)."""
    with transaction():
        row = linking.claim_group_code(code, telegram_user_id)
        horeca_id = row.horeca_id
        if not horeca_id:
            raise NotFound("unknown or expired code", "code_not_found")
        staff.ensure_horeca(horeca_id)
        here = _group_of_chat(chat_id, lock=True)
        if here is not None and here.horeca_id == horeca_id:
            here.title = title or here.title
            return Linked(horeca_id, staff.horeca_name(horeca_id), already=True)
        if here is not None:  # the group served another horeca: it serves this one now
            _forget_topics(here.id)
            db.session.delete(here)
            db.session.flush()
        group = db.session.scalar(select(StaffGroup).where(StaffGroup.horeca_id == horeca_id).with_for_update())
        now = utcnow()
        if group is None:
            group = StaffGroup(horeca_id=horeca_id, chat_id=chat_id, linked_at=now)
            db.session.add(group)
        else:  # the horeca moves to a new group: new topics there
            _forget_topics(group.id)
            group.chat_id = chat_id
            group.linked_at = now
            group.problem = group.problem_at = None
        group.title = title
        group.linked_by = telegram_user_id
        group.language_code = language_code
        db.session.flush()
        return Linked(horeca_id, staff.horeca_name(horeca_id), already=False)


@dataclass(frozen=True)
class GroupInfo:
    """A linked group, as the bot process needs it."""

    horeca_id: str
    horeca_name: str
    chat_id: int
    language_code: str | None
    problem: str | None


def group_of_chat(chat_id: int) -> GroupInfo | None:
    """The linked group with this chat id, or None."""
    with reading():
        group = _group_of_chat(chat_id)
        if group is None:
            return None
        return GroupInfo(group.horeca_id, staff.horeca_name(group.horeca_id), group.chat_id, group.language_code, group.problem)


def set_problem(chat_id: int, problem: GroupProblem | None) -> bool:
    """Record what keeps the bot from opening topics in the group (None: nothing); True when that changed."""
    with transaction():
        group = _group_of_chat(chat_id, lock=True)
        if group is None or group.problem == (problem.value if problem else None):
            return False
        group.problem = problem.value if problem else None
        group.problem_at = utcnow() if problem else None
        return True


def migrated(old_chat_id: int, new_chat_id: int) -> bool:
    """The group was upgraded to a supergroup (migrate_to_chat_id): follow it, with the rows still to send there."""
    with transaction():
        group = _group_of_chat(old_chat_id, lock=True)
        if group is None:
            return False
        if _group_of_chat(new_chat_id) is not None:
            return False  # already followed (the service message and a 400 can both tell us)
        group.chat_id = new_chat_id
        db.session.execute(update(GroupTopic).where(GroupTopic.group_id == group.id).values(message_thread_id=None))
        db.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.bot == BotName.HORECA,
                OutboxMessage.chat_id == old_chat_id,
                OutboxMessage.state == OutboxState.PENDING,
            )
            .values(chat_id=new_chat_id)
        )
        return True


@dataclass(frozen=True)
class Problem:
    horeca_id: str
    chat_id: int
    problem: str
    since: datetime | None


def problems() -> list[Problem]:
    """Linked groups where the bot cannot open topics (for /healthz). Read inside the caller's transaction."""
    rows = db.session.scalars(select(StaffGroup).where(StaffGroup.problem.is_not(None)).order_by(StaffGroup.horeca_id))
    return [Problem(g.horeca_id, g.chat_id, g.problem or "", g.problem_at) for g in rows]


def linked_count() -> int:
    """How many groups are linked. Read inside the caller's transaction."""
    return int(db.session.scalar(select(func.count()).select_from(StaffGroup)) or 0)


# --- queueing into the group -----------------------------------------------------------------------------


def _queue(group: StaffGroup, customer: Customer, payload: dict[str, Any]) -> OutboxMessage:
    topic = _topic(group.id, customer.id)
    now = utcnow()
    row = OutboxMessage(
        kind=OutboxKind.GROUP_MESSAGE,
        bot=BotName.HORECA,
        chat_id=group.chat_id,
        horeca_id=group.horeca_id,
        payload=_json(
            {
                **payload,
                "horeca_id": group.horeca_id,
                "customer_id": customer.id,
                "thread": topic.message_thread_id if topic else None,
                "lang": group.language_code,
            }
        ),
        state=OutboxState.PENDING,
        created_at=now,
        next_attempt_at=now,
    )
    db.session.add(row)
    return row


def _group(horeca_id: str) -> StaffGroup | None:
    return db.session.scalar(select(StaffGroup).where(StaffGroup.horeca_id == horeca_id))


def queue_customer_message(horeca_id: str, customer: Customer, message: DialogMessage) -> OutboxMessage | None:
    """A customer's relayed message, into their topic when the horeca has a group (inside the caller's transaction)."""
    group = _group(horeca_id)
    if group is None:
        return None
    attachment = media.parse(message.media)  # a photo, an album, a location, ...: the topic gets it too
    payload = {"type": "customer", "dialog_message_id": message.id, "text": message.text}
    return _queue(group, customer, {**payload, **({"media": attachment.as_payload()} if attachment else {})})


def queue_cabinet_reply(
    horeca_id: str, customer: Customer, member: StaffMember, text: str, attachment: media.Attachment | None = None
) -> OutboxMessage | None:
    """A reply written in the cabinet (with its media), copied into the customer's topic (inside the caller's transaction)."""
    group = _group(horeca_id)
    if group is None:
        return None
    payload = {"type": "cabinet", "author": member.display_name, "text": text}
    return _queue(group, customer, {**payload, **({"media": attachment.as_payload()} if attachment else {})})


# --- topics ---------------------------------------------------------------------------------------------


def _topic(group_id: int, customer_id: int) -> GroupTopic | None:
    return db.session.scalar(select(GroupTopic).where(GroupTopic.group_id == group_id, GroupTopic.customer_id == customer_id))


@dataclass(frozen=True)
class Header:
    """What a topic's first message shows: the customer and their active orders at the horeca."""

    customer: str
    username: str | None
    orders: list[tuple[str, str]]  # (order_id, status), oldest first


def _header(horeca_id: str, customer: Customer) -> Header:
    orders = db.session.execute(
        select(Order.order_id, Order.status)
        .where(  # by telegram_user_id: ix_orders_user_active
            Order.telegram_user_id == customer.telegram_user_id, Order.horeca_id == horeca_id, Order.status.in_(ACTIVE_STATUSES)
        )
        .order_by(Order.created_at, Order.id)
    ).tuples()
    return Header(customer.display_name, customer.username, [(o, s) for o, s in orders if s is not None])


def topic_name(customer: Customer) -> str:
    """The topic's name: the customer's name (and @username), within Telegram's 128 characters."""
    name = customer.display_name
    if customer.username and not name.startswith("@"):
        name += f" (@{customer.username})"
    return name[:TOPIC_NAME_MAX]


@dataclass(frozen=True)
class Destination:
    """Where a group row goes now: the group's current chat and the customer's topic (None: open one)."""

    chat_id: int
    thread_id: int | None
    topic_name: str
    header: Header
    language_code: str | None


def destination(horeca_id: str, customer_id: int) -> Destination | None:
    """The group and topic for a customer's group row; None when the horeca has no group any more."""
    with reading():
        group = _group(horeca_id)
        customer = db.session.get(Customer, customer_id)
        if group is None or customer is None:
            return None
        topic = _topic(group.id, customer_id)
        thread = topic.message_thread_id if topic else None
        return Destination(group.chat_id, thread, topic_name(customer), _header(horeca_id, customer), group.language_code)


def topic_opened(
    horeca_id: str, customer_id: int, thread_id: int, name: str, header_message_id: int | None, header_text: str
) -> None:
    """The bot opened the customer's topic (and posted its header): remember it."""
    with transaction():
        group = _group(horeca_id)
        if group is None:
            return
        topic = _topic(group.id, customer_id)
        now = utcnow()
        if topic is None:
            topic = GroupTopic(group_id=group.id, customer_id=customer_id, created_at=now)
            try:
                with db.session.begin_nested():
                    db.session.add(topic)
            except IntegrityError:
                topic = _topic(group.id, customer_id)
                assert topic is not None
        topic.message_thread_id = thread_id
        topic.name = name
        topic.header_message_id = header_message_id
        topic.header_text = header_text
        topic.header_at = now


def topic_lost(horeca_id: str, customer_id: int, thread_id: int) -> None:
    """Telegram says the topic is gone or closed: the next message opens a new one."""
    with transaction():
        group = _group(horeca_id)
        topic = _topic(group.id, customer_id) if group else None
        if topic is not None and topic.message_thread_id == thread_id:
            topic.message_thread_id = None
            topic.header_message_id = None


@dataclass(frozen=True)
class HeaderDue:
    topic_id: int
    chat_id: int
    message_id: int
    text: str | None  # as last drawn
    header: Header
    language_code: str | None


def headers_due(limit: int = 50) -> list[HeaderDue]:
    """Topic headers whose customer's orders at the horeca changed since they were drawn."""
    with reading():
        changed = (
            select(GroupTopic, StaffGroup, Customer)
            .join(StaffGroup, StaffGroup.id == GroupTopic.group_id)
            .join(Customer, Customer.id == GroupTopic.customer_id)
            .where(
                GroupTopic.header_message_id.is_not(None),
                select(Order.id)
                .where(  # a few index lookups per topic (ix_orders_user_active), never a scan of the orders
                    Order.telegram_user_id == Customer.telegram_user_id,
                    Order.horeca_id == StaffGroup.horeca_id,
                    Order.updated_at >= func.coalesce(GroupTopic.header_at, GroupTopic.created_at),
                )
                .exists(),
            )
            .order_by(GroupTopic.id)
            .limit(limit)
        )
        due = []
        for topic, group, customer in db.session.execute(changed).tuples():
            assert topic.header_message_id is not None
            header = _header(group.horeca_id, customer)
            due.append(
                HeaderDue(topic.id, group.chat_id, topic.header_message_id, topic.header_text, header, group.language_code)
            )
        return due


def header_drawn(topic_id: int, text: str | None) -> None:
    """The header was redrawn (or found unchanged, or gone: `text` None forgets the message)."""
    with transaction():
        topic = db.session.get(GroupTopic, topic_id)
        if topic is None:
            return
        topic.header_at = utcnow()
        if text is None:
            topic.header_message_id = None
        else:
            topic.header_text = text


# --- a message in a topic ---------------------------------------------------------------------------------


class TopicOutcome(StrEnum):
    SENT = "sent"  # queued to the customer (or recorded blocked)
    NOT_STAFF = "not_staff"  # the sender is not staff of the horeca: the group is to be told who may answer
    NOT_STAFF_AGAIN = "not_staff_again"  # the same, told before: nothing to say
    NOT_A_DIALOG = "not_a_dialog"  # not a linked group or not a customer's topic: ignored
    INVALID = "invalid"  # empty or too long
    TOO_BIG = "too_big"  # a file over the Bot API's 20 MB download limit: nothing stored
    CAPTION_TOO_LONG = "caption_too_long"  # a media message's caption over 1024 characters: nothing stored


@dataclass(frozen=True)
class TopicReply:
    outcome: TopicOutcome
    horeca_name: str = ""
    customer_name: str = ""
    blocked: bool = False
    staff_names: list[str] = field(default_factory=list)


def reply_from_topic(
    chat_id: int,
    thread_id: int,
    telegram_user_id: int,
    text: str,
    *,
    attachment: media.Attachment | None = None,
) -> TopicReply:
    """A message in a customer's topic: from staff of the horeca it goes to the customer, like a cabinet reply.

    `attachment`: its media (then `text` is the caption, maybe empty; TOO_BIG for a file over 20 MB)."""
    with transaction():
        group = _group_of_chat(chat_id)
        if group is None:
            return TopicReply(TopicOutcome.NOT_A_DIALOG)
        topic = db.session.scalar(
            select(GroupTopic).where(GroupTopic.group_id == group.id, GroupTopic.message_thread_id == thread_id)
        )
        if topic is None:
            return TopicReply(TopicOutcome.NOT_A_DIALOG)
        horeca_id = group.horeca_id
        name = staff.horeca_name(horeca_id)
        customer = db.session.get(Customer, topic.customer_id)
        assert customer is not None
        member = staff.membership(horeca_id, telegram_user_id)
        if member is None or member.removed_at is not None:
            names = [m.display_name for m in staff.active_staff(horeca_id)]
            told = db.session.scalar(
                select(GroupStranger.id).where(
                    GroupStranger.group_id == group.id, GroupStranger.telegram_user_id == telegram_user_id
                )
            )
            if told is not None:
                return TopicReply(TopicOutcome.NOT_STAFF_AGAIN, name, customer.display_name, staff_names=names)
            try:
                with db.session.begin_nested():
                    db.session.add(GroupStranger(group_id=group.id, telegram_user_id=telegram_user_id, told_at=utcnow()))
            except IntegrityError:  # told meanwhile
                return TopicReply(TopicOutcome.NOT_STAFF_AGAIN, name, customer.display_name, staff_names=names)
            return TopicReply(TopicOutcome.NOT_STAFF, name, customer.display_name, staff_names=names)
        try:
            body = clean_text(text) if attachment is None else _caption(text, attachment)
        except Invalid as error:
            outcome = {"file_too_big": TopicOutcome.TOO_BIG, "caption_too_long": TopicOutcome.CAPTION_TOO_LONG}
            return TopicReply(outcome.get(error.code, TopicOutcome.INVALID), name, customer.display_name)
        now = utcnow()
        blocked = customer.is_blocked
        queue_staff_message(horeca_id, member, customer, name, body, attachment, now)
        mark_read_in(horeca_id, customer.id)
        return TopicReply(TopicOutcome.SENT, name, customer.display_name, blocked=blocked)


def _caption(text: str, attachment: media.Attachment) -> str:
    """A topic media message's caption: may be empty; Invalid for a file that cannot be passed on or a long caption."""
    if attachment.too_big:
        raise Invalid("the file is over the 20 MB Telegram lets a bot download", "file_too_big")
    body = text.strip()
    if len(body) > media.MAX_CAPTION:
        raise Invalid("the caption is too long", "caption_too_long")
    return body
