"""A named cafe through the real processes (issue 11): its profile over HTTP, its name, its own words in Russian
and English, the order's items, total, ETA (a date_time entity) and pickup code on the card in Telegram, and
the seed's body (a text without a status)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devtools.tg_emulator import EmulatorClient
from tests.e2e.conftest import Stack, wait_until
from tests.e2e.test_story import link_by_deep_link

pytestmark = pytest.mark.e2e

buttons = EmulatorClient.buttons

PROFILE = {
    "name": "Зерно",
    "timezone": "Asia/Yekaterinburg",  # UTC+5
    "texts": {
        "ru": {"ready": "☕ {cafe}: заказ {order_id} ждёт вас! Код: {pickup_code}"},
        "en": {"ready": "☕ {cafe}: order {order_id} is waiting for you! Code: {pickup_code}"},
    },
}
ETA = "2030-06-01T12:30:00+03:00"  # 09:30 UTC, 14:30 at the cafe


def put_profile(stack: Stack, horeca_id: str = "cafe-1") -> dict:
    response = stack.api.session.put(f"{stack.api.base_url}/horeca/{horeca_id}", json=PROFILE, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def utf16_slice(text: str, entity: dict) -> str:
    units = text.encode("utf-16-le")
    return units[2 * entity["offset"] : 2 * (entity["offset"] + entity["length"])].decode("utf-16-le")


def test_a_named_cafes_card_with_items_eta_and_pickup_code_and_its_own_words(stack: Stack):
    put_profile(stack)
    stack.start_bot()
    anna = stack.user(2001, language_code="en")
    boris = stack.user(2002, language_code="ru", first_name="Борис")
    link_by_deep_link(stack, anna)
    issued = stack.api.issue_code()
    stack.say(boris, f"/start {issued['code']}")

    details = {"items": [{"name": "Latte", "qty": 2}, {"name": "Croissant", "qty": 1}], "total": "540 ₽", "eta": ETA}
    response = stack.api.post(
        "/provide_message_to_user/", {"user_id": anna, "order_id": "A-1", "horeca_id": "cafe-1", "status": "created", **details}
    )
    assert response.status_code == 202, response.text
    (created,) = stack.wait_status_messages(anna, "A-1", 1)
    text = created["plain_text"]
    assert text.startswith("Order A-1 · Зерно\n🧾 Order placed\n• Latte × 2\n• Croissant × 1\nTotal: 540 ₽\n⏱ Ready by ")
    (when,) = [e for e in created["entities"] if e["type"] == "date_time"]
    assert when["unix_time"] == int(datetime(2030, 6, 1, 9, 30, tzinfo=UTC).timestamp())
    assert utf16_slice(text, when) == "01.06 14:30"  # the cafe's time inside; the customer's app shows their own
    wait_until(lambda: buttons(stack.message(anna, created["message_id"])), what="the Cancel button")

    # "ready" with a pickup code: the cafe's own line, in each customer's language; the items are kept.
    stack.api.post(
        "/provide_message_to_user/",
        {"user_id": anna, "order_id": "A-1", "horeca_id": "cafe-1", "status": "ready", "pickup_code": "K-42"},
    )
    _, ready = stack.wait_status_messages(anna, "A-1", 2)
    assert "\n☕ Зерно: order A-1 is waiting for you! Code: K-42\n" in ready["plain_text"]
    assert "• Latte × 2" in ready["plain_text"]
    order = stack.api.order("A-1")
    assert order["pickup_code"] == "K-42" and order["items"] == details["items"] and order["total"] == "540 ₽"
    assert order["eta"] == "2030-06-01T09:30:00Z"

    stack.api.post(
        "/provide_message_to_user/",
        {"user_id": boris, "order_id": "B-1", "horeca_id": "cafe-1", "status": "ready", "pickup_code": "K-7"},
    )
    (russian,) = stack.wait_status_messages(boris, "B-1", 1)
    assert russian["plain_text"] == "Заказ B-1 · Зерно\n☕ Зерно: заказ B-1 ждёт вас! Код: K-7"

    # The active orders the bot lists name the cafe too.
    (welcome,) = stack.say(boris, "/start")
    assert "B-1 · Зерно" in welcome["plain_text"]


def test_the_seeds_body_sends_a_text_about_the_order_once(stack: Stack):
    put_profile(stack)
    stack.start_bot()
    anna = stack.user(2003, language_code="en")
    link_by_deep_link(stack, anna)

    body = {"user_id": anna, "order_id": "S-1", "horeca_id": "cafe-1", "text": "We got your order", "message_id": "m-1"}
    first = stack.api.post("/provide_message_to_user/", body)
    assert first.status_code == 202 and first.json()["status"] is None
    (note,) = stack.wait_status_messages(anna, "S-1", 1)
    assert note["plain_text"] == "Order S-1 · Зерно\nWe got your order"
    assert buttons(note) == []  # no status yet: nothing to cancel

    again = stack.api.post("/provide_message_to_user/", body)
    assert again.status_code == 200 and again.json()["update_id"] == first.json()["update_id"]
    wait_until(lambda: stack.api.order("S-1")["updates"][0]["delivery"] == "sent", what="the text to be sent")
    order = stack.api.order("S-1")
    assert order["status"] is None and order["cancellable"] is False and len(order["updates"]) == 1

    # The first status: a card with the Cancel button.
    stack.api.push(anna, "S-1", "created")
    _, card = stack.wait_status_messages(anna, "S-1", 2)
    wait_until(lambda: buttons(stack.message(anna, card["message_id"])), what="the Cancel button")
    assert len(stack.status_messages(anna, "S-1")) == 2  # the repeated message_id sent nothing
