"""An order's status card: the status message the customer bot shows, and whether its Cancel button belongs on it.

Every place that draws a status message or moves its keyboard reads the same `StatusCard`, from one family
of queries: the cards of rows being claimed for sending (`claimed`, from one query per claimed batch), the
card under a pressed button (`pressed`, `of_message`), and the cards whose keyboard must go (`stale`,
`stale_of`, `superseded`). Each query names the cafe as staff messages do (the horeca's name, else its id)
through an outer join to `horecas`, never a query per card. The rules "may this order still be cancelled" and
"does the button belong on this message" are the card's properties, so the bot only draws and translates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, or_, select
from sqlalchemy.orm import aliased

from database import read_only, reading
from models import Customer, Horeca, Order, OutboxKind, OutboxMessage, OutboxState, db
from services import cafes
from services.order_details import Details, of_row
from services.order_status import Status
from services.orders import CANCELLABLE_STATUSES


@dataclass(frozen=True, slots=True)
class StatusCard:
    """One status message of an order, with everything needed to draw it and to decide about its Cancel button."""

    row_id: int  # the outbox row of the message
    bot: str
    chat_id: int
    message_id: int | None  # the Telegram message showing it (None until sent)
    has_button: bool  # the message carries a keyboard now
    order_pk: int
    order_id: str
    horeca_id: str
    cafe: str  # how the card names the cafe
    owner: int  # the Telegram user who owns the order
    status: str | None
    text: str | None  # the backend's note
    language: str | None  # the customer's Telegram language_code
    cancellable: bool  # the order's status still allows a cancel, and it never stopped being cancellable
    cancel_requested: bool
    newest: bool  # no newer status of the order replaces this one (being sent: none queued; sent: none sent)
    # The cafe's own words for this card's status, by language (its profile's texts), and its timezone.
    templates: tuple[tuple[str, str], ...] = ()
    timezone: str | None = None
    details: Details = Details()  # items, total, ETA and pickup code, as the order holds them now

    def template(self, language: str) -> str | None:
        """The cafe's template for this card's status in `language` (a catalog's language), if it has one."""
        return next((t for lang, t in self.templates if lang == language), None)

    order_status: str | None = None  # the order's status now (this card may show an older one)

    @property
    def open(self) -> bool:
        """The customer may still ask to cancel the order."""
        return self.cancellable and not self.cancel_requested

    @property
    def button(self) -> bool:
        """The Cancel button belongs under this message: the order is open and this is its newest status."""
        return self.open and self.newest and self.status in CANCELLABLE_STATUSES

    @property
    def rateable(self) -> bool:
        """The rating stars belong under this message: the newest card of a completed order, showing `completed`."""
        return self.newest and self.status == Status.COMPLETED and self.order_status == Status.COMPLETED


def _cafe(horeca_id: str, name: str | None) -> str:
    """What a card calls the cafe: like staff messages do (`staff.horeca_name`), its name, else its id."""
    return name or horeca_id


def _cancellable(cancellable: bool, order_status: str | None) -> bool:
    return bool(cancellable) and order_status in CANCELLABLE_STATUSES


def _templates(texts: str | None, status: str | None) -> tuple[tuple[str, str], ...]:
    """The cafe's templates for one status, by language, from its stored texts."""
    if not texts or status is None:
        return ()
    return tuple((lang, by_status[status]) for lang, by_status in cafes.templates(texts).items() if status in by_status)


def _extras(r: Any, status: str | None) -> dict[str, Any]:
    """The card's fields from the cafe's profile and the order's details (a query row with both)."""
    return {"templates": _templates(r.horeca_texts, status), "timezone": r.horeca_timezone, "details": of_row(r)}


_PROFILE = (Horeca.texts.label("horeca_texts"), Horeca.timezone.label("horeca_timezone"))
_DETAILS = (Order.items, Order.total, Order.eta, Order.pickup_code)


# --- cards of rows being claimed: one query for the orders of a whole batch -----------------------------

_NEWER = aliased(OutboxMessage, name="newer")
_ORDERS_OF_CLAIM = select(
    Order.id, Order.order_id, Order.horeca_id, Order.telegram_user_id, Order.status, Order.cancellable,
    Order.cancel_requested_at, Horeca.name.label("horeca_name"), *_PROFILE, *_DETAILS,
    select(func.max(_NEWER.id))
    .where(_NEWER.order_pk == Order.id, _NEWER.kind == OutboxKind.STATUS)
    .scalar_subquery()
    .label("newest"),
).outerjoin(Horeca, Horeca.id == Order.horeca_id).where(
    Order.id.in_(bindparam("pks", expanding=True))
)  # fmt: skip


def orders_of_claim(conn: Connection, order_pks: Iterable[int]) -> Mapping[int, Row[Any]]:
    """The orders of a claimed batch (by pk), in one query on the claim's connection."""
    pks = sorted(set(order_pks))
    return {r.id: r for r in conn.execute(_ORDERS_OF_CLAIM, {"pks": pks})} if pks else {}


def claimed(row: Any, order: Row[Any] | None, language: str | None) -> StatusCard | None:
    """The card of a claimed outbox row (None unless it is a status row or a text about an order), from
    `orders_of_claim`'s row of its order."""
    if order is None or row.kind not in (OutboxKind.STATUS, OutboxKind.ORDER_NOTE):
        return None
    note = row.kind == OutboxKind.ORDER_NOTE  # a text about the order: never the order's newest status card
    return StatusCard(
        row_id=row.id, bot=row.bot, chat_id=row.chat_id, message_id=None, has_button=False, order_pk=order.id,
        order_id=order.order_id, horeca_id=order.horeca_id, cafe=_cafe(order.horeca_id, order.horeca_name),
        owner=order.telegram_user_id,
        status=row.status, text=row.text, language=language, cancellable=_cancellable(order.cancellable, order.status),
        cancel_requested=order.cancel_requested_at is not None,
        newest=not note and (order.newest is None or order.newest <= row.id), **_extras(order, row.status),
        order_status=order.status,
    )  # fmt: skip


# --- cards of sent messages -------------------------------------------------------------------------------


def _build_sent_cards() -> tuple[Any, Any]:
    o, n = OutboxMessage, _NEWER
    newer_sent = (
        select(n.id)
        .where(
            n.order_pk == o.order_pk, n.kind == OutboxKind.STATUS, n.id > o.id, n.state == OutboxState.SENT,
            n.telegram_message_id.is_not(None),
        )
        .exists()
    )  # fmt: skip
    cards = (
        select(
            o.id, o.bot, o.chat_id, o.telegram_message_id, o.has_button, o.status, o.text,
            Order.id.label("order_pk"), Order.order_id, Order.horeca_id, Order.telegram_user_id,
            Order.status.label("order_status"), Order.cancellable, Order.cancel_requested_at, Customer.language_code,
            newer_sent.label("newer_sent"), Horeca.name.label("horeca_name"), *_PROFILE, *_DETAILS,
        )
        .join(Order, Order.id == o.order_pk)
        .outerjoin(Customer, Customer.id == Order.customer_id)
        .outerjoin(Horeca, Horeca.id == Order.horeca_id)
        .where(o.kind == OutboxKind.STATUS, o.telegram_message_id.is_not(None))
    )  # fmt: skip
    stale = cards.where(
        o.has_button == True,  # noqa: E712 (the partial index ix_outbox_has_button matches this form)
        or_(Order.cancellable == False, Order.cancel_requested_at.is_not(None), newer_sent),  # noqa: E712
    ).order_by(o.id)
    return cards, stale


_SENT_CARDS, _STALE = _build_sent_cards()
_STALE_OF_ORDERS = _STALE.where(OutboxMessage.order_pk.in_(bindparam("order_pks", expanding=True)))
_OF_MESSAGE = _SENT_CARDS.where(
    OutboxMessage.order_pk == bindparam("order_pk"), OutboxMessage.bot == bindparam("bot"),
    OutboxMessage.chat_id == bindparam("chat_id"), OutboxMessage.telegram_message_id == bindparam("message_id"),
)  # fmt: skip


def _sent(r: Row[Any]) -> StatusCard:
    return StatusCard(
        row_id=r.id, bot=r.bot, chat_id=r.chat_id, message_id=r.telegram_message_id, has_button=bool(r.has_button),
        order_pk=r.order_pk, order_id=r.order_id, horeca_id=r.horeca_id, cafe=_cafe(r.horeca_id, r.horeca_name),
        owner=r.telegram_user_id,
        status=r.status, text=r.text, language=r.language_code, cancellable=_cancellable(r.cancellable, r.order_status),
        cancel_requested=r.cancel_requested_at is not None, newest=not r.newer_sent, **_extras(r, r.status),
        order_status=r.order_status,
    )  # fmt: skip


@read_only()  # on SQLite: no write lock, so never waits behind the delivery's writes
def of_message(bot: str, chat_id: int, message_id: int, order_pk: int) -> StatusCard | None:
    """The card shown as message `message_id` in `chat_id` if it is a status message of order `order_pk`; read-only."""
    with reading() as session:
        row = session.execute(
            _OF_MESSAGE, {"order_pk": order_pk, "bot": bot, "chat_id": chat_id, "message_id": message_id}
        ).first()
        return _sent(row) if row is not None else None


def pressed(bot: str, chat_id: int, message_id: int, order_pk: int, user_id: int) -> StatusCard | None:
    """The card under a button `user_id` pressed; None unless it is a status message of that user's order `order_pk`."""
    card = of_message(bot, chat_id, message_id, order_pk)
    return card if card is not None and card.owner == user_id else None


@read_only()  # on SQLite: no write lock, so never waits behind the delivery's writes
def stale(bots: Iterable[str], limit: int = 200) -> list[StatusCard]:
    """Sent cards (of these bots) that still carry a keyboard although their order closed or a newer one was sent."""
    with reading() as session:
        stmt = _STALE.where(OutboxMessage.bot.in_(list(bots))).limit(limit)
        return [_sent(r) for r in session.execute(stmt)]


def stale_of(order_pks: Iterable[int]) -> list[StatusCard]:
    """The stale cards of these orders, read in the session's current transaction (the caller ends it)."""
    pks = sorted(set(order_pks))
    return [_sent(r) for r in db.session.execute(_STALE_OF_ORDERS, {"order_pks": pks})] if pks else []


@read_only()  # on SQLite: no write lock, so never waits behind the delivery's writes
def stale_of_order(order_pk: int) -> list[StatusCard]:
    """The cards of one order whose keyboard must go; read-only."""
    with reading():
        return stale_of([order_pk])


@read_only()  # on SQLite: no write lock, so never waits behind the delivery's writes
def superseded(order_pks: Iterable[int]) -> list[StatusCard]:
    """Keyboards of these orders that must go after a newer message was sent: one query, outside the session."""
    pks = sorted(set(order_pks))
    if not pks:
        return []
    with db.engine.connect() as conn:
        return [_sent(r) for r in conn.execute(_STALE_OF_ORDERS, {"order_pks": pks})]
