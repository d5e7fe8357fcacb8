"""Delivery under stress, through the real processes: kill -9, SIGTERM, Telegram errors and limits.

That no token reaches the logs through any of these faults is tests/e2e/test_secrets.py.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.texts import EN, RU
from tests.e2e.conftest import BOT_USERNAME, Stack, wait_until

pytestmark = pytest.mark.e2e

# Users linked through the API have no language_code: their messages are in Russian.
STATUS_BY_TEXT = {text: status for catalog in (EN, RU) for status, text in catalog.statuses.items()}
HEADS = ("Order ", "Заказ ")


def prepare(stack: Stack, users: int, orders: int, statuses: tuple[str, ...], first_user: int) -> list[tuple[int, str, str]]:
    """Link `users` users, then queue `statuses` for `orders` orders each; returns (user, order, status) in queue order.

    Bulk data goes straight through the service layer (the API path is walked in test_story.py): it is the
    bot process, not the setup, these tests are about.
    """
    from services import linking
    from services import orders as order_service

    def link(user: int) -> None:
        stack.user(user)
        with stack.db():
            linking.claim(linking.issue().code, user)

    def push(user: int, orders_of_user: list[tuple[str, str]]) -> None:
        with stack.db():
            for order_id, status in orders_of_user:
                order_service.record_status(user, "cafe-1", order_id, status)

    people = [first_user + i for i in range(users)]
    stack.db()  # build the app once, before the threads use it
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(link, people))
    queued = [(user, f"O{user}-{n}", status) for status in statuses for user in people for n in range(orders)]
    by_user: dict[int, list[tuple[str, str]]] = {}
    for user, order_id, status in queued:  # each user's rows in queue order, users in parallel
        by_user.setdefault(user, []).append((order_id, status))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: push(*item), by_user.items()))
    return queued


def delivered(stack: Stack) -> Counter:
    """(chat, order, status) → how many messages the emulator received for it."""
    seen: Counter = Counter()
    for m in stack.emu.messages(BOT_USERNAME):
        head, _, rest = m["plain_text"].partition("\n")
        if not head.startswith(HEADS):
            continue
        order_id = head.split(" ")[1]
        status = STATUS_BY_TEXT[rest.split("\n")[0]]
        seen[(m["chat_id"], order_id, status)] += 1
    return seen


def first_message_ids(stack: Stack) -> dict[tuple[int, str, str], int]:
    firsts: dict[tuple[int, str, str], int] = {}
    for m in stack.emu.messages(BOT_USERNAME):
        head, _, rest = m["plain_text"].partition("\n")
        if head.startswith(HEADS):
            key = (m["chat_id"], head.split(" ")[1], STATUS_BY_TEXT[rest.split("\n")[0]])
            firsts.setdefault(key, m["message_id"])
            firsts[key] = min(firsts[key], m["message_id"])
    return firsts


def assert_per_order_order(stack: Stack, queued: list[tuple[int, str, str]], statuses: tuple[str, ...]) -> None:
    """Within every order, statuses arrived in the order they were recorded."""
    firsts = first_message_ids(stack)
    for user, order_id in {(u, o) for u, o, _ in queued}:
        ids = [firsts[(user, order_id, s)] for s in statuses]
        assert ids == sorted(ids), (order_id, ids)


def sent_count(stack: Stack) -> int:
    return stack.emu.stats(BOT_USERNAME)["sent"]


def all_sent(stack: Stack, total: int):
    states = stack.outbox_states()
    return len(states) == total and all(s == "sent" for s in states.values())


# These tests follow every queued status to Telegram: coalescing (a late status skipped for a newer one of its
# order, tests/test_coalescing.py) is put out of reach, or a drain longer than its 10 s would rightly skip some.
EVERY_STATUS = {"COALESCE_AFTER_SECONDS": "3600"}


def test_kill_9_while_500_updates_are_pending_loses_none(stack: Stack):
    statuses = ("created", "accepted")
    queued = prepare(stack, users=50, orders=5, statuses=statuses, first_user=3000)
    assert len(queued) == 500
    bot = stack.start_bot(**EVERY_STATUS)
    wait_until(lambda: sent_count(stack) >= 100, 30, 0.005, "100 messages delivered")
    bot.kill9()
    before = sent_count(stack)
    in_flight = {row for row, state in stack.outbox_states().items() if state == "sending"}
    assert before < 500, "the kill came too late to test anything"

    stack.start_bot(**EVERY_STATUS)  # takes over the dead process's claims after CLAIM_TIMEOUT_SECONDS
    wait_until(lambda: all_sent(stack, 500), 60, 0.2, "all 500 updates sent")
    seen = delivered(stack)
    assert set(seen) == {(u, o, s) for u, o, s in queued}  # nothing lost
    duplicates = {key for key, n in seen.items() if n > 1}
    # Only a send that was in flight at the kill can have gone out twice: one per delivery worker at most.
    assert len(duplicates) <= len(in_flight) and len(duplicates) <= 8, duplicates
    assert all(n <= 2 for n in seen.values())
    assert_per_order_order(stack, queued, statuses)


def test_429_and_5xx_storms_still_deliver_everything_once_in_order(stack: Stack):
    statuses = ("created", "accepted", "preparing")
    stack.start_bot(**EVERY_STATUS)
    emu = stack.emu
    emu.faults("429", bot=BOT_USERNAME, method="sendMessage", count=3, retry_after=1)
    emu.faults("502_html", bot=BOT_USERNAME, method="sendMessage", count=5)
    emu.faults("drop", bot=BOT_USERNAME, method="sendMessage", count=5)  # connection closed before Telegram saw it
    emu.faults("500", bot=BOT_USERNAME, method="sendMessage", probability=0.2)
    queued = prepare(stack, users=10, orders=3, statuses=statuses, first_user=4000)
    wait_until(lambda: all_sent(stack, len(queued)), 60, 0.2, "every update sent despite the storm")
    emu.clear_faults()
    stats = emu.stats(BOT_USERNAME)
    assert stats["errors"].get("429", 0) == 3 and stats["errors"].get("500", 0) > 0
    seen = delivered(stack)
    assert set(seen) == {(u, o, s) for u, o, s in queued} and set(seen.values()) == {1}
    assert_per_order_order(stack, queued, statuses)

    # And still exactly one live button per order: under its newest message.
    def one_button_each() -> bool:
        live = Counter()
        for m in emu.messages(BOT_USERNAME):
            if (m.get("reply_markup") or {}).get("inline_keyboard"):
                assert STATUS_BY_TEXT[m["plain_text"].split("\n")[1]] == "preparing"
                live[(m["chat_id"], m["plain_text"].split(" ")[1])] += 1
        return len(live) == 30 and set(live.values()) == {1}

    wait_until(one_button_each, 15, 0.2, "one button per order")


def test_sigterm_mid_delivery_exits_fast_and_loses_or_repeats_nothing(stack: Stack):
    queued = prepare(stack, users=30, orders=10, statuses=("created",), first_user=5000)
    bot = stack.start_bot(TELEGRAM_GLOBAL_RATE="60")  # slow enough to be mid-way when the signal comes
    wait_until(lambda: sent_count(stack) >= 30, 30, 0.01, "delivery under way")
    took = bot.stop(signal.SIGTERM)
    assert took < 10, f"run_bot.py took {took:.1f} s to stop"
    assert bot.popen.returncode == 0, bot.output()[-2000:]
    states = Counter(stack.outbox_states().values())
    assert states["sending"] == 0, states  # every claim was either recorded or given back
    assert 0 < states["sent"] < len(queued)
    assert states["sent"] == sent_count(stack)

    stack.start_bot()
    wait_until(lambda: all_sent(stack, len(queued)), 30, 0.2, "the rest delivered after the restart")
    seen = delivered(stack)
    assert set(seen) == {(u, o, s) for u, o, s in queued} and set(seen.values()) == {1}
    assert "SIGTERM received: stopping" in bot.output() and "stopped" in bot.output()


def test_rate_limits_on_no_429_and_one_message_per_second_per_chat(stack: Stack):
    stack.emu.limits(enabled=True, global_per_second=30, per_chat_per_second=1, per_chat_burst=1)
    queued = prepare(stack, users=45, orders=1, statuses=("created",), first_user=6000)
    anna = stack.user(6100)
    stack.api.link(anna)
    for status in ("created", "accepted", "preparing"):
        stack.api.push(anna, "P-1", status)
    started = time.monotonic()
    stack.start_bot(TELEGRAM_GLOBAL_RATE="30", TELEGRAM_PER_CHAT_RATE="1", **EVERY_STATUS)
    wait_until(lambda: all_sent(stack, len(queued) + 3), 30, 0.1, "everything sent within the limits")
    took = time.monotonic() - started
    assert stack.emu.stats(BOT_USERNAME)["rate_limited_429"] == 0
    assert took >= 48 / 30  # 48 messages at no more than 30 a second
    times = [m["received_at"] for m in stack.status_messages(anna, "P-1")]
    assert all(b - a >= 0.95 for a, b in zip(times, times[1:], strict=False)), times
