"""Reachable means the bot can write: a customer linked through the API who never opened the bot, end to end.

gunicorn, run_bot.py and the Telegram emulator as real processes. The emulator, like Telegram, answers
"400 chat not found" to a message for a user who never started the bot.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import BOT_USERNAME, Stack, wait_until

pytestmark = pytest.mark.e2e


def reach(stack: Stack, user_id: int) -> tuple[bool, bool, str | None]:
    status = stack.api.subscribe_status(user_id)
    return status["subscribed"], status["reachable"], status["reason"]


def test_a_status_waits_for_a_customer_who_never_started_the_bot_and_arrives_after_start(stack: Stack):
    stack.start_bot()
    boris = 1201  # no chat with the bot: the emulator does not know him yet

    # The backend links him through the API: known, but the bot cannot write to him.
    stack.api.link(boris)
    status = stack.api.subscribe_status(boris)
    assert status["known"] is True
    assert reach(stack, boris) == (False, False, "never_started")

    # A status pushed now is tried once, Telegram says "chat not found", and it is set aside, not lost.
    stack.api.push(boris, "R-1", "created")
    wait_until(lambda: stack.api.order("R-1")["updates"][0]["delivery"] == "blocked", what="the status to wait")
    assert stack.emu.stats(BOT_USERNAME)["errors"].get("400", 0) >= 1
    assert reach(stack, boris) == (False, False, "never_started")
    stack.api.push(boris, "R-1", "accepted")  # pushed while he has still not started the bot

    # He opens the bot and presses Start: reachable, welcomed, and what waited arrives in order.
    stack.user(boris, first_name="Boris")
    replies = stack.say(boris, "/start", replies=3)  # the welcome and the two statuses, in whatever order
    assert any("Welcome back!" in m["plain_text"] for m in replies)
    wait_until(lambda: reach(stack, boris) == (True, True, None), what="subscribe-status to say reachable")
    created, accepted = stack.wait_status_messages(boris, "R-1", 2)
    assert "Order placed" in created["plain_text"]
    assert "The cafe accepted your order" in accepted["plain_text"]
    wait_until(lambda: [u["delivery"] for u in stack.api.order("R-1")["updates"]] == ["sent", "sent"], what="both statuses sent")

    # From now on statuses go straight through.
    stack.api.push(boris, "R-1", "ready")
    stack.wait_status_messages(boris, "R-1", 3)
