"""Three bot processes on one PostgreSQL (issue 10): one polls, all deliver within one send budget, and a kill -9
of the one that polls loses nothing. The emulator enforces Telegram's limits (30/s per bot, 1/s per chat).

PostgreSQL only (SQLite takes one bot process: tests/test_scale.py); with TEST_DATABASE_URL set and the
server down, the session's database fixture fails, it does not skip.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from devtools.tg_emulator import EmulatorClient
from tests.e2e.conftest import BOT_USERNAME, Proc, Stack, wait_until
from tests.e2e.test_story import link_by_deep_link

pytestmark = pytest.mark.e2e

buttons = EmulatorClient.buttons
BACKLOG = 240  # about 8.5 s of sending at 28.5 messages/s
LIMITS = {"TELEGRAM_GLOBAL_RATE": "30", "TELEGRAM_PER_CHAT_RATE": "1", "DELIVERY_INTERVAL_SECONDS": "0.5"}


def poller(stack: Stack) -> str | None:
    from models import BotHeartbeat, db

    with stack.db():
        return db.session.scalar(select(BotHeartbeat.poller).where(BotHeartbeat.name == "customer"))


def claimed_by(stack: Stack, worker: str) -> int:
    from models import OutboxMessage, OutboxState, db

    with stack.db():
        query = select(func.count()).where(OutboxMessage.state == OutboxState.SENDING, OutboxMessage.claimed_by == worker)
        return int(db.session.scalar(query) or 0)


def cancel(stack: Stack, user_id: int, order_id: str) -> None:
    """The customer presses Cancel under the order's newest card, then Yes."""
    card = wait_until(
        lambda: next((m for m in reversed(stack.status_messages(user_id, order_id)) if buttons(m)), None),
        15,
        what=f"the Cancel button of {order_id}",
    )
    stack.press(user_id, card["message_id"], button_text="Cancel order", timeout=15)
    answer = stack.press(user_id, card["message_id"], button_text="Yes, cancel", timeout=15)
    assert answer["text"] == "Cancellation requested"


def test_three_bot_processes_share_one_poller_and_one_budget_and_survive_a_kill_of_the_poller(stack: Stack, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: several bot processes need PostgreSQL")
    stack.emu.limits(enabled=True)
    getme = stack.emu.stats(BOT_USERNAME)["calls"].get("getMe", 0)
    stack.start_bot(**LIMITS)
    for _ in range(2):
        stack.start_bot(wait=False, **LIMITS)
    wait_until(lambda: stack.emu.stats(BOT_USERNAME)["calls"].get("getMe", 0) >= getme + 3, 30, 0.1, "three bot processes")
    first_poller = wait_until(lambda: poller(stack), 10, 0.1, "the poller in the heartbeat")
    assert [p for p in stack.bots if first_poller.endswith(f":{p.pid}")], first_poller

    # Customers link in Telegram while all three run; each gets an order with a Cancel button.
    anna, boris, vera = (stack.user(uid) for uid in (2001, 2002, 2003))
    for user in (anna, boris):
        link_by_deep_link(stack, user)
        stack.api.push(user, f"O-{user}", "created")

    # A backlog for other customers (linked through the API) drains meanwhile.
    crowd = [stack.user(3000 + i) for i in range(BACKLOG)]
    for user in crowd:
        stack.api.link(user)
    for user in crowd:
        stack.api.push(user, f"B-{user}", "created")
    cancel(stack, anna, f"O-{anna}")  # while the backlog drains

    # kill -9 of whichever process polls, in the middle of the drain.
    wait_until(lambda: stack.emu.stats(BOT_USERNAME)["sent"] >= BACKLOG // 3, 30, 0.1, "a third of the backlog")
    victim_id = poller(stack)
    assert victim_id is not None
    victim: Proc = next(p for p in stack.bots if victim_id.endswith(f":{p.pid}"))
    victim.kill9()
    in_flight = claimed_by(stack, victim_id)

    # Updates sent right after the kill are handled by the process that takes over: linking, and a Cancel.
    link_by_deep_link(stack, vera)
    stack.api.push(vera, f"O-{vera}", "created")
    cancel(stack, boris, f"O-{boris}")
    cancel(stack, vera, f"O-{vera}")
    new_poller = poller(stack)
    assert new_poller not in (None, victim_id)
    assert stack.api.get("/healthz").json()["bots"]["customer"]["poller"] == new_poller  # what the operator sees

    # Nothing lost: every customer got their status; duplicates only of what the killed process had in flight.
    def delivered() -> dict[int, int]:
        got = {user: len(stack.status_messages(user, f"B-{user}")) for user in crowd}
        return got if all(got.values()) else {}

    counts = wait_until(delivered, 90, 0.5, f"the {BACKLOG} backlog messages")
    assert sum(counts.values()) - BACKLOG <= in_flight
    for user in (anna, boris, vera):
        assert stack.api.order(f"O-{user}")["cancel_requested"] is True

    stats = stack.emu.stats(BOT_USERNAME)
    assert stats["rate_limited_429"] == 0, "three processes stayed within one bot's limits"
    # One poller at a time: the only conflict allowed is the killed process's long poll, cut off by its successor.
    assert stats["errors"].get("409", 0) <= 1
    for proc in stack.bots:
        if proc is not victim:
            assert proc.alive(), proc.output()[-3000:]
