"""What the customer bot needs to know about the person it is talking to: linked or not, and their active orders."""

from __future__ import annotations

from dataclasses import dataclass

from database import reading, transaction
from services import cafes, customers, orders


@dataclass(frozen=True)
class OrderLine:
    """One active order, as the bot lists it."""

    order_id: str
    horeca_id: str
    status: str | None
    cancel_requested: bool
    cafe: str = ""  # the cafe's name (its id when it has none)


@dataclass(frozen=True)
class Greeting:
    linked: bool
    orders: list[OrderLine]


def _lines(telegram_user_id: int) -> list[OrderLine]:
    active = orders.active_orders(telegram_user_id)
    names = cafes.names(o.horeca_id for o in active)
    return [
        OrderLine(o.order_id, o.horeca_id, o.status, o.cancel_requested_at is not None, names.get(o.horeca_id, o.horeca_id))
        for o in active
    ]


def greet(telegram_user_id: int, chat_id: int, profile: customers.Profile | None = None) -> Greeting:
    """The user talks to the bot: refresh their profile; they are reachable now (back if they had blocked it,
    and what waited for them to start the bot is queued again). Own transaction."""
    with transaction():
        customer = customers.find(telegram_user_id)
        if customer is None or customer.linked_at is None:
            return Greeting(linked=False, orders=[])
        customers.get_or_create(telegram_user_id, chat_id, profile)
        customers.heard_from(customer)
        return Greeting(linked=True, orders=_lines(telegram_user_id))


def heard(telegram_user_id: int) -> None:
    """The user wrote something the bot answers without a greeting (a sticker, a refused code): they started
    the bot, so it can reach them (see `customers.heard_from`). Own transaction; nothing for unknown users."""
    with transaction():
        customer = customers.find(telegram_user_id)
        if customer is not None and customer.linked_at is not None:
            customers.heard_from(customer)


def order_lines(telegram_user_id: int) -> list[OrderLine]:
    """The user's active orders, oldest first; read-only."""
    with reading():
        return _lines(telegram_user_id)
