"""Coalescing under backlog: statuses of one order that are due at once reach the customer as one message, the newest.

The real delivery job (`bot/workers/telegram.Delivery`) in-process against the Telegram emulator; statuses go in
and are read back through the API (`POST /provide_message_to_user/`, `GET /orders/...`, `/metrics`).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from devtools.tg_emulator import EmulatorClient
from models import OutboxMessage, db, utcnow
from services import delivery
from tests import test_bot_delivery
from tests.support.story import push
from tests.test_bot_delivery import BOT, engine, link, run
from tests.test_metrics import scrape, value

emulator = test_bot_delivery.emulator  # the fixture: an emulator with the test bot


def bot_was_down(app, seconds: float = 60.0) -> None:
    """Every queued row waited `seconds` longer than it did: as if the bot had been stopped all that time."""
    with app.app_context():
        for row in db.session.scalars(select(OutboxMessage)):
            row.created_at -= timedelta(seconds=seconds)
            row.next_attempt_at -= timedelta(seconds=seconds)
        db.session.commit()


def deliveries(api, order_id: str) -> list[tuple[str, str]]:
    body = api.get(f"/orders/cafe-1/{order_id}").get_json()
    return [(u["status"], u["delivery"]) for u in body["updates"]]


def test_after_downtime_the_customer_gets_one_message_with_the_newest_status(app, api, emulator):
    link(app, emulator, 701)
    for status in ("created", "accepted", "preparing", "ready"):
        push(api, status, user_id=701, order_id="C-1")
    bot_was_down(app)
    run(engine(app))
    (message,) = emulator.messages(BOT, 701)
    assert "ready" in message["plain_text"].lower() and EmulatorClient.buttons(message) == []
    assert deliveries(api, "C-1") == [
        ("created", "superseded"),
        ("accepted", "superseded"),
        ("preparing", "superseded"),
        ("ready", "sent"),
    ]
    samples = scrape(api)
    assert value(samples, "customer_bot_outbox_messages", state="superseded") == 3
    assert value(samples, "customer_bot_outbox_messages", state="sent") == 1
    # The backend repeating a skipped status hears it was superseded (and nothing is queued again).
    again = api.post(
        "/provide_message_to_user/", json={"user_id": 701, "order_id": "C-1", "horeca_id": "cafe-1", "status": "accepted"}
    )
    assert again.status_code == 200 and again.get_json()["delivery"] == "superseded"


def test_the_newest_status_carries_the_cancel_button_and_a_press_works(app, api, emulator):
    link(app, emulator, 702)
    for status in ("created", "accepted", "preparing"):
        push(api, status, user_id=702, order_id="C-2")
    bot_was_down(app)
    run(engine(app))
    (message,) = emulator.messages(BOT, 702)
    assert [t for t, _ in EmulatorClient.buttons(message)] == ["Cancel order"]
    assert deliveries(api, "C-2")[-1] == ("preparing", "sent")
    with app.app_context():
        (sent,) = [r for r in db.session.query(OutboxMessage).all() if r.state == "sent"]
        assert sent.has_button and sent.telegram_message_id == message["message_id"]


def test_without_a_backlog_every_status_is_its_own_message(app, api, emulator):
    link(app, emulator, 703)
    for status in ("created", "accepted", "preparing"):
        push(api, status, user_id=703, order_id="C-3")
    eng = engine(app)
    for _ in range(6):
        eng.tick()
    eng.close()
    assert len(emulator.messages(BOT, 703)) == 3
    assert [d for _, d in deliveries(api, "C-3")] == ["sent", "sent", "sent"]


def test_only_due_statuses_coalesce_and_a_later_one_keeps_its_turn(app, api):
    link(app, None, 704)
    ids = [push(api, status, user_id=704, order_id="C-4") for status in ("created", "accepted", "preparing")]
    bot_was_down(app)
    with app.app_context():  # the newest is not due yet (a retry time in the future)
        db.session.execute(
            update(OutboxMessage).where(OutboxMessage.id == ids[2]).values(next_attempt_at=utcnow() + timedelta(hours=1))
        )
        db.session.commit()
        (job,) = delivery.claim_due("w", ["customer"], 10, 30, coalesce_after=10)
    assert job.id == ids[1] and job.status == "accepted" and job.card is not None and not job.card.newest
    assert deliveries(api, "C-4") == [("created", "superseded"), ("accepted", "pending"), ("preparing", "pending")]


def test_a_claim_taken_over_from_a_dead_process_is_not_coalesced(app, api):
    link(app, None, 705)
    ids = [push(api, status, user_id=705, order_id="C-5") for status in ("created", "accepted")]
    bot_was_down(app)
    with app.app_context():
        (dead,) = delivery.claim_due("dead", ["customer"], 10, 30)  # no coalescing: the old process
        assert dead.id == ids[0]
        db.session.execute(update(OutboxMessage).values(claimed_at=utcnow() - timedelta(seconds=31)))
        db.session.commit()
        (again,) = delivery.claim_due("alive", ["customer"], 10, 30, coalesce_after=10)
    assert again.id == ids[0]  # it may have gone out already: sent again as it was, never skipped
    assert [d for _, d in deliveries(api, "C-5")] == ["pending", "pending"]
