"""A customer's rating of a completed order (1-5 stars), and the comment they may send after it.

The rules, each in one place here:
- only the order's owner rates, only while the order's status is `completed`;
- the first tap is taken within `WINDOW` (24 h) of the completion (the order's last status change), and a
  later tap changes the value within `WINDOW` of the first one; later taps change nothing;
- each tap opens `COMMENT_WINDOW` (10 min): the customer's next plain text is the comment (a new one replaces
  the old), and it is not relayed to the cafe's staff;
- every change (a new value, a comment) queues a signed `order.rated` webhook event in the same transaction,
  and, for a rating of `LOW` (3) or less, a staff notice to each of the cafe's staff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select

from database import reading, transaction
from models import Customer, Order, OrderRating, db, utcnow
from services import events, staff
from services.order_status import Status

WINDOW = timedelta(hours=24)
COMMENT_WINDOW = timedelta(minutes=10)
LOW = 3  # ratings up to this reach the cafe's staff
MAX_COMMENT = 1000


class RateResult(StrEnum):
    RATED = "rated"  # the first rating
    CHANGED = "changed"  # another value within the window
    SAME = "same"  # the value it already had: the comment window opens again, nothing is sent
    NOT_FOUND = "not_found"  # no such order, or another user's
    NOT_COMPLETED = "not_completed"  # the order is not (or no longer) completed
    TOO_LATE = "too_late"


@dataclass(frozen=True, slots=True)
class Rated:
    outcome: RateResult
    value: int | None = None  # the rating the order has now


class CommentResult(StrEnum):
    SAVED = "saved"
    INVALID = "invalid"  # empty or longer than MAX_COMMENT: nothing saved, the window stays open


@dataclass(frozen=True, slots=True)
class Commented:
    outcome: CommentResult
    order_id: str
    horeca_id: str


@dataclass(frozen=True, slots=True)
class RatingView:
    """An order's rating as the backend reads it (`GET /orders/...`)."""

    value: int
    comment: str | None
    rated_at: datetime


def rate(telegram_user_id: int, order_pk: int, value: int) -> Rated:
    """The customer tapped `value` stars under the order's completed card."""
    if not 1 <= value <= 5:
        return Rated(RateResult.NOT_FOUND)
    with transaction() as session:
        order = session.scalar(select(Order).where(Order.id == order_pk).with_for_update())
        if order is None or order.telegram_user_id != telegram_user_id:
            return Rated(RateResult.NOT_FOUND)
        if order.status != Status.COMPLETED:
            return Rated(RateResult.NOT_COMPLETED)
        now = utcnow()
        rating = session.scalar(select(OrderRating).where(OrderRating.order_pk == order.id))
        since = rating.rated_at if rating is not None else order.updated_at
        if now > since + WINDOW:
            return Rated(RateResult.TOO_LATE, rating.value if rating is not None else None)
        if rating is not None and rating.value == value:
            rating.comment_until = now + COMMENT_WINDOW
            return Rated(RateResult.SAME, value)
        outcome = RateResult.RATED if rating is None else RateResult.CHANGED
        if rating is None:
            rating = OrderRating(order_pk=order.id, telegram_user_id=telegram_user_id, rated_at=now)
            session.add(rating)
        rating.value, rating.updated_at, rating.comment_until = value, now, now + COMMENT_WINDOW
        _tell(order, rating)
        return Rated(outcome, value)


def comment(telegram_user_id: int, text: str) -> Commented | None:
    """The customer's text as the comment of the rating they gave in the last 10 minutes; None when there is none."""
    if text.startswith("/"):
        return None  # commands keep their meaning
    now = utcnow()
    pending = (
        select(OrderRating)
        .where(OrderRating.telegram_user_id == telegram_user_id, OrderRating.comment_until > now)
        .order_by(OrderRating.comment_until.desc())
        .limit(1)
    )
    with reading() as session:  # every customer text asks: a read, no write lock, in the common case
        if session.scalar(pending) is None:
            return None
    with transaction() as session:
        rating = session.scalar(pending.with_for_update())
        if rating is None:
            return None
        order = session.get(Order, rating.order_pk)
        assert order is not None
        body = text.strip()
        if not body or len(body) > MAX_COMMENT:
            return Commented(CommentResult.INVALID, order.order_id, order.horeca_id)
        rating.comment = body
        rating.comment_until = None
        _tell(order, rating)
        return Commented(CommentResult.SAVED, order.order_id, order.horeca_id)


def _tell(order: Order, rating: OrderRating) -> None:
    """The backend's webhook event, and a notice to the cafe's staff for a low rating (in the caller's transaction)."""
    events.emit(
        "order.rated",
        {
            "horeca_id": order.horeca_id,
            "order_id": order.order_id,
            "telegram_user_id": rating.telegram_user_id,
            "rating": rating.value,
            "comment": rating.comment,
        },
    )
    if rating.value > LOW:
        return
    customer = db.session.get(Customer, order.customer_id)
    payload = {
        "type": "low_rating",
        "horeca_id": order.horeca_id,
        "horeca": staff.horeca_name(order.horeca_id),
        "order_id": order.order_id,
        "customer": customer.display_name if customer is not None else str(rating.telegram_user_id),
        "rating": rating.value,
        "comment": rating.comment,
    }
    for member in staff.active_staff(order.horeca_id):
        staff.queue_notice(member, payload, horeca_id=order.horeca_id)


def of_order(order_pk: int) -> RatingView | None:
    """The order's rating, read in the caller's transaction."""
    rating = db.session.scalar(select(OrderRating).where(OrderRating.order_pk == order_pk))
    return RatingView(rating.value, rating.comment, rating.rated_at) if rating is not None else None
