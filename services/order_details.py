"""What an order's card shows besides its status (issue 11): items, total, ETA and pickup code.

The backend sends each with a status or a text; each is stored on the order as last sent (one left out
keeps its earlier value), the card and `GET /orders/<horeca_id>/<order_id>` read them from there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Item:
    name: str
    qty: int


@dataclass(frozen=True, slots=True)
class Details:
    """The details of an order; None for each one not given (or never sent)."""

    items: tuple[Item, ...] | None = None
    total: str | None = None
    eta: datetime | None = None  # naive UTC, like every column
    pickup_code: str | None = None

    def given(self) -> bool:
        """Whether any detail is set."""
        return any(v is not None for v in (self.items, self.total, self.eta, self.pickup_code))

    def columns(self) -> dict[str, Any]:
        """The order columns these details set (the ones given), as stored."""
        values: dict[str, Any] = {"total": self.total, "eta": self.eta, "pickup_code": self.pickup_code}
        if self.items is not None:
            values["items"] = json.dumps([{"name": i.name, "qty": i.qty} for i in self.items], ensure_ascii=False)
        return {column: value for column, value in values.items() if value is not None}


def items_of(raw: str | None) -> tuple[Item, ...] | None:
    """The stored items column read back; None when never sent (or unreadable)."""
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(parsed, list):
        return None
    return tuple(
        Item(str(i.get("name", "")), int(i.get("qty", 1)))
        for i in parsed
        if isinstance(i, dict) and isinstance(i.get("qty", 1), int)
    )


def of_row(row: Any) -> Details:
    """The details of an order row (anything with items, total, eta and pickup_code)."""
    return Details(items_of(row.items), row.total, row.eta, row.pickup_code)
