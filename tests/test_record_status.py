"""Recording a status change through `POST /provide_message_to_user/`, by both ways of recording it.

PostgreSQL records a status in one statement (`services/orders_pg.py`), with the general path
(`services/orders.py`, the only one on SQLite) as its fallback. One table of scenarios runs through each
path and holds both to the same answers and the same stored rows; the rules the one statement writes in
SQL are checked against their Python definitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from sqlalchemy import BigInteger, Boolean, String, literal, select, text

from services.order_status import STATUSES, next_cancellable, next_cancellable_sql, status_key, status_key_sql
from tests.support.openapi import check_response
from tests.test_api import link, push

ANNA, BORIS, BLOCKED, UNLINKED, STRANGER = 1001, 1002, 1003, 1004, 999


@pytest.fixture(params=["one statement", "general path"])
def status_path(request, monkeypatch, database_url):
    """Run a test through the one-statement path (PostgreSQL only) or through the general path."""
    from services import orders_pg

    if request.param == "general path":
        monkeypatch.setattr(orders_pg, "record_status", lambda *args: None)  # "cannot decide": the fallback
    elif not database_url.startswith("postgresql"):
        pytest.skip("the one-statement path is PostgreSQL's")
    return request.param


@pytest.fixture
def only_this_path(status_path, monkeypatch):
    """Like `status_path`, and without a race the one statement never falls back to the general path."""
    if status_path == "one statement":
        from services import orders

        def general_path(*args):
            raise AssertionError("the one-statement path fell back to the general path")

        monkeypatch.setattr(orders, "_record_status", general_path)
    return status_path


# --- one table of scenarios, run through each path --------------------------------------------------


@dataclass(frozen=True)
class Push:
    """One request: `status` for `order_id` at `horeca_id` by `user`, and the answer expected."""

    status: str
    code: int = 202
    answer: str = "pending"  # the delivery state when recorded, else the error code
    user: int = ANNA
    order_id: str = "A-1"
    horeca_id: str = "cafe-1"
    text: str | None = None
    same_as: int | None = None  # a 200 answers with the update_id of this earlier push (its index)


@dataclass(frozen=True)
class Scenario:
    name: str
    pushes: list[Push]
    orders: dict[tuple[str, str], tuple[int, str, bool]]  # (horeca_id, order_id) -> (user, status, cancellable)
    updates: list[tuple[str, str, str, str]]  # (horeca_id, order_id, status, delivery), oldest first
    texts: dict[str, str] = field(default_factory=dict)  # status -> the text stored with it


DUPLICATE = 200
SCENARIOS = [
    Scenario(
        "a new order",
        [Push("created")],
        {("cafe-1", "A-1"): (ANNA, "created", True)},
        [("cafe-1", "A-1", "created", "pending")],
    ),
    Scenario(
        "a new order with a text",
        [Push("created", text="Латте, 2 шт.")],
        {("cafe-1", "A-1"): (ANNA, "created", True)},
        [("cafe-1", "A-1", "created", "pending")],
        texts={"created": "Латте, 2 шт."},
    ),
    Scenario(
        "the same status again is a duplicate",
        [Push("created"), Push("created", DUPLICATE, same_as=0)],
        {("cafe-1", "A-1"): (ANNA, "created", True)},
        [("cafe-1", "A-1", "created", "pending")],
    ),
    Scenario(
        "the next statuses",
        [Push("created"), Push("accepted"), Push("preparing")],
        {("cafe-1", "A-1"): (ANNA, "preparing", True)},
        [("cafe-1", "A-1", s, "pending") for s in ("created", "accepted", "preparing")],
    ),
    Scenario(
        "ready ends the cancel",
        [Push("created"), Push("ready")],
        {("cafe-1", "A-1"): (ANNA, "ready", False)},
        [("cafe-1", "A-1", s, "pending") for s in ("created", "ready")],
    ),
    Scenario(
        "going backwards never reopens the cancel",
        [Push("created"), Push("preparing"), Push("ready"), Push("accepted")],
        {("cafe-1", "A-1"): (ANNA, "accepted", False)},
        [("cafe-1", "A-1", s, "pending") for s in ("created", "preparing", "ready", "accepted")],
    ),
    Scenario(
        "ready then preparing",
        [Push("ready"), Push("preparing")],
        {("cafe-1", "A-1"): (ANNA, "preparing", False)},
        [("cafe-1", "A-1", s, "pending") for s in ("ready", "preparing")],
    ),
    Scenario(
        "an earlier status again changes nothing",
        [Push("created"), Push("accepted"), Push("created", DUPLICATE, same_as=0)],
        {("cafe-1", "A-1"): (ANNA, "accepted", True)},
        [("cafe-1", "A-1", s, "pending") for s in ("created", "accepted")],
    ),
    *[
        Scenario(
            f"{final} is final",
            [Push("created"), Push(final), Push(final, DUPLICATE, same_as=1)],
            {("cafe-1", "A-1"): (ANNA, final, False)},
            [("cafe-1", "A-1", s, "pending") for s in ("created", final)],
        )
        for final in ("completed", "cancelled", "rejected")
    ],
    Scenario(
        "a new order in a final status",
        [Push("completed")],
        {("cafe-1", "A-1"): (ANNA, "completed", False)},
        [("cafe-1", "A-1", "completed", "pending")],
    ),
    Scenario("an unknown user", [Push("created", 404, "unknown_user", user=STRANGER)], {}, []),
    Scenario("a customer who never linked", [Push("created", 404, "unknown_user", user=UNLINKED)], {}, []),
    Scenario(
        "another user's order",
        [Push("created"), Push("accepted", 409, "order_user_mismatch", user=BORIS)],
        {("cafe-1", "A-1"): (ANNA, "created", True)},
        [("cafe-1", "A-1", "created", "pending")],
    ),
    Scenario(
        "order ids are per cafe",
        [Push("created"), Push("accepted", user=BORIS, horeca_id="cafe-2")],
        {("cafe-1", "A-1"): (ANNA, "created", True), ("cafe-2", "A-1"): (BORIS, "accepted", True)},
        [("cafe-1", "A-1", "created", "pending"), ("cafe-2", "A-1", "accepted", "pending")],
    ),
    Scenario(
        "a customer who blocked the bot",
        [Push("created", answer="blocked", user=BLOCKED), Push("accepted", answer="blocked", user=BLOCKED)],
        {("cafe-1", "A-1"): (BLOCKED, "accepted", True)},
        [("cafe-1", "A-1", s, "blocked") for s in ("created", "accepted")],
    ),
]


@pytest.fixture
def people(api, app):
    """Anna and Boris linked, a linked customer who blocked the bot, and one who talked but never linked."""
    from database import transaction
    from services import customers

    for user in (ANNA, BORIS, BLOCKED):
        link(api, user)
    with app.app_context():
        customers.mark_blocked(BLOCKED, True)
        with transaction():
            customers.get_or_create(UNLINKED)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_a_scenario_has_the_same_outcome_on_each_path(api, app, spec, people, only_this_path, scenario):
    answers = []
    for p in scenario.pushes:
        extra = {"text": p.text} if p.text is not None else {}
        response = push(api, p.status, user_id=p.user, order_id=p.order_id, horeca_id=p.horeca_id, **extra)
        check_response(spec, "/provide_message_to_user/", "post", response)
        body = response.get_json()
        assert response.status_code == p.code, (p, body)
        if p.code in (200, 202):
            assert body["delivery"] == p.answer
            assert (body["order_id"], body["horeca_id"], body["status"]) == (p.order_id, p.horeca_id, p.status)
            if p.same_as is not None:
                assert body["update_id"] == answers[p.same_as]["update_id"]
        else:
            assert body["error"] == p.answer
        answers.append(body)

    orders, updates = stored(app)
    assert {key: row[:3] for key, row in orders.items()} == scenario.orders
    assert [u[:4] for u in updates] == scenario.updates
    recorded = {a["update_id"] for a in answers if "update_id" in a}
    for horeca_id, order_id, status, delivery, update_id, rest in updates:
        assert update_id in recorded
        order_pk, chat_id = orders[horeca_id, order_id][3:]
        assert rest == {
            "kind": "status",
            "bot": "customer",
            "chat_id": chat_id,
            "text": scenario.texts.get(status),
            "dedup_key": status_key(order_pk, status),
            "attempts": 0,
            "last_error": "the user has blocked the bot" if delivery == "blocked" else None,
            "has_button": False,
            "due_when_queued": True,
        }


def stored(app):
    """The orders and the outbox rows as the database holds them."""
    from models import db

    with app.app_context():
        orders = {
            (r.horeca_id, r.order_id): (r.telegram_user_id, r.status, r.cancellable, r.id, r.chat_id)
            for r in db.session.execute(
                text(
                    "SELECT o.id, o.horeca_id, o.order_id, o.telegram_user_id, o.status, o.cancellable, c.chat_id"
                    " FROM orders o JOIN customers c ON c.id = o.customer_id"
                )
            )
        }
        updates = [
            (
                r.horeca_id,
                r.order_id,
                r.status,
                r.state,
                r.id,
                {
                    "kind": r.kind,
                    "bot": r.bot,
                    "chat_id": r.chat_id,
                    "text": r.text,
                    "dedup_key": r.dedup_key,
                    "attempts": r.attempts,
                    "last_error": r.last_error,
                    "has_button": bool(r.has_button),
                    "due_when_queued": r.created_at == r.next_attempt_at,
                },
            )  # fmt: skip
            for r in db.session.execute(
                text("SELECT u.*, o.horeca_id, o.order_id FROM outbox u JOIN orders o ON o.id = u.order_pk ORDER BY u.id")
            )
        ]
        db.session.rollback()
    return orders, updates


@pytest.fixture
def spec(api):
    return api.get("/openapi.json").get_json()


# --- the rules the one statement writes in SQL agree with their Python definitions ------------------


def test_the_dedup_key_in_sql_is_the_python_one(app):
    from models import db

    with app.app_context():
        for order_pk in (1, 42, 2**40 + 7):
            for status in STATUSES:
                key = status_key_sql(literal(order_pk, BigInteger), literal(status, String))
                assert db.session.scalar(select(key)) == status_key(order_pk, status) == f"status:{order_pk}:{status}"
        db.session.rollback()


def test_the_cancel_rule_in_sql_is_the_python_one(app):
    from models import db

    with app.app_context():
        for current in (True, False):
            for status in STATUSES:
                rule = next_cancellable_sql(literal(current, Boolean), literal(status, String))
                assert bool(db.session.scalar(select(rule))) is next_cancellable(current, status), (current, status)
        db.session.rollback()
        assert [s for s in STATUSES if next_cancellable(True, s)] == ["created", "accepted", "preparing"]


# --- through the API, on each path ------------------------------------------------------------------


def test_status_updates_are_queued_and_visible_on_the_order(api, spec, status_path):
    link(api)
    first = push(api, "created", text="Латте, 2 шт.")
    assert first.status_code == 202
    check_response(spec, "/provide_message_to_user/", "post", first)
    assert first.get_json()["delivery"] == "pending"
    push(api, "accepted")

    order = api.get("/orders/cafe-1/A-1")
    assert order.status_code == 200
    check_response(spec, "/orders/{horeca_id}/{order_id}", "get", order)
    body = order.get_json()
    assert body["status"] == "accepted" and body["user_id"] == 1001
    assert body["cancel_requested"] is False and body["cancel_requested_at"] is None
    assert [u["status"] for u in body["updates"]] == ["created", "accepted"]
    assert [u["delivery"] for u in body["updates"]] == ["pending", "pending"]
    assert body["updates"][0]["update_id"] == first.get_json()["update_id"]


def test_concurrent_requests_queue_each_status_once(api, status_path):
    """The backend retries, or two of its workers send the same change at once: one message per status."""
    import threading

    link(api, 1001)
    answers: list[tuple[str, str, int, int]] = []

    def send(order_id: str, status: str, start: threading.Barrier) -> None:
        start.wait()
        response = push(api, status, order_id=order_id)
        answers.append((order_id, status, response.status_code, response.get_json()["update_id"]))

    def race(*requests: tuple[str, str]) -> None:
        start = threading.Barrier(len(requests))
        threads = [threading.Thread(target=send, args=(*r, start)) for r in requests]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    for k in range(8):
        race(*[(f"R-{k}", "created")] * 6)  # a new order, six times at once
        race(*[(f"R-{k}", s) for s in ("accepted", "preparing", "ready")] * 2)  # then three statuses, twice each
    assert len(answers) == 8 * 12
    for k in range(8):
        order = api.get(f"/orders/cafe-1/R-{k}").get_json()
        assert sorted(u["status"] for u in order["updates"]) == ["accepted", "created", "preparing", "ready"]
        for status in ("created", "accepted", "preparing", "ready"):
            mine = [a for a in answers if a[0] == f"R-{k}" and a[1] == status]
            assert sorted(code for _, _, code, _ in mine) == [200] * (len(mine) - 1) + [202]
            assert {update_id for *_, update_id in mine} == {u["update_id"] for u in order["updates"] if u["status"] == status}
        assert order["cancellable"] is False  # ready was among them, whatever the order they landed in
