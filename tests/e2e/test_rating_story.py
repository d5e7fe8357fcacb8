"""A rating after completion through the real processes: gunicorn, run_bot.py with both bots, the emulator and a
webhook receiver (issue 11, point 5).

Anna's order is completed; she taps 2★ under its card and writes a comment. The backend gets two signed
`order.rated` events (the rating, then with the comment), the cafe's barista gets the low rating with the
comment in the staff bot, the comment is not relayed as a customer message, and GET /orders shows it. A
change to 5★ within the day is taken (and not sent to the staff); forged, bad, not-completed and late presses
change nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from devtools.tg_emulator import EmulatorClient
from tests.e2e.conftest import Stack, wait_until
from tests.e2e.test_staff_story import Staff, staff_token  # noqa: F401 - staff_token: the staff bot's token fixture

pytestmark = pytest.mark.e2e

buttons = EmulatorClient.buttons
ANNA, BARISTA = 1101, 7101


def rated_events(receiver) -> list[dict]:
    return [e["data"] for e in (r.verify() for r in list(receiver.received)) if e["type"] == "order.rated"]


def test_a_rating_with_a_comment_reaches_the_backend_and_the_staff(stack: Stack, staff_token: str):  # noqa: F811
    from tests.test_webhooks import SECRET, Receiver

    receiver = Receiver()
    try:
        staff = Staff(stack, staff_token)
        staff.start(BACKEND_WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=SECRET)
        staff.join(BARISTA, "Olga")
        stack.user(ANNA, first_name="Anna")
        stack.say(ANNA, f"/start {stack.api.issue_code()['code']}")
        stack.api.push(ANNA, "R-1", "preparing")
        stack.api.push(ANNA, "R-2", "preparing")
        stack.api.push(ANNA, "R-1", "completed")
        card = stack.wait_status_messages(ANNA, "R-1", 2)[-1]
        stars = wait_until(lambda: buttons(stack.message(ANNA, card["message_id"])), what="the rating stars")
        assert [text for text, _ in stars] == ["1★", "2★", "3★", "4★", "5★"]
        assert "How was your order? Rate it:" in stack.message(ANNA, card["message_id"])["plain_text"]
        assert stack.api.order("R-1")["rating"] is None

        # Two stars: thanks, the offer of a comment, the card shows the rating and keeps the stars to change it.
        answer = stack.press(ANNA, card["message_id"], button_text="2★")
        assert answer["text"] == "Thank you for rating!" and not answer["show_alert"]
        thanks = wait_until(lambda: next((m for m in stack.messages(ANNA) if "send a comment" in m["plain_text"]), None))
        assert "within 10 minutes" in thanks["plain_text"]
        shown = stack.message(ANNA, card["message_id"])
        assert "Your rating: ★★☆☆☆" in shown["plain_text"]
        assert [text for text, _ in buttons(shown)] == ["1★", "✓2★", "3★", "4★", "5★"]

        # The comment: saved, not relayed to the staff as a customer message.
        (reply,) = stack.say(ANNA, "The coffee was cold")
        assert "your comment is saved" in reply["plain_text"]
        notice = staff.wait_for(BARISTA, "💬 The coffee was cold")
        assert "Low rating ★★☆☆☆ · order R-1 · Bean There" in notice["plain_text"]
        assert "Customer: Anna" in notice["plain_text"]
        wait_until(lambda: len(rated_events(receiver)) >= 2, 15, 0.1, "two order.rated events")
        first, second = rated_events(receiver)
        ids = {"horeca_id": "cafe-1", "order_id": "R-1", "telegram_user_id": ANNA}
        assert first == {**ids, "rating": 2, "comment": None}
        assert second == {**ids, "rating": 2, "comment": "The coffee was cold"}
        rating = stack.api.order("R-1")["rating"]
        assert (rating["value"], rating["comment"]) == (2, "The coffee was cold") and rating["rated_at"].endswith("Z")
        low = [m for m in staff.messages(BARISTA) if "Low rating" in m["plain_text"]]
        assert len(low) == 2  # the rating, then the rating with its comment
        relayed = [m for m in staff.messages(BARISTA) if "The coffee was cold" in m["plain_text"]]
        assert all("Low rating" in m["plain_text"] for m in relayed)  # never as a customer message

        # A change within the day: taken, sent to the backend, not to the staff (5 is not low).
        answer = stack.press(ANNA, card["message_id"], button_text="5★")
        assert answer["text"] == "Thank you for rating!"
        wait_until(lambda: len(rated_events(receiver)) >= 3, 15, 0.1, "the changed rating")
        assert rated_events(receiver)[2] == {**ids, "rating": 5, "comment": "The coffee was cold"}
        assert stack.api.order("R-1")["rating"]["value"] == 5
        assert "Your rating: ★★★★★" in stack.message(ANNA, card["message_id"])["plain_text"]

        # Forged and bad presses: an alert, nothing changes.
        pk = int(stars[0][1].split(":")[1])
        r2 = stack.wait_status_messages(ANNA, "R-2", 1)[-1]
        r2_pk = int(buttons(stack.message(ANNA, r2["message_id"]))[0][1].split(":")[1])  # its Cancel button: c:<pk>
        for message_id, data, alert in [
            (card["message_id"], f"r:{pk}:6", "This button is no longer valid."),
            (card["message_id"], f"r:{pk}:01", "This button is no longer valid."),
            (card["message_id"], f"r:{r2_pk}:1", "This button is no longer valid."),  # another order's id on this card
            (r2["message_id"], f"r:{r2_pk}:1", "This button is no longer valid."),  # not a completed card
        ]:
            answer = stack.press(ANNA, message_id, callback_data=data, force=True)
            assert (answer["text"], answer["show_alert"]) == (alert, True), data
        assert [text for text, _ in buttons(stack.message(ANNA, r2["message_id"]))] == ["Cancel order"]  # untouched
        assert stack.api.order("R-2")["rating"] is None and stack.api.order("R-1")["rating"]["value"] == 5

        # The order is no longer completed (the backend sent another status): its stars are refused and go.
        stack.api.push(ANNA, "R-3", "completed")
        r3 = stack.wait_status_messages(ANNA, "R-3", 1)[-1]
        wait_until(lambda: buttons(stack.message(ANNA, r3["message_id"])), what="the stars of R-3")
        stack.api.push(ANNA, "R-3", "cancelled")
        stack.wait_status_messages(ANNA, "R-3", 2)
        answer = stack.press(ANNA, r3["message_id"], button_text="1★")
        assert (answer["text"], answer["show_alert"]) == ("This order can no longer be rated.", True)
        wait_until(lambda: not buttons(stack.message(ANNA, r3["message_id"])), what="the stars of R-3 to go")
        assert stack.api.order("R-3")["rating"] is None

        # Late: a day after the first tap, a tap changes nothing and the stars go.
        from models import OrderRating, db, utcnow

        with stack.db():
            db.session.execute(update(OrderRating).values(rated_at=utcnow() - timedelta(hours=25)))
            db.session.commit()
        answer = stack.press(ANNA, card["message_id"], button_text="1★")
        assert (answer["text"], answer["show_alert"]) == ("This order can no longer be rated.", True)
        assert stack.api.order("R-1")["rating"]["value"] == 5
        wait_until(lambda: not buttons(stack.message(ANNA, card["message_id"])), what="the stars to go")
        assert len(rated_events(receiver)) == 3
        assert len([m for m in staff.messages(BARISTA) if "Low rating" in m["plain_text"]]) == 2
    finally:
        receiver.stop()
