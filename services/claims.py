"""The claim rule both outboxes share (Telegram messages and webhook events), on the database side.

A worker claims a due row (and commits the claim) before it sends, and records the outcome after. A claim
older than the claim timeout belongs to a process that died: another process takes the row over. The claim
timeout is at most MAX_CLAIM_TIMEOUT, so a dead process's rows go out again within a minute.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, true

MAX_CLAIM_TIMEOUT = 60.0  # seconds: the promise that a dead process's claim is taken over within a minute


def stale_before(now: datetime, claim_timeout: float) -> datetime:
    """Claims made before this moment are stale: their process died, the rows may be taken over."""
    return now - timedelta(seconds=claim_timeout)


def claimable(
    *,
    unclaimed: ColumnElement[bool],
    claimed_at: Any,
    stale: Any,
    due: ColumnElement[bool] | None = None,
    claimed: ColumnElement[bool] | None = None,
) -> ColumnElement[bool]:
    """The rows a claim may take: unclaimed (and `due`), or claimed (`claimed`) before `stale`: taken over.

    `unclaimed` and `claimed` say how the table marks a claim (a state, or a claim time). A table that claims
    only due rows can filter on due-ness outside and leave `due` out. `stale` is a value or a bind parameter
    (a statement built once takes it at each execution).
    """
    return or_(
        and_(unclaimed, due if due is not None else true()),
        and_(claimed if claimed is not None else true(), claimed_at < stale),
    )
