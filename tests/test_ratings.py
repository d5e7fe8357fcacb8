"""The rating rules (services/ratings.py) on every configured database, and the rating in GET /orders.

The whole story through Telegram and the real processes is tests/e2e/test_rating_story.py; here each rule's
edges: the windows, the same value again, comments that are commands or too long, the staff of the cafe.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from models import Order, OrderRating, OutboxKind, OutboxMessage, WebhookEvent, db, utcnow
from services import linking, orders, ratings, staff
from services.customers import Profile
from services.ratings import CommentResult, RateResult
from tests.support import databases
from tests.support.openapi import check_response
from webapp import create_app

ANNA, BORIS = 3001, 3002


@pytest.fixture
def hook_app(database_url):
    """The app with a backend webhook configured, so services record `order.rated` events."""
    app = create_app(databases.test_config(database_url, BACKEND_WEBHOOK_URL="http://127.0.0.1:9/hooks"))
    databases.clean(app)
    yield app
    with app.app_context():
        db.engine.dispose()


def completed_order(app, user_id: int = ANNA, order_id: str = "A-1", status: str = "completed") -> int:
    """A linked customer's order of cafe-1 in `status`; its pk."""
    with app.app_context():
        code = linking.issue().code
        linking.claim(code, user_id, chat_id=user_id, profile=Profile(first_name="Anna"))
        orders.record_status(user_id, "cafe-1", order_id, status)
        return db.session.scalar(select(Order.id).where(Order.order_id == order_id))


def barista(app, user_id: int = 7001) -> None:
    with app.app_context():
        code = staff.issue_code("cafe-1", "Bean There").code
        staff.join(code, user_id, chat_id=user_id, profile=Profile(first_name="Olga"))


def rated_events(app) -> list[dict]:
    with app.app_context():
        bodies = db.session.scalars(select(WebhookEvent.body).where(WebhookEvent.type == "order.rated").order_by(WebhookEvent.id))
        return [json.loads(b)["data"] for b in bodies]


def notices(app) -> list[dict]:
    with app.app_context():
        rows = db.session.scalars(select(OutboxMessage.payload).where(OutboxMessage.kind == OutboxKind.STAFF_NOTICE))
        return [p for p in map(json.loads, rows) if p["type"] == "low_rating"]


def shift(app, **values) -> None:
    """Move the rating's times, as time passing would."""
    with app.app_context():
        db.session.execute(update(OrderRating).values(**values))
        db.session.commit()


def test_a_rating_a_change_and_a_comment_each_tell_the_backend(hook_app):
    pk = completed_order(hook_app)
    with hook_app.app_context():
        assert ratings.rate(ANNA, pk, 4) == ratings.Rated(RateResult.RATED, 4)
        assert ratings.rate(ANNA, pk, 4) == ratings.Rated(RateResult.SAME, 4)  # nothing new to tell
        assert ratings.rate(ANNA, pk, 5) == ratings.Rated(RateResult.CHANGED, 5)
        assert ratings.comment(ANNA, "  Lovely  ").outcome == CommentResult.SAVED
        assert ratings.comment(ANNA, "and another thing") is None  # the window closed with the comment
    ids = {"horeca_id": "cafe-1", "order_id": "A-1", "telegram_user_id": ANNA}
    assert rated_events(hook_app) == [
        {**ids, "rating": 4, "comment": None},
        {**ids, "rating": 5, "comment": None},
        {**ids, "rating": 5, "comment": "Lovely"},
    ]
    assert notices(hook_app) == []  # 4 and 5 are not low


def test_low_ratings_reach_every_staff_member_of_the_cafe(hook_app):
    barista(hook_app, 7001)
    barista(hook_app, 7002)
    pk = completed_order(hook_app)
    with hook_app.app_context():
        ratings.rate(ANNA, pk, 3)
        ratings.comment(ANNA, "Slow")
    sent = notices(hook_app)
    assert len(sent) == 4  # two staff members: the rating, then with the comment
    assert {(n["rating"], n["comment"], n["order_id"], n["horeca"], n["customer"]) for n in sent} == {
        (3, None, "A-1", "Bean There", "Anna"),
        (3, "Slow", "A-1", "Bean There", "Anna"),
    }


@pytest.mark.parametrize("status", ["preparing", "ready", "cancelled"])
def test_only_a_completed_order_is_rated(hook_app, status):
    pk = completed_order(hook_app, status=status)
    with hook_app.app_context():
        assert ratings.rate(ANNA, pk, 2).outcome == RateResult.NOT_COMPLETED
        assert db.session.scalar(select(OrderRating)) is None
    assert rated_events(hook_app) == []


def test_forged_presses_change_nothing(hook_app):
    pk = completed_order(hook_app)
    completed_order(hook_app, BORIS, "B-1")
    with hook_app.app_context():
        assert ratings.rate(BORIS, pk, 1).outcome == RateResult.NOT_FOUND  # another user's order
        assert ratings.rate(ANNA, pk + 1000, 1).outcome == RateResult.NOT_FOUND
        for value in (0, 6, -1):
            assert ratings.rate(ANNA, pk, value).outcome == RateResult.NOT_FOUND
        assert db.session.scalar(select(OrderRating)) is None
    assert rated_events(hook_app) == []


def test_the_windows(hook_app):
    pk = completed_order(hook_app)
    with hook_app.app_context():  # completed 25 hours ago: too late for a first rating
        db.session.execute(update(Order).values(updated_at=utcnow() - timedelta(hours=25)))
        db.session.commit()
        assert ratings.rate(ANNA, pk, 2).outcome == RateResult.TOO_LATE
        db.session.execute(update(Order).values(updated_at=utcnow() - timedelta(hours=23)))
        db.session.commit()
        assert ratings.rate(ANNA, pk, 2).outcome == RateResult.RATED  # the first tap starts its own day
    shift(hook_app, rated_at=utcnow() - timedelta(hours=23), comment_until=utcnow() - timedelta(seconds=1))
    with hook_app.app_context():
        assert ratings.comment(ANNA, "late comment") is None  # 10 minutes have passed: a text like any other
        assert ratings.rate(ANNA, pk, 4).outcome == RateResult.CHANGED
    shift(hook_app, rated_at=utcnow() - timedelta(hours=24, seconds=1))
    with hook_app.app_context():
        assert ratings.rate(ANNA, pk, 1) == ratings.Rated(RateResult.TOO_LATE, 4)
        assert db.session.scalar(select(OrderRating.value)) == 4
    assert [e["rating"] for e in rated_events(hook_app)] == [2, 4]


def test_a_command_is_no_comment_and_a_long_one_is_refused(hook_app):
    pk = completed_order(hook_app)
    with hook_app.app_context():
        ratings.rate(ANNA, pk, 2)
        assert ratings.comment(ANNA, "/start") is None
        assert ratings.comment(ANNA, "x" * 1001).outcome == CommentResult.INVALID
        assert ratings.comment(ANNA, "   ").outcome == CommentResult.INVALID
        assert ratings.comment(BORIS, "not rated anything") is None
        assert ratings.comment(ANNA, "x" * 1000).outcome == CommentResult.SAVED  # the window stayed open
    assert rated_events(hook_app)[-1]["comment"] == "x" * 1000


def test_get_order_shows_the_rating(api, app):
    spec = api.get("/openapi.json").get_json()
    pk = completed_order(app)
    response = api.get("/orders/cafe-1/A-1")
    check_response(spec, "/orders/{horeca_id}/{order_id}", "get", response)
    assert response.get_json()["rating"] is None
    with app.app_context():
        ratings.rate(ANNA, pk, 2)
        ratings.comment(ANNA, "Cold")
    response = api.get("/orders/cafe-1/A-1")
    check_response(spec, "/orders/{horeca_id}/{order_id}", "get", response)
    rating = response.get_json()["rating"]
    assert (rating["value"], rating["comment"]) == (2, "Cold") and rating["rated_at"].endswith("Z")


def test_no_webhook_configured_no_event(app):
    pk = completed_order(app)
    with app.app_context():
        assert ratings.rate(ANNA, pk, 1).outcome == RateResult.RATED
        assert db.session.scalar(select(WebhookEvent)) is None
