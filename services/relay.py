"""Customer → staff: a customer's text or media goes to every staff member of the horeca they are talking to.

The horeca is the one with an active order or an open dialog; with several, the customer picks one first (the
message waits as "awaiting_horeca"). Each staff member gets a staff notice through the staff bot's outbox; a
`MessageCopy` links the message to each notice, so the customer's later edit can follow (services/edits.py).
Media (a photo, an album, a voice note, a location, ...) travels as an `Attachment` (services/media.py): stored
with the message, carried in the notice's payload; the delivery worker passes the file on through the staff bot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import func, select

from database import reading, transaction
from models import Customer, DialogMessage, MessageCopy, Order, StaffMember, db, utcnow
from services import customers, linking, media, staff, staff_group
from services.cabinet import DEFAULTS, CabinetSettings, clean_text, newest_active_order
from services.errors import Invalid, NotFound
from services.orders import ACTIVE_STATUSES

MAX_CUSTOMER_TEXT = 4000


class RelayOutcome(StrEnum):
    RELAYED = "relayed"  # stored and queued to the horeca's staff
    CHOOSE = "choose"  # stored; the customer is asked which horeca it is for
    ALREADY = "already"  # a choice for a message relayed before: nothing new
    NONE = "none"  # not for any horeca's staff (no dialog, a linking code, a forged or stale choice)
    INVALID = "invalid"  # for the staff, but empty or too long: nothing stored
    TOO_BIG = "too_big"  # for the staff, but a file over the Bot API's 20 MB download limit: nothing stored


@dataclass(frozen=True)
class Relayed:
    """What became of a customer's text (or of their choice of horeca)."""

    outcome: RelayOutcome
    horeca_id: str | None = None
    horeca_name: str | None = None
    dialog_message_id: int | None = None
    staff_count: int = 0
    choices: list[tuple[str, str]] = field(default_factory=list)  # (key for the button, horeca name)


def horeca_key(horeca_id: str) -> str:
    """A short stable key for a horeca in callback data (Telegram allows 64 bytes; ids may be 128 characters)."""
    return hashlib.sha256(horeca_id.encode()).hexdigest()[:12]


def _candidates(customer: Customer, settings: CabinetSettings) -> list[str]:
    """Horecas with staff the customer can talk to: active orders first (oldest first), then open dialogs (newest first)."""
    found: list[str] = []
    orders = db.session.scalars(
        select(Order.horeca_id)
        .where(Order.customer_id == customer.id, Order.status.in_(ACTIVE_STATUSES))
        .order_by(Order.created_at, Order.id)
    )
    for horeca_id in orders:
        if horeca_id not in found:
            found.append(horeca_id)
    recent = db.session.execute(
        select(DialogMessage.horeca_id, func.max(DialogMessage.id).label("last"))
        .where(
            DialogMessage.customer_id == customer.id,
            DialogMessage.horeca_id.is_not(None),
            DialogMessage.created_at >= utcnow() - settings.window,
        )
        .group_by(DialogMessage.horeca_id)
        .order_by(func.max(DialogMessage.id).desc())
    )
    for dialog_horeca, _ in recent.tuples():
        if dialog_horeca is not None and dialog_horeca not in found:
            found.append(dialog_horeca)
    return [h for h in found if staff.active_staff(h)]


def has_dialog(telegram_user_id: int, settings: CabinetSettings = DEFAULTS) -> bool:
    """Whether the customer's plain text would go to a horeca's staff (an active order or an open dialog there)."""
    with reading():
        customer = customers.find(telegram_user_id)
        return customer is not None and bool(_candidates(customer, settings))


def _relay(customer: Customer, message: DialogMessage, horeca_id: str) -> Relayed:
    order = newest_active_order(horeca_id, customer.id)
    message.horeca_id = horeca_id
    message.order_pk = order.id if order else None
    message.state = "relayed"
    name = staff.horeca_name(horeca_id)
    members = staff.active_staff(horeca_id)
    attachment = media.parse(message.media)
    for member in members:
        serves = db.session.scalar(
            select(func.count())
            .select_from(StaffMember)
            .where(StaffMember.telegram_user_id == member.telegram_user_id, StaffMember.removed_at.is_(None))
        )
        notice = staff.queue_notice(
            member,
            {
                "type": "customer_message",
                "dialog_message_id": message.id,
                "horeca_id": horeca_id,
                "horeca": name,
                "show_horeca": (serves or 0) > 1,
                "customer": customer.display_name,
                "username": customer.username,
                "order_id": order.order_id if order else None,
                "text": message.text,
                **({"media": attachment.as_payload()} if attachment else {}),
            },
            horeca_id=horeca_id,
        )
        db.session.flush()
        db.session.add(MessageCopy(dialog_message_id=message.id, outbox_id=notice.id))
    topic_row = staff_group.queue_customer_message(horeca_id, customer, message)  # and into their topic, if any
    if topic_row is not None:  # the topic's copy follows the customer's edits like a staff notice
        db.session.flush()
        db.session.add(MessageCopy(dialog_message_id=message.id, outbox_id=topic_row.id))
    return Relayed(RelayOutcome.RELAYED, horeca_id, name, message.id, len(members))


def _is_live_code(text: str) -> bool:
    """Whether the text is a customer code that can still be claimed (a code keeps its meaning during a dialog)."""
    if not linking.looks_like_code(text):
        return False
    try:
        linking.verification_status(text)
    except NotFound:
        return False
    return True


def relay_from_customer(
    telegram_user_id: int,
    text: str,
    *,
    chat_id: int | None = None,
    profile: customers.Profile | None = None,
    settings: CabinetSettings = DEFAULTS,
    attachment: media.Attachment | None = None,
    source_message_id: int | None = None,
) -> Relayed:
    """A customer's text (or media, with `attachment` and its caption as `text`): store it and send it to every
    staff member of their horeca (or ask which horeca).

    NONE when the text is for nobody's staff (the caller answers it its own way). With `chat_id`, writing to the
    bot also refreshes the customer's profile and takes back a customer who had blocked it. TOO_BIG (nothing
    stored) for a file the staff bot could not fetch.
    """
    if attachment is None and _is_live_code(text):
        return Relayed(RelayOutcome.NONE)
    with transaction():
        customer = customers.find(telegram_user_id)
        if customer is None:
            return Relayed(RelayOutcome.NONE)
        candidates = _candidates(customer, settings)
        if not candidates:
            return Relayed(RelayOutcome.NONE)
        if chat_id is not None and customer.linked_at is not None:
            customers.get_or_create(telegram_user_id, chat_id, profile)
            customers.heard_from(customer)  # writing to the bot means they are reachable (back, if they had blocked it)
        if attachment is not None and attachment.too_big:
            return Relayed(RelayOutcome.TOO_BIG)
        try:
            if attachment is not None:
                body = text.strip()
                if len(body) > media.MAX_CAPTION:
                    raise Invalid("the caption is too long", "text_too_long")
            else:
                body = clean_text(text, limit=MAX_CUSTOMER_TEXT)
        except Invalid:
            return Relayed(RelayOutcome.INVALID)
        message = DialogMessage(
            direction="in",
            customer_id=customer.id,
            text=body,
            state="awaiting_horeca",
            created_at=utcnow(),
            media=attachment.as_json() if attachment else None,
            source_message_id=source_message_id,
        )
        db.session.add(message)
        db.session.flush()
        if len(candidates) == 1:
            return _relay(customer, message, candidates[0])
        choices = [(horeca_key(h), staff.horeca_name(h)) for h in candidates]
        return Relayed(RelayOutcome.CHOOSE, dialog_message_id=message.id, choices=choices)


def choose_horeca(telegram_user_id: int, dialog_message_id: int, key: str, settings: CabinetSettings = DEFAULTS) -> Relayed:
    """The customer picked the horeca a waiting message is for; forged or stale choices relay nothing."""
    with transaction():
        customer = customers.find(telegram_user_id)
        message = db.session.get(DialogMessage, dialog_message_id, with_for_update=True)
        if customer is None or message is None or message.customer_id != customer.id or message.direction != "in":
            return Relayed(RelayOutcome.NONE)
        if message.state != "awaiting_horeca":
            name = staff.horeca_name(message.horeca_id or "")
            return Relayed(RelayOutcome.ALREADY, message.horeca_id, name, message.id)
        horeca_id = next((h for h in _candidates(customer, settings) if horeca_key(h) == key), None)
        if horeca_id is None:
            return Relayed(RelayOutcome.NONE)
        return _relay(customer, message, horeca_id)
