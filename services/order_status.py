"""The statuses of an order and the rules of recording one, each defined once for both ways of recording it.

The general path (`services/orders.py`) applies the rules in Python; PostgreSQL's one-statement path
(`services/orders_pg.py`) has the database apply them, with SQL expressions built here from the same
definitions. tests/test_record_status.py checks that each pair agrees.
"""

from __future__ import annotations

import functools
import operator
import string
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Text, and_, cast, literal_column
from sqlalchemy.sql.elements import ColumnElement


class Status(StrEnum):
    """An order's status as the backend sends it (the API's `status` field)."""

    CREATED = "created"
    ACCEPTED = "accepted"
    PREPARING = "preparing"
    READY = "ready"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


STATUSES = tuple(Status)
CANCELLABLE_STATUSES = frozenset({Status.CREATED, Status.ACCEPTED, Status.PREPARING})
FINAL_STATUSES = frozenset({Status.COMPLETED, Status.CANCELLED, Status.REJECTED})
ACTIVE_STATUSES = frozenset({Status.CREATED, Status.ACCEPTED, Status.PREPARING, Status.READY})

BLOCKED_ERROR = "the user has blocked the bot"  # last_error of an update queued for a user who blocked the bot


@dataclass(frozen=True)
class Recorded:
    """A recorded status update; `duplicate` when the same status had been recorded before (nothing queued)."""

    update_id: int
    order_id: str
    horeca_id: str
    status: str | None  # None for a text about the order without a status
    delivery: str
    duplicate: bool


# --- The dedup key: one message per (order, status). Existing outbox rows hold keys of this format, so it
# must not change. The one-statement path learns the order's pk inside the statement: it builds the same
# key in SQL from this format.
STATUS_KEY = "status:{order_pk}:{status}"


def status_key(order_pk: int, status: str) -> str:
    """The dedup key of a status update."""
    return STATUS_KEY.format(order_pk=order_pk, status=status)


def status_key_sql(order_pk: ColumnElement[Any], status: ColumnElement[Any]) -> ColumnElement[str]:
    """`status_key` as a SQL expression: STATUS_KEY's text and fields joined with `||`."""
    fields = {"order_pk": order_pk, "status": status}
    parts: list[ColumnElement[str]] = []
    for literal_text, field, _, _ in string.Formatter().parse(STATUS_KEY):
        if literal_text:
            parts.append(sql_string(literal_text))
        if field is not None:
            parts.append(cast(fields[field], Text))
    return functools.reduce(operator.add, parts)


# --- The cancel rule: an order is cancellable while its status is, and once it is not it never becomes
# cancellable again (a status going backwards never reopens the cancel).


def next_cancellable(current: bool, status: str) -> bool:
    """Whether an order stays cancellable when it takes `status` (a new order starts from True)."""
    return current and status in CANCELLABLE_STATUSES


def next_cancellable_sql(current: ColumnElement[bool], status: ColumnElement[Any]) -> ColumnElement[bool]:
    """`next_cancellable` as a SQL expression, from the same CANCELLABLE_STATUSES."""
    return and_(current, status.in_([sql_string(s) for s in sorted(CANCELLABLE_STATUSES)]))


def sql_string(value: str) -> ColumnElement[str]:
    """A constant string written into the SQL itself, not a bound parameter.

    `database.single_statement` passes only the caller's parameters, so constants cannot be bound ones.
    """
    return literal_column("'" + value.replace("'", "''") + "'", Text)
