"""Coalescing under backlog: when an order's status is late and newer statuses of it are already due, send only the newest.

The delivery claim (`services/delivery.claim_due`) takes one row per order at a time, oldest first. Without
a backlog each status goes out on its own within a second or two. When the bot was down, or the send budget
is saturated, several statuses of one order are due at once and the customer would get a burst of stale
ones; instead, a claimed status row that is older than the coalescing delay (`COALESCE_AFTER_SECONDS`)
while newer statuses of its order are pending and due is replaced, in the claim's transaction, by the
newest of them, and it and the ones between are marked `superseded` (no Telegram message, ever). Only
status rows coalesce: a run of statuses stops at any other kind of row of the order, which keeps its place.
A claim taken over from a dead process (state `sending`) never coalesces: it may have gone out already.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, update

from models import OutboxKind, OutboxMessage, OutboxState

_o = OutboxMessage
# The active rows of the claimed orders at or after each claimed row, with the claim's columns (a stand-in row).
_LATER = (
    select(
        _o.id, _o.bot, _o.kind, _o.chat_id, _o.order_pk, _o.status, _o.text, _o.payload, _o.attempts,
        _o.first_attempt_at, _o.state, _o.next_attempt_at, _o.created_at,
    )
    .where(
        _o.order_pk.in_(bindparam("orders", expanding=True)),
        _o.id >= bindparam("first"),
        _o.state.in_((OutboxState.PENDING, OutboxState.SENDING)),
    )
    .order_by(_o.id)
    .with_for_update(of=_o)  # the newer rows are ours to send or supersede until the claim commits
)  # fmt: skip
_SUPERSEDE = (
    update(_o)
    .where(_o.id.in_(bindparam("ids", expanding=True)), _o.state == OutboxState.PENDING)
    .values(state=OutboxState.SUPERSEDED, claimed_at=None, claimed_by=None)
)


def coalesce(conn: Connection, rows: Sequence[Row[Any]], now: datetime, after: float) -> list[Row[Any]]:
    """The claimed `rows`, each late status row replaced by the newest due status of its order (the skipped ones
    are marked superseded on `conn`, the claim's transaction). Rows that do not coalesce come back as they were."""
    late_before = now - timedelta(seconds=after)
    candidates = {r.order_pk: r for r in rows if r.kind == OutboxKind.STATUS and r.order_pk is not None}
    if not candidates:
        return list(rows)
    later: dict[int, list[Row[Any]]] = {}
    params = {"orders": sorted(candidates), "first": min(r.id for r in candidates.values())}
    for row in conn.execute(_LATER, params):
        later.setdefault(row.order_pk, []).append(row)
    replaced: dict[int, Row[Any]] = {}
    superseded: list[int] = []
    for order_pk, claimed in candidates.items():
        run = [r for r in later.get(order_pk, []) if r.id >= claimed.id]
        if not run or run[0].id != claimed.id or run[0].state != OutboxState.PENDING or run[0].created_at > late_before:
            continue  # a takeover, or not late: sent as it is
        newest = None
        for row in run[1:]:
            if row.kind != OutboxKind.STATUS or row.state != OutboxState.PENDING or row.next_attempt_at > now:
                break  # the run of due statuses ends here; what follows keeps its turn
            newest = row
        if newest is None:
            continue
        superseded.extend(r.id for r in run if r.id < newest.id)
        replaced[claimed.id] = newest
    if superseded:
        conn.execute(_SUPERSEDE, {"ids": superseded})
    return [replaced.get(r.id, r) for r in rows]
