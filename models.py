"""SQLAlchemy models shared by the web app and the bot process. Imports nothing of ours.

All times are stored as naive UTC (`utcnow()`), so SQLite and PostgreSQL hold the same values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Autoincrementing 64-bit keys on PostgreSQL; SQLite only autoincrements INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)

# db.Model is Base with Flask-SQLAlchemy's table naming and engine binding; type checkers see Base.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model


def utcnow() -> datetime:
    """Now, as naive UTC (the form every column stores)."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso(value: datetime | None) -> str | None:
    """ISO-8601 with a "Z", or None, from the naive UTC that every column holds."""
    if value is None:
        return None
    return value.isoformat() + "Z"


# --- The values of the string columns the code branches on. The columns stay VARCHAR and load as str (a StrEnum
# member equals its string): a row written by a newer version with a value this one does not know still loads.


class OutboxState(StrEnum):
    """Where an outbox message is: pending → sending → sent | failed | blocked (or back to pending); a status that
    a newer one of its order replaced while both waited in a backlog: pending → superseded (services/coalescing.py)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"
    SUPERSEDED = "superseded"


class OutboxKind(StrEnum):
    """What an outbox message is; each (bot, kind) has one renderer in the bot process."""

    STATUS = "status"  # an order's status card (customer bot)
    MESSAGE = "message"  # a staff member's message to a customer (customer bot)
    STAFF_NOTICE = "staff_notice"  # a customer's message, a delivery summary, a removal (staff bot)
    GROUP_MESSAGE = "group_message"  # a dialog message in the customer's topic of the cafe's staff group (staff bot)
    ORDER_NOTE = "order_note"  # the backend's text about an order, without a status (customer bot)
    EDIT = "edit"  # an edit of a message sent for another row (either bot; services/media_relay.py)


class BotName(StrEnum):
    """Which bot sends an outbox message."""

    CUSTOMER = "customer"
    HORECA = "horeca"


class WebhookState(StrEnum):
    """Where a webhook event is: pending → sent | failed."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class StaffMode(StrEnum):
    """What a staff member's next plain text means."""

    IDLE = "idle"
    COMPOSING = "composing"
    ADDING_REPLY = "adding_reply"


class PromptEnd(StrEnum):
    """How a staff bot prompt (write to the selection, add a quick reply) ended; its old buttons say so."""

    SENT = "sent"  # its message went out
    SAVED = "saved"  # the quick reply was saved
    CANCELLED = "cancelled"  # ✖️ or /cancel
    CLOSED = "closed"  # the selection was cleared, the horeca switched: nothing to write to any more
    REPLACED = "replaced"  # a newer prompt was opened (never stored: a button of an older prompt)


def display_name(first_name: str | None, last_name: str | None, username: str | None, telegram_user_id: int) -> str:
    """How a Telegram user is shown to a person: their name, else @username, else the id."""
    name = " ".join(p for p in (first_name, last_name) if p)
    if name:
        return name
    if username:
        return "@" + username
    return str(telegram_user_id)


class Customer(Model):
    """A Telegram user who linked their website account (claimed a code) or talked to the bot."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    first_name: Mapped[str | None] = mapped_column(String(256))
    last_name: Mapped[str | None] = mapped_column(String(256))
    username: Mapped[str | None] = mapped_column(String(64))
    language_code: Mapped[str | None] = mapped_column(String(16))
    linked_at: Mapped[datetime | None] = mapped_column(DateTime)
    is_blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    is_deactivated: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked_at: Mapped[datetime | None] = mapped_column(DateTime)
    unblocked_at: Mapped[datetime | None] = mapped_column(DateTime)
    state_changed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # When the bot last had proof it can write to them (they wrote to it, or a message went through);
    # None while it has none: linked through the API only, or Telegram answered "chat not found".
    reachable_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    @property
    def display_name(self) -> str:
        return display_name(self.first_name, self.last_name, self.username, self.telegram_user_id)


class VerificationCode(Model):
    """A one-time code that links a Telegram user (a customer, or staff of a horeca)."""

    __tablename__ = "verification_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    # Upper-cased form: typed codes match case-insensitively, and two codes differing in case collide.
    code_norm: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16), default="customer")
    horeca_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    claimed_by: Mapped[int | None] = mapped_column(BigInteger)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)


class CodeAttempt(Model):
    """A wrong code typed in the bot; counted to stop guessing."""

    __tablename__ = "code_attempts"
    __table_args__ = (
        Index("ix_code_attempts_user_time", "telegram_user_id", "created_at"),
        Index("ix_code_attempts_time", "created_at"),  # the limit across all users
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Order(Model):
    """An order of a horeca, owned by one customer; its status is the newest one recorded."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("horeca_id", "order_id", name="uq_orders_horeca_order"),
        Index("ix_orders_user_active", "telegram_user_id", "cancellable"),
        Index("ix_orders_updated", "updated_at"),  # the retention job's scan of orders past the window
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    horeca_id: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str | None] = mapped_column(String(16))  # None until the first status (only messages so far)
    # Once the order has reached ready (or a final status) it never becomes cancellable again.
    cancellable: Mapped[bool] = mapped_column(Boolean, default=True)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # What the card shows besides the status (issue 11), as the backend last sent each: None until it does.
    items: Mapped[str | None] = mapped_column(Text)  # JSON [{"name", "qty"}]
    total: Mapped[str | None] = mapped_column(String(32))  # shown as given
    eta: Mapped[datetime | None] = mapped_column(DateTime)
    pickup_code: Mapped[str | None] = mapped_column(String(16))


_ACTIVE = text("state IN ('pending', 'sending')")
_ACTIVE_CHAT = text("state IN ('pending', 'sending') AND order_pk IS NULL")


class OutboxMessage(Model):
    """A message for the bot process to deliver: a status update, or a dialog message.

    `id` is the update_id the API returns. States: pending → sending → sent | failed | blocked.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "state", "next_attempt_at"),
        Index("ix_outbox_order", "order_pk", "id"),
        Index("ix_outbox_chat", "bot", "chat_id", "id"),
        Index("ix_outbox_horeca", "horeca_id", "state"),
        # The few sent messages that still carry a keyboard (the delivery job's sweep reads only these).
        Index("ix_outbox_has_button", "order_pk", sqlite_where=text("has_button = 1"), postgresql_where=text("has_button")),
        # Only pending and sending rows: the claim's "an older row of the order (chat) is still active" (migration 0008).
        Index("ix_outbox_active_order", "order_pk", "id", sqlite_where=_ACTIVE, postgresql_where=_ACTIVE),
        Index("ix_outbox_active_chat", "bot", "chat_id", "id", sqlite_where=_ACTIVE_CHAT, postgresql_where=_ACTIVE_CHAT),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default=OutboxKind.STATUS)
    bot: Mapped[str] = mapped_column(String(16), default=BotName.CUSTOMER)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    order_pk: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    status: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)  # JSON for kinds that need more than text
    dedup_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    state: Mapped[str] = mapped_column(String(16), default=OutboxState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    first_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    has_button: Mapped[bool] = mapped_column(Boolean, default=False)
    # The horeca whose dialog the row carries (a customer's message to its staff, a staff message to a customer);
    # NULL for status rows, delivery summaries and removal notices.
    horeca_id: Mapped[str | None] = mapped_column(String(128))


class WebhookEvent(Model):
    """An event for the backend's webhook, written in the same transaction as the change it reports."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)  # the webhook-id header, stable across retries
    type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # the exact JSON body, signed as is
    state: Mapped[str] = mapped_column(String(16), default=WebhookState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)


class BotHeartbeat(Model):
    """What the bot process last did, so the web app can tell whether it is alive."""

    __tablename__ = "bot_heartbeats"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str | None] = mapped_column(String(64))
    pid: Mapped[int | None] = mapped_column(Integer)
    hostname: Mapped[str | None] = mapped_column(String(256))
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime)
    last_get_updates_ok: Mapped[datetime | None] = mapped_column(DateTime)
    last_delivery_tick: Mapped[datetime | None] = mapped_column(DateTime)
    poller: Mapped[str | None] = mapped_column(String(256))  # hostname:pid of the process polling this bot (issue 10)


# --- The HoReCa staff bot (issue 4) ------------------------------------------------------------------


class Horeca(Model):
    """A cafe whose staff use the staff bot; created when its first staff code is issued."""

    __tablename__ = "horecas"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # the backend's horeca_id
    name: Mapped[str | None] = mapped_column(String(128))  # shown to customers; the id when unset
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The profile (issue 11, PUT /horeca/<id>): an IANA timezone (None: UTC), contact and status texts as JSON.
    timezone: Mapped[str | None] = mapped_column(String(64))
    contact: Mapped[str | None] = mapped_column(Text)  # JSON {"phone", "address", "url"}
    texts: Mapped[str | None] = mapped_column(Text)  # JSON {"<language>": {"<status>": "<template>"}}
    profile_updated_at: Mapped[datetime | None] = mapped_column(DateTime)


class StaffMember(Model):
    """A Telegram account serving one horeca; removing sets `removed_at`, a new code brings it back."""

    __tablename__ = "staff_members"
    __table_args__ = (
        UniqueConstraint("horeca_id", "telegram_user_id", name="uq_staff_horeca_user"),
        Index("ix_staff_user", "telegram_user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    horeca_id: Mapped[str] = mapped_column(ForeignKey("horecas.id"))
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    first_name: Mapped[str | None] = mapped_column(String(256))
    last_name: Mapped[str | None] = mapped_column(String(256))
    username: Mapped[str | None] = mapped_column(String(64))
    language_code: Mapped[str | None] = mapped_column(String(16))
    joined_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime)

    @property
    def display_name(self) -> str:
        return display_name(self.first_name, self.last_name, self.username, self.telegram_user_id)


class StaffState(Model):
    """A staff bot account's cabinet state: which horeca it works for now and what its next text means."""

    __tablename__ = "staff_states"

    telegram_user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    current_horeca_id: Mapped[str | None] = mapped_column(String(128))
    mode: Mapped[str] = mapped_column(String(16), default=StaffMode.IDLE)
    # The number of the account's newest prompt (its buttons carry it) and how it ended (None while it is open).
    prompt_no: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    prompt_end: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DialogSelection(Model):
    """A dialog (customer) a staff member ticked in the cabinet; persisted so it survives restarts."""

    __tablename__ = "dialog_selections"
    __table_args__ = (UniqueConstraint("staff_member_id", "customer_id", name="uq_selection_staff_customer"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_member_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DialogBatch(Model):
    """One "write to selected" (or reply) by a staff member; summarized back to them once delivered."""

    __tablename__ = "dialog_batches"
    __table_args__ = (Index("ix_dialog_batches_open", "summarized_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    horeca_id: Mapped[str] = mapped_column(ForeignKey("horecas.id"))
    staff_member_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id"))
    total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    summarized_at: Mapped[datetime | None] = mapped_column(DateTime)


class DialogMessage(Model):
    """A message between a customer and a horeca's staff, in either direction.

    direction "out" (staff → customer): `outbox_id` is the customer bot message, whose state is the delivery state.
    direction "in" (customer → staff): `state` is relayed, or awaiting_horeca while the customer picks the horeca.
    """

    __tablename__ = "dialog_messages"
    __table_args__ = (
        Index("ix_dialog_messages_horeca_time", "horeca_id", "created_at"),
        Index("ix_dialog_messages_customer", "customer_id", "id"),
        Index("ix_dialog_messages_batch", "batch_id"),
        Index("ix_dialog_messages_source", "source_message_id"),
        # Deleting an outbox row or an order checks these foreign keys (the retention job deletes both).
        Index("ix_dialog_messages_outbox", "outbox_id"),
        Index("ix_dialog_messages_order", "order_pk"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    horeca_id: Mapped[str | None] = mapped_column(String(128))  # None while the customer picks the horeca
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    staff_member_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id"))
    order_pk: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="relayed")
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("dialog_batches.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Media (services/media.py): the file reference, location, venue, contact or album as JSON; `text` is the caption.
    media: Mapped[str | None] = mapped_column(Text)
    source_message_id: Mapped[int | None] = mapped_column(BigInteger)  # the message in the writer's chat (for edits)
    edited_at: Mapped[datetime | None] = mapped_column(DateTime)


class DialogRead(Model):
    """How far a horeca has read its dialog with a customer (the newest inbound message id seen)."""

    __tablename__ = "dialog_reads"
    __table_args__ = (UniqueConstraint("horeca_id", "customer_id", name="uq_dialog_reads_horeca_customer"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    horeca_id: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    last_read_message_id: Mapped[int] = mapped_column(BigInteger, default=0)
    read_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CannedReply(Model):
    """A short reply a horeca's staff saved to send with one tap; shared by the horeca's staff."""

    __tablename__ = "canned_replies"
    __table_args__ = (Index("ix_canned_replies_horeca", "horeca_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    horeca_id: Mapped[str] = mapped_column(ForeignKey("horecas.id"))
    text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(BigInteger)  # telegram_user_id of the staff member
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# --- The staff group: a Telegram supergroup with a forum topic per customer (issue 12) ------------------


class GroupProblem(StrEnum):
    """Why the staff bot cannot open topics in a linked group (None on the row: it can)."""

    NOT_FORUM = "not_forum"  # a basic group, or a supergroup with topics switched off
    NOT_ADMIN = "not_admin"  # the bot is a plain member
    NO_MANAGE_TOPICS = "no_manage_topics"  # an admin without the "Manage Topics" right
    NOT_MEMBER = "not_member"  # the bot was removed from the group


class StaffGroup(Model):
    """The Telegram group a horeca's staff linked with a group code: one topic per customer there."""

    __tablename__ = "staff_groups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    horeca_id: Mapped[str] = mapped_column(ForeignKey("horecas.id"), unique=True)  # one group per horeca
    chat_id: Mapped[int] = mapped_column(BigInteger, unique=True)  # follows migrate_to_chat_id
    title: Mapped[str | None] = mapped_column(String(256))
    linked_by: Mapped[int | None] = mapped_column(BigInteger)  # telegram_user_id of whoever sent the code
    language_code: Mapped[str | None] = mapped_column(String(16))  # theirs: the language the bot speaks in the group
    linked_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    problem: Mapped[str | None] = mapped_column(String(32))  # GroupProblem; None while topics can be opened
    problem_at: Mapped[datetime | None] = mapped_column(DateTime)


class GroupTopic(Model):
    """A customer's forum topic in their horeca's staff group; `message_thread_id` None: (re-)create on next message."""

    __tablename__ = "group_topics"
    __table_args__ = (
        UniqueConstraint("group_id", "customer_id", name="uq_group_topics_group_customer"),
        Index("ix_group_topics_thread", "group_id", "message_thread_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("staff_groups.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    message_thread_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str | None] = mapped_column(String(128))
    # The topic's first message: the customer and their active orders, edited when the orders change.
    header_message_id: Mapped[int | None] = mapped_column(BigInteger)
    header_text: Mapped[str | None] = mapped_column(Text)
    header_at: Mapped[datetime | None] = mapped_column(DateTime)  # when the header was last drawn
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class GroupStranger(Model):
    """A member of a staff group who is not staff of its horeca and was told so once (their topic messages go nowhere)."""

    __tablename__ = "group_strangers"
    __table_args__ = (UniqueConstraint("group_id", "telegram_user_id", name="uq_group_strangers_group_user"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("staff_groups.id"))
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)
    told_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class MediaUpload(Model):
    """A file uploaded through a bot: its file_id for that bot, so each file goes up once per bot (services/media.py)."""

    __tablename__ = "media_uploads"
    __table_args__ = (UniqueConstraint("file_unique_id", "bot", name="uq_media_uploads_file_bot"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    file_unique_id: Mapped[str] = mapped_column(String(128))  # Telegram's, the same for every bot
    bot: Mapped[str] = mapped_column(String(16))  # BotName of the bot the file was uploaded through
    file_id: Mapped[str] = mapped_column(String(256))  # valid for that bot only
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class MessageCopy(Model):
    """An outbox row that carries a dialog message to one staff member (a customer's edit follows each copy)."""

    __tablename__ = "message_copies"
    __table_args__ = (Index("ix_message_copies_dialog_message", "dialog_message_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dialog_message_id: Mapped[int] = mapped_column(ForeignKey("dialog_messages.id"))
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"))


# --- API keys scoped to cafes, and ratings (issue 11) --------------------------------------------------


class ApiKey(Model):
    """A backend key for some cafes only (`API_TOKEN` is the admin key); only the key's SHA-256 is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public: the key carries it, for the lookup
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the whole key
    horeca_ids: Mapped[str] = mapped_column(Text)  # a JSON list of the cafes it may act for
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)  # updated at most once a minute


class OrderRating(Model):
    """A customer's 1-5 rating of a completed order, and the comment they sent after it."""

    __tablename__ = "order_ratings"
    __table_args__ = (
        UniqueConstraint("order_pk", name="uq_order_ratings_order"),
        Index("ix_order_ratings_comment", "telegram_user_id", "comment_until"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_pk: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)  # the first tap: changes allowed for 24 h
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Until then the customer's next text is the comment (not relayed to the staff); None once it came.
    comment_until: Mapped[datetime | None] = mapped_column(DateTime)


# --- Several bot processes on one PostgreSQL (issue 10) ---------------------------------------------


class SendBudget(Model):
    """A bot's send budget shared by every bot process (PostgreSQL): the next free send slot, a 429 pause.

    Times are seconds since the epoch by the database server's clock (services/send_budget.py).
    """

    __tablename__ = "send_budgets"

    bot: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_slot: Mapped[float] = mapped_column(Float)
    paused_until: Mapped[float] = mapped_column(Float)
    last_grant: Mapped[float | None] = mapped_column(Float)  # the first slot the last reservation got (None: refused)


class SendChatSlot(Model):
    """When a bot may next send to one chat, shared by every bot process (PostgreSQL)."""

    __tablename__ = "send_chat_slots"

    bot: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    next_at: Mapped[float] = mapped_column(Float)
