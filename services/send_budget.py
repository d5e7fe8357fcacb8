"""One send budget per bot for every bot process on one PostgreSQL: send slots, per-chat slots, the 429 pause.

Each process asks for slots for the sends its workers are about to make, several at once, in one
statement: the bot's `send_budgets` row hands out consecutive slots `gap` apart (the bot's global rate),
each chat's `send_chat_slots` row says when that chat may next get a message, and `paused_until` (set by
whoever Telegram answered 429) holds every slot back. Times are seconds since the epoch by the database
server's clock, and the answer carries the server's "now", so the processes' own clocks never meet.

A request whose slot would come later than `max_wait` reserves nothing (like `bot.ratelimit.RateLimiter`):
the worker gives its row back with that delay. PostgreSQL only; SQLite runs one bot process, which keeps
its limits in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text

from models import db

# The bot's row: `n` consecutive slots from the next free one (not before now, nor before a pause), unless that
# is more than `max_wait` away: then nothing is taken (`last_grant` NULL). Then each chat's row, for the requests
# that got a slot: moved to the slot when the chat is free by then, left alone otherwise.
_RESERVE = text(
    """
WITH clock AS (
    -- Budget rows need no flush to disk before the answer (a crash loses a second of slots, nothing more).
    SELECT extract(epoch FROM clock_timestamp())::float8 AS now
    FROM (SELECT set_config('synchronous_commit', 'off', true)) AS fast
),
budget AS (
    INSERT INTO send_budgets AS b (bot, next_slot, paused_until, last_grant)
    SELECT :bot, clock.now + :n * :gap, 0, clock.now FROM clock
    ON CONFLICT (bot) DO UPDATE SET
        last_grant = CASE WHEN greatest(b.next_slot, b.paused_until, EXCLUDED.last_grant) <= EXCLUDED.last_grant + :max_wait
            THEN greatest(b.next_slot, b.paused_until, EXCLUDED.last_grant) END,
        next_slot = CASE WHEN greatest(b.next_slot, b.paused_until, EXCLUDED.last_grant) <= EXCLUDED.last_grant + :max_wait
            THEN greatest(b.next_slot, b.paused_until, EXCLUDED.last_grant) + :n * :gap ELSE b.next_slot END
    RETURNING b.next_slot, b.paused_until, b.last_grant
),
asked AS (
    SELECT r.chat_id, r.i, budget.last_grant + (r.i - 1) * :gap AS slot
    FROM unnest(CAST(:chats AS bigint[])) WITH ORDINALITY AS r(chat_id, i), budget
),
chats AS (
    INSERT INTO send_chat_slots AS s (bot, chat_id, next_at)
    SELECT :bot, asked.chat_id, asked.slot + :chat_gap FROM asked
    WHERE :chat_gap > 0 AND asked.chat_id IS NOT NULL AND asked.slot IS NOT NULL
    ON CONFLICT (bot, chat_id) DO UPDATE
        SET next_at = CASE WHEN s.next_at <= EXCLUDED.next_at - :chat_gap THEN EXCLUDED.next_at ELSE s.next_at END
    RETURNING s.chat_id, s.next_at
)
SELECT asked.i, asked.slot, chats.next_at AS chat_next, clock.now, budget.paused_until, budget.next_slot
FROM asked CROSS JOIN budget CROSS JOIN clock LEFT JOIN chats ON chats.chat_id = asked.chat_id
ORDER BY asked.i
"""
)
_PAUSE = text(
    """
INSERT INTO send_budgets AS b (bot, next_slot, paused_until)
VALUES (:bot, 0, extract(epoch FROM clock_timestamp()) + :seconds)
ON CONFLICT (bot) DO UPDATE SET paused_until = greatest(b.paused_until, EXCLUDED.paused_until)
"""
)
_PRUNE = text("DELETE FROM send_chat_slots WHERE next_at < extract(epoch FROM clock_timestamp()) - :keep")


@dataclass(frozen=True)
class Grant:
    """One request's answer: `wait` seconds from the statement's start until its slot, or None and `earliest`."""

    wait: float | None
    earliest: float  # seconds until a slot could be free, when `wait` is None
    paused_for: float  # seconds left of the bot's 429 pause (0: none)
    now: float = 0.0  # the server's clock (seconds since the epoch) when the statement ran


def reserve(bot: str, chats: Sequence[int | None], gap: float, chat_gap: float, max_wait: float) -> list[Grant]:
    """Reserve a send slot for each request (a chat id, None for an edit): one statement, its own transaction.

    The chats must be distinct (a chat's row is updated once per statement). `gap`: seconds between two
    sends of the bot (0: no limit); `chat_gap`: between two sends to one chat (0: no limit).
    """
    params = {"bot": bot, "n": len(chats), "gap": gap, "chat_gap": chat_gap, "max_wait": max_wait, "chats": list(chats)}
    # One round trip: the statement is its own transaction (no BEGIN and COMMIT sent apart).
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        rows = conn.execute(_RESERVE, params).all()
    grants = []
    for row in rows:
        paused = max(0.0, row.paused_until - row.now)
        if row.slot is None:  # no slot of the bot's within max_wait: when the next one is free
            grants.append(Grant(None, max(0.0, max(row.next_slot, row.paused_until) - row.now), paused, row.now))
        elif row.chat_next is not None and abs(row.chat_next - row.slot - chat_gap) > 1e-5:
            # The chat's row kept its time (busy past this slot): the slot goes unused (rare: two messages to
            # one chat back to back).
            grants.append(Grant(None, max(0.0, row.chat_next - row.now), paused, row.now))
        else:
            grants.append(Grant(max(0.0, row.slot - row.now), 0.0, paused, row.now))
    return grants


def pause(bot: str, seconds: float) -> None:
    """Telegram answered 429: no process sends for this bot for `seconds`. Its own transaction."""
    with db.engine.begin() as conn:
        conn.execute(_PAUSE, {"bot": bot, "seconds": seconds})


def prune(keep: float = 60.0) -> int:
    """Forget the chats no slot was taken for in the last `keep` seconds; how many rows went."""
    with db.engine.begin() as conn:
        return conn.execute(_PRUNE, {"keep": keep}).rowcount
