"""The customer's story through the real processes: website code → Telegram → live statuses → cancel; blocking."""

from __future__ import annotations

import pytest

from devtools.tg_emulator import EmulatorClient
from tests.e2e.conftest import BOT_USERNAME, Stack, wait_until

pytestmark = pytest.mark.e2e

buttons = EmulatorClient.buttons


def link_by_deep_link(stack: Stack, user_id: int) -> str:
    """The website issues a code, the user opens the deep link (/start <code>); returns the code."""
    issued = stack.api.issue_code()
    assert issued["deep_link"] == f"https://t.me/{BOT_USERNAME}?start={issued['code']}"
    (reply,) = stack.say(user_id, f"/start {issued['code']}")
    assert "Done! Updates on your orders will arrive here." in reply["plain_text"]
    return issued["code"]


def live_buttons(stack: Stack, user_id: int, order_id: str) -> dict[int, list]:
    """message_id → buttons, for every message about the order that still has any."""
    return {m["message_id"]: buttons(m) for m in stack.status_messages(user_id, order_id) if buttons(m)}


def test_link_follow_statuses_and_cancel_with_confirmation(stack: Stack):
    stack.start_bot()
    anna = stack.user(1001)
    code = link_by_deep_link(stack, anna)
    assert stack.api.verification(code).json() == {"code": code, "user_id": anna}

    for status in ("created", "accepted", "preparing"):
        stack.api.push(anna, "A-1", status)
    first, second, newest = stack.wait_status_messages(anna, "A-1", 3)
    assert "Order placed" in first["plain_text"]
    assert "The cafe accepted your order" in second["plain_text"]
    assert "Your order is being prepared" in newest["plain_text"]
    assert "You can cancel the order until it is ready." in newest["plain_text"]
    # Exactly one live button: under the newest message.
    wait_until(
        lambda: live_buttons(stack, anna, "A-1") == {newest["message_id"]: [("Cancel order", newest_data(newest))]},
        what="the Cancel button on the newest message only",
    )

    # Cancel asks first; No brings the Cancel button back and changes nothing.
    answer = stack.press(anna, newest["message_id"], button_text="Cancel order")
    assert answer["show_alert"] is False
    asked = stack.message(anna, newest["message_id"])
    assert "Cancel order A-1?" in asked["plain_text"]
    assert [text for text, _ in buttons(asked)] == ["Yes, cancel", "No"]
    stack.press(anna, newest["message_id"], button_text="No")
    kept = stack.message(anna, newest["message_id"])
    assert [text for text, _ in buttons(kept)] == ["Cancel order"]
    assert stack.api.order("A-1")["cancel_requested"] is False

    stack.press(anna, newest["message_id"], button_text="Cancel order")
    answer = stack.press(anna, newest["message_id"], button_text="Yes, cancel")
    assert answer["text"] == "Cancellation requested"
    done = stack.message(anna, newest["message_id"])
    assert "Cancellation requested." in done["plain_text"]
    assert buttons(done) == []
    order = stack.api.order("A-1")
    assert order["cancel_requested"] is True and order["cancellable"] is False
    assert [u["delivery"] for u in order["updates"]] == ["sent", "sent", "sent"]
    assert live_buttons(stack, anna, "A-1") == {}


def newest_data(message: dict) -> str:
    return buttons(message)[0][1]


def test_ready_removes_every_button_and_a_late_press_is_refused(stack: Stack):
    stack.start_bot()
    anna = stack.user(1002)
    link_by_deep_link(stack, anna)
    stack.api.push(anna, "B-2", "created")
    (created,) = stack.wait_status_messages(anna, "B-2", 1)
    wait_until(lambda: buttons(stack.message(anna, created["message_id"])), what="the Cancel button")
    stack.api.push(anna, "B-2", "accepted")
    _, accepted = stack.wait_status_messages(anna, "B-2", 2)
    # The new message took over the button.
    wait_until(lambda: list(live_buttons(stack, anna, "B-2")) == [accepted["message_id"]], what="the button to move")
    stale_data = newest_data(stack.message(anna, accepted["message_id"]))

    stack.api.push(anna, "B-2", "ready")
    *_, ready = stack.wait_status_messages(anna, "B-2", 3)
    assert "Your order is ready to pick up!" in ready["plain_text"]
    assert buttons(ready) == []
    wait_until(lambda: live_buttons(stack, anna, "B-2") == {}, what="every button of the order to go")

    # A press that comes too late (the client still showed the button) is refused with an alert.
    answer = stack.press(anna, accepted["message_id"], callback_data=stale_data, force=True)
    assert answer["show_alert"] is True
    assert answer["text"] == "This order can no longer be cancelled."
    assert stack.api.order("B-2")["cancel_requested"] is False


def test_user_blocks_the_bot_and_comes_back(stack: Stack):
    stack.start_bot()
    anna = stack.user(1003)
    link_by_deep_link(stack, anna)
    assert stack.api.subscribe_status(anna)["subscribed"] is True

    stack.emu.block(BOT_USERNAME, anna)
    wait_until(lambda: stack.api.subscribe_status(anna)["is_bot_blocked"], what="subscribe-status to say blocked")
    status = stack.api.subscribe_status(anna)
    assert status["subscribed"] is False

    # A status sent meanwhile is recorded as blocked, not sent.
    stack.api.push(anna, "C-3", "created")
    wait_until(lambda: stack.api.order("C-3")["updates"][0]["delivery"] == "blocked", what="the update to be blocked")
    assert stack.status_messages(anna, "C-3") == []

    # Back with /start: subscribed again, welcomed back with the active order.
    stack.emu.unblock(BOT_USERNAME, anna)
    (welcome,) = stack.say(anna, "/start")
    assert "Welcome back!" in welcome["plain_text"]
    assert "C-3 · cafe-1: 🧾 Order placed" in welcome["plain_text"]
    wait_until(lambda: stack.api.subscribe_status(anna)["subscribed"], what="subscribe-status to say subscribed")
    stack.api.push(anna, "C-3", "accepted")
    stack.wait_status_messages(anna, "C-3", 1)


def test_a_403_on_sending_marks_the_user_blocked(stack: Stack):
    """Blocking can also surface only as Telegram's 403 (the my_chat_member update may be missed)."""
    stack.start_bot()
    anna = stack.user(1004)
    link_by_deep_link(stack, anna)
    stack.emu.faults("403", bot=BOT_USERNAME, method="sendMessage", chat_id=anna, count=1)
    stack.api.push(anna, "D-4", "created")
    wait_until(lambda: stack.api.order("D-4")["updates"][0]["delivery"] == "blocked", what="the update to be blocked")
    assert stack.api.subscribe_status(anna)["is_bot_blocked"] is True
    stack.api.push(anna, "D-4", "accepted")
    assert stack.api.order("D-4")["updates"][1]["delivery"] == "blocked"  # recorded blocked right away


def test_typed_code_links_and_the_sixth_wrong_code_is_refused(stack: Stack):
    stack.start_bot()
    boris = stack.user(1005, language_code=None)  # no language: Russian
    (hello,) = stack.say(boris, "/start")
    assert "отправьте сюда код с сайта" in hello["plain_text"]

    for attempt in range(5):
        (reply,) = stack.say(boris, f"WRONGCODE{attempt}")
        assert "Такой код не найден или он устарел" in reply["plain_text"], attempt
    code = stack.api.issue_code()["code"]
    (reply,) = stack.say(boris, code)  # the right code, but after five wrong ones: no lookup at all
    assert "Попробуйте ещё раз через 15 минут" in reply["plain_text"]
    assert stack.api.verification(code).status_code == 202  # still unclaimed

    clara = stack.user(1006, language_code="en")
    code = stack.api.issue_code()["code"]
    (reply,) = stack.say(clara, f"  {code.lower()} ")  # typed by hand: spaces and lower case are fine
    assert "Done! Updates on your orders will arrive here." in reply["plain_text"]
    assert stack.api.verification(code).json()["user_id"] == clara
    (reply,) = stack.say(boris, "/start")  # an unlinked user who only says /start is asked for the code
    assert "код с сайта" in reply["plain_text"]


def test_forged_callbacks_change_nothing(stack: Stack):
    stack.start_bot()
    anna, eve = stack.user(1007), stack.user(1008, first_name="Eve")
    link_by_deep_link(stack, anna)
    link_by_deep_link(stack, eve)
    stack.api.push(anna, "E-5", "created")
    stack.api.push(eve, "F-6", "created")
    (anna_msg,) = stack.wait_status_messages(anna, "E-5", 1)
    (eve_msg,) = stack.wait_status_messages(eve, "F-6", 1)
    wait_until(lambda: buttons(stack.message(anna, anna_msg["message_id"])), what="Anna's button")
    anna_pk = int(newest_data(stack.message(anna, anna_msg["message_id"])).split(":")[1])

    # Eve replays Anna's callback data on her own message, and sends garbage.
    for data in (f"cy:{anna_pk}", f"c:{anna_pk}", "cy:0", "cy:99999999999999999999", "x" * 64, "c:1:2", "cy:-1"):
        answer = stack.press(eve, eve_msg["message_id"], callback_data=data, force=True)
        assert answer["show_alert"] is True and answer["text"] == "This button is no longer valid.", data
    assert stack.api.order("E-5")["cancel_requested"] is False
    assert buttons(stack.message(anna, anna_msg["message_id"]))  # Anna's button is untouched
    assert buttons(stack.message(eve, eve_msg["message_id"]))  # and so is Eve's own


def test_linked_user_start_lists_active_orders(stack: Stack):
    stack.start_bot()
    anna = stack.user(1009)
    link_by_deep_link(stack, anna)
    stack.api.push(anna, "G-7", "preparing")
    stack.api.push(anna, "H-8", "completed")
    stack.wait_status_messages(anna, "H-8", 1)
    (reply,) = stack.say(anna, "/start")
    assert "Welcome back!" in reply["plain_text"]
    assert "G-7 · cafe-1" in reply["plain_text"]
    assert "H-8" not in reply["plain_text"]  # completed: not active any more
    (reply,) = stack.say(anna, "hello there")
    assert "Order updates arrive here by themselves." in reply["plain_text"]


def test_the_backend_hears_about_it_by_signed_webhooks(stack: Stack):
    from tests.test_webhooks import SECRET, Receiver

    receiver = Receiver()
    try:
        stack.start_bot(BACKEND_WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=SECRET)
        anna = stack.user(1011)
        code = link_by_deep_link(stack, anna)
        stack.api.push(anna, "W-1", "created")
        (message,) = stack.wait_status_messages(anna, "W-1", 1)
        wait_until(lambda: buttons(stack.message(anna, message["message_id"])), what="the Cancel button")
        stack.press(anna, message["message_id"], button_text="Cancel order")
        stack.press(anna, message["message_id"], button_text="Yes, cancel")
        stack.emu.block(BOT_USERNAME, anna)
        wait_until(lambda: len(receiver.received) >= 3, 15, 0.1, "three webhook events")
        events = [r.verify() for r in receiver.received]  # signatures checked as the backend would
        assert [e["type"] for e in events] == ["user.linked", "order.cancel_requested", "user.blocked"]
        assert events[0]["data"] == {"telegram_user_id": anna, "verification_code": code}
        assert events[1]["data"] == {"order_id": "W-1", "horeca_id": "cafe-1", "user_id": anna}
        assert events[2]["data"] == {"telegram_user_id": anna}
    finally:
        receiver.stop()
