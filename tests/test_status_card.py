"""The status card service: what a card says about its order and its Cancel button, from each of its queries."""

from __future__ import annotations

from sqlalchemy import select, update

from models import Customer, OutboxMessage, db
from services import delivery, linking, orders, status_card
from services.delivery import Sent


def link(app, user_id: int, language_code: str | None = "en") -> None:
    with app.app_context():
        linking.claim(linking.issue().code, user_id, user_id)
        db.session.execute(update(Customer).where(Customer.telegram_user_id == user_id).values(language_code=language_code))
        db.session.commit()


def push(app, user_id: int, order_id: str, status: str, text: str | None = None) -> int:
    with app.app_context():
        return orders.record_status(user_id, "cafe-1", order_id, status, text).update_id


def send(app, message_id: int, worker: str = "w"):
    """Claim the one due row, pretend Telegram took it as `message_id` with the keyboard its card asks for."""
    with app.app_context():
        (job,) = delivery.claim_due(worker, ["customer"], 10, 30)
        delivery.record_sent([Sent(job.id, message_id, job.card is not None and job.card.button, job.order_pk)])
    return job


def pressed(app, user_id: int, message_id: int, order_pk: int, by: int | None = None):
    with app.app_context():
        return status_card.pressed("customer", user_id, message_id, order_pk, by or user_id)


def test_a_claimed_status_row_carries_its_card(app):
    link(app, 701, "en-GB")
    row = push(app, 701, "A-1", "accepted", "Table 5")
    with app.app_context():
        (job,) = delivery.claim_due("w", ["customer"], 10, 30)
    card = job.card
    assert card is not None and job.id == row
    assert (card.row_id, card.chat_id, card.message_id, card.has_button) == (row, 701, None, False)
    assert (card.order_id, card.horeca_id, card.cafe, card.owner) == ("A-1", "cafe-1", "cafe-1", 701)
    assert (card.status, card.text, card.language) == ("accepted", "Table 5", "en-GB")
    assert card.cancellable and card.open and not card.cancel_requested and card.newest and card.button


def test_a_claimed_row_with_a_newer_status_queued_gets_no_button(app):
    link(app, 702)
    push(app, 702, "A-2", "created")
    push(app, 702, "A-2", "accepted")
    first = send(app, 11)
    assert first.card.open and not first.card.newest and not first.card.button
    second = send(app, 12)
    assert second.card.newest and second.card.button


def test_a_closed_order_has_no_button_and_is_not_open(app):
    link(app, 703)
    push(app, 703, "A-3", "ready")
    job = send(app, 13)
    assert not job.card.cancellable and not job.card.open and not job.card.button
    with app.app_context():
        assert status_card.stale(["customer"]) == []  # sent without a keyboard: nothing to take off


def test_the_card_under_a_pressed_button_is_found_for_its_owner_only(app):
    link(app, 704)
    link(app, 705)
    push(app, 704, "A-4", "preparing")
    job = send(app, 14)
    card = pressed(app, 704, 14, job.order_pk)
    assert card is not None and card.row_id == job.id and card.message_id == 14 and card.has_button and card.button
    assert card.language == "en" and card.owner == 704
    assert pressed(app, 704, 14, job.order_pk, by=705) is None  # someone else's order
    assert pressed(app, 704, 15, job.order_pk) is None  # not a message of this order
    assert pressed(app, 704, 14, job.order_pk + 1) is None
    with app.app_context():
        assert status_card.pressed("horeca", 704, 14, job.order_pk, 704) is None  # another bot's chat


def test_after_a_cancel_request_the_card_is_closed_and_its_keyboard_is_stale(app):
    link(app, 706)
    push(app, 706, "A-6", "created")
    job = send(app, 16)
    with app.app_context():
        assert status_card.stale(["customer"]) == []
        assert orders.request_cancel(706, job.order_pk).outcome == "requested"
    card = pressed(app, 706, 16, job.order_pk)
    assert card.cancel_requested and card.cancellable and not card.open and not card.button and card.newest
    with app.app_context():
        (stale,) = status_card.stale(["customer"])
        assert stale == card
        assert status_card.stale_of_order(job.order_pk) == [card]
        assert status_card.superseded([job.order_pk]) == [card]
        assert status_card.stale(["horeca"]) == []


def test_a_stale_button_on_an_older_message_is_found_until_it_is_recorded_gone(app):
    link(app, 707)
    push(app, 707, "A-7", "created")
    first = send(app, 17)
    push(app, 707, "A-7", "accepted")
    second = send(app, 18)
    older = pressed(app, 707, 17, first.order_pk)
    assert older.has_button and older.open and not older.newest and not older.button  # the keyboard outlived it
    assert pressed(app, 707, 18, first.order_pk).button
    with app.app_context():
        assert [c.row_id for c in status_card.stale(["customer"])] == [first.id]
        assert [c.row_id for c in status_card.superseded([second.order_pk, second.order_pk])] == [first.id]
        delivery.set_has_button(first.id, False)
        assert status_card.stale(["customer"]) == []
        assert status_card.superseded([second.order_pk]) == []


def test_the_sweep_reads_at_most_its_limit_oldest_first(app):
    link(app, 708)
    for n, order_id in enumerate(("B-1", "B-2", "B-3")):
        push(app, 708, order_id, "created")
        send(app, 20 + n)
    with app.app_context():
        db.session.execute(update(OutboxMessage).values(has_button=True))
        db.session.commit()
        for pk in set(db.session.scalars(select(OutboxMessage.order_pk))):
            orders.request_cancel(708, pk)
        assert [c.message_id for c in status_card.stale(["customer"], limit=2)] == [20, 21]


def test_a_card_names_the_cafe_as_staff_messages_do(app):
    """The horeca's name when it has one (from each query: claim, pressed, stale), else its id."""
    from bot.card import draw
    from bot.texts import Footer
    from database import transaction
    from services import staff

    with app.app_context(), transaction():
        staff.ensure_horeca("cafe-1", "Bean There")
        staff.ensure_horeca("cafe-2")  # a row without a name
    link(app, 709)
    push(app, 709, "N-1", "created")
    named = send(app, 30)
    assert named.card.cafe == "Bean There"
    assert "Bean There" in draw(named.card, Footer.NONE)[0]
    with app.app_context():
        assert staff.horeca_name("cafe-1") == named.card.cafe  # what the staff bot says
        orders.request_cancel(709, named.order_pk)
        (stale,) = status_card.stale(["customer"])
    assert stale.cafe == pressed(app, 709, 30, named.order_pk).cafe == "Bean There"

    with app.app_context():
        orders.record_status(709, "cafe-2", "N-2", "created")
    unnamed = send(app, 31)
    assert unnamed.card.cafe == "cafe-2" == pressed(app, 709, 31, unnamed.order_pk).cafe
