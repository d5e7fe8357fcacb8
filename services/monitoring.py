"""What /healthz and /metrics report, read from the database with cheap queries.

The bot process and the web app share the database, so the web app can tell the truth about both:
the bot's heartbeat, the outbox backlog, delivery latency, Telegram and webhook errors. Every query
here is an indexed count or bounded by the backlog, except the first delivery-latency aggregate of a
process (see `DeliveryLatency`). Functions end their read transaction before returning.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, case, func, select

from database import reading
from models import BotHeartbeat, BotName, OutboxMessage, OutboxState, WebhookEvent, WebhookState, db, utcnow
from services import staff_group, storage
from services.outbox_admin import REQUEUED_NOTE

log = logging.getLogger(__name__)

OUTBOX_STATES: tuple[str, ...] = tuple(OutboxState)
OUTBOX_UNDELIVERED: tuple[str, ...] = (OutboxState.PENDING, OutboxState.SENDING)
OUTBOX_NOT_SENT: tuple[str, ...] = (*OUTBOX_UNDELIVERED, OutboxState.FAILED, OutboxState.BLOCKED, OutboxState.SUPERSEDED)
WEBHOOK_STATES: tuple[str, ...] = tuple(WebhookState)
# Upper bounds (seconds) of the delivery latency buckets: the job runs every second, retries back off to minutes.
LATENCY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
REQUEUED_PREFIX = REQUEUED_NOTE.split(" at ", 1)[0]


def age_seconds(then: datetime | None, now: datetime) -> float | None:
    return None if then is None else round(max((now - then).total_seconds(), 0.0), 3)


# --- the bot's heartbeat ----------------------------------------------------------------------------


class BotState(StrEnum):
    OK = "ok"
    STALE = "stale"  # silent for longer than the stale limit
    NEVER_SEEN = "never_seen"  # never wrote a heartbeat


@dataclass(frozen=True)
class BotStatus:
    """One bot's liveness as the web app sees it: ok, stale (silent too long) or never_seen."""

    name: str
    status: BotState
    last_seen: datetime | None = None
    seconds_since: float | None = None
    username: str | None = None
    started_at: datetime | None = None
    last_get_updates_ok: datetime | None = None
    last_delivery_tick: datetime | None = None
    poller: str | None = None  # hostname:pid of the bot process polling this bot (issue 10)

    @property
    def ok(self) -> bool:
        return self.status == BotState.OK


def expected_bots(config: Mapping[str, Any]) -> list[str]:
    """The bots the bot process runs with this configuration: the customer bot, and the staff bot when it has a token."""
    return [BotName.CUSTOMER, BotName.HORECA] if config.get("HORECA_BOT_TOKEN") else [BotName.CUSTOMER]


def bot_statuses(stale_after: float, expected: Iterable[str] = (BotName.CUSTOMER,)) -> dict[str, BotStatus]:
    """Every bot that wrote a heartbeat, plus the `expected` ones (never_seen when they have not)."""
    now = utcnow()
    with reading() as session:
        rows = {row.name: row for row in session.scalars(select(BotHeartbeat))}
    result = {}
    for name in dict.fromkeys([*expected, *sorted(rows)]):
        row = rows.get(name)
        if row is None or row.last_seen is None:
            result[name] = BotStatus(name, BotState.NEVER_SEEN, username=row.username if row else None)
            continue
        since = age_seconds(row.last_seen, now)
        result[name] = BotStatus(
            name,
            BotState.OK if since is not None and since <= stale_after else BotState.STALE,
            last_seen=row.last_seen,
            seconds_since=since,
            username=row.username,
            started_at=row.started_at,
            last_get_updates_ok=row.last_get_updates_ok,
            last_delivery_tick=row.last_delivery_tick,
            poller=row.poller,
        )
    return result


# --- what /healthz reports ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    """The database's state and, when it answers, the bots' heartbeats and both backlogs."""

    # "ok"; "unreachable: <error>", "read_only", "full", "not_migrated" (storage.Fault); "error: <error>"
    database: str
    bots: dict[str, BotStatus] = field(default_factory=dict)
    expected: tuple[str, ...] = ()  # the bots the bot process should run
    outbox: OutboxBacklog | None = None
    webhooks: WebhookBacklog | None = None
    staff_groups: StaffGroups | None = None

    @property
    def serving(self) -> bool:
        """The web app can serve: its database answers."""
        return self.database == "ok"

    @property
    def bots_alive(self) -> bool:
        """Every expected bot wrote a heartbeat recently (False when the database is down)."""
        return self.serving and all(self.bots[name].ok for name in self.expected)


def _database_status() -> str:
    """What /healthz says of the database: ok, or what keeps it from serving (services/storage.py)."""
    found = storage.probe()
    if found is None:
        return "ok"
    log.warning("health check: %s", storage.advice(found))
    return _label(found)


def _label(found: storage.Diagnosis) -> str:
    return f"unreachable: {found.cause}" if found.fault == storage.Fault.UNREACHABLE else str(found.fault)


def health(stale_after: float, expected: Iterable[str]) -> Health:
    """Everything /healthz reports, in read transactions; never raises for a database that is down or not migrated."""
    database = _database_status()
    if database != "ok":
        return Health(database)
    expected = tuple(expected)
    try:
        bots = bot_statuses(stale_after, expected)
        outbox = outbox_backlog()
        webhooks = webhook_backlog()
        groups = staff_groups()
    except Exception as exc:  # noqa: BLE001 - e.g. a table the migrations left out: this app cannot serve
        found = storage.diagnose(exc)
        if found is not None:
            log.warning("health check: %s", storage.advice(found))
            return Health(_label(found))
        log.warning("health check: database query failed: %s", type(exc).__name__)
        return Health(f"error: {type(exc).__name__}")
    return Health("ok", bots, expected, outbox, webhooks, groups)


# --- backlog ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxBacklog:
    pending: int  # pending and sending: not delivered yet
    oldest_pending_age_seconds: float | None
    failed: int
    blocked: int


@dataclass(frozen=True)
class WebhookBacklog:
    pending: int
    oldest_pending_age_seconds: float | None
    failed: int


def _counts(model: Any, states: Iterable[str] | None = None) -> dict[str, int]:
    """Rows per state; with `states`, only those (an index range on (state, next_attempt_at))."""
    stmt = select(model.state, func.count()).group_by(model.state)
    if states is not None:
        stmt = stmt.where(model.state.in_(tuple(states)))
    return {state: count for state, count in db.session.execute(stmt)}


def _oldest(model: Any, states: Iterable[str]) -> datetime | None:
    return db.session.scalar(select(func.min(model.created_at)).where(model.state.in_(tuple(states))))


def outbox_backlog() -> OutboxBacklog:
    """What the bot process still has to deliver, and what it gave up on."""
    now = utcnow()
    with reading():
        counts = _counts(OutboxMessage, OUTBOX_NOT_SENT)
        oldest = _oldest(OutboxMessage, OUTBOX_UNDELIVERED)
    return OutboxBacklog(
        pending=sum(counts.get(s, 0) for s in OUTBOX_UNDELIVERED),
        oldest_pending_age_seconds=age_seconds(oldest, now),
        failed=counts.get(OutboxState.FAILED, 0),
        blocked=counts.get(OutboxState.BLOCKED, 0),
    )


def webhook_backlog() -> WebhookBacklog:
    """Webhook events not delivered yet (including those waiting for a retry), and those that failed for good."""
    now = utcnow()
    with reading():
        counts = _counts(WebhookEvent, (WebhookState.PENDING, WebhookState.FAILED))
        oldest = _oldest(WebhookEvent, (WebhookState.PENDING,))
    return WebhookBacklog(counts.get(WebhookState.PENDING, 0), age_seconds(oldest, now), counts.get(WebhookState.FAILED, 0))


# --- errors by code -------------------------------------------------------------------------------------

_CODE_PATTERNS = (
    re.compile(r"error[ _]code\W{0,3}(\d{3})", re.IGNORECASE),  # telebot: "... Error code: 403. Description: ..."
    re.compile(r"\bHTTP\W{0,3}(\d{3})\b"),  # "HTTP 502 Bad Gateway", "HTTP 502 without a Bot API answer"
    # "400 Bad Request: chat not found" (bot.telegram.describe), "gave up after 5 attempts in 300 s: 502 Bad Gateway"
    re.compile(r"(?:^|:\s)\W{0,2}(\d{3})\b"),
)
_EXCEPTION_NAME = re.compile(r"\b([A-Z][A-Za-z]*(?:Error|Timeout|Exception))\b")


def error_code(last_error: str | None) -> str:
    """A short label for an error text: the HTTP/Telegram code, else an exception name, else "other"."""
    if not last_error:
        return "none"
    if last_error.startswith(REQUEUED_PREFIX):
        return "requeued"  # an admin queued it again; no attempt since
    for pattern in _CODE_PATTERNS:
        match = pattern.search(last_error)
        if match:
            return match.group(1)
    match = _EXCEPTION_NAME.search(last_error)
    if match:
        return match.group(1)
    if "blocked" in last_error.lower():
        return "blocked"
    return "other"


def _error_counts(model: Any, states: Iterable[str]) -> dict[tuple[str, str], int]:
    """(state, error code) → rows, for rows in `states` that carry a last_error."""
    rows = db.session.execute(
        select(model.state, model.last_error, func.count())
        .where(model.state.in_(tuple(states)), model.last_error.is_not(None))
        .group_by(model.state, model.last_error)
    )
    result: dict[tuple[str, str], int] = {}
    for state, last_error, count in rows:
        key = (state, error_code(last_error))
        result[key] = result.get(key, 0) + count
    return result


# --- delivery latency -------------------------------------------------------------------------------


@dataclass
class Histogram:
    """Cumulative bucket counts (one per bound, then +Inf = count), count and sum, as Prometheus wants them."""

    bounds: tuple[float, ...]
    buckets: list[int] = field(default_factory=list)
    count: int = 0
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.buckets:
            self.buckets = [0] * len(self.bounds)

    def add(self, other: Histogram) -> Histogram:
        return Histogram(
            self.bounds,
            [a + b for a, b in zip(self.buckets, other.buckets, strict=True)],
            self.count + other.count,
            self.total + other.total,
        )


def _latency_seconds(dialect: str) -> Any:
    if dialect == "postgresql":
        return func.extract("epoch", OutboxMessage.sent_at - OutboxMessage.created_at)
    return (func.julianday(OutboxMessage.sent_at) - func.julianday(OutboxMessage.created_at)) * 86400.0


def _aggregate(bounds: tuple[float, ...], above: int, up_to: int | None) -> tuple[Histogram, int]:
    """Rows with `above` < id ≤ `up_to` (a primary key range), in one aggregate query: the latency histogram
    (sent_at − created_at) of the sent ones, and how many are not sent (OUTBOX_NOT_SENT)."""
    latency = _latency_seconds(db.session.get_bind().dialect.name)
    sent = and_(OutboxMessage.state == OutboxState.SENT, OutboxMessage.sent_at.is_not(None))
    stmt = select(
        func.sum(case((sent, 1), else_=0)),
        func.sum(case((sent, latency), else_=0.0)),
        func.sum(case((OutboxMessage.state.in_(OUTBOX_NOT_SENT), 1), else_=0)),
        *(func.sum(case((and_(sent, latency <= bound), 1), else_=0)) for bound in bounds),
    ).where(OutboxMessage.id > above)
    if up_to is not None:
        stmt = stmt.where(OutboxMessage.id <= up_to)
    count, total, not_sent, *buckets = db.session.execute(stmt).one()
    return Histogram(bounds, [int(b or 0) for b in buckets], int(count or 0), float(total or 0.0)), int(not_sent or 0)


class DeliveryLatency:
    """Cumulative histogram of sent_at − created_at over every sent outbox message, kept up to date cheaply.

    One aggregate over all sent rows costs O(rows) (about a second per million on PostgreSQL), too much for
    every scrape. A sent message never changes again, so the rows up to a watermark are aggregated once and
    cached (per app, i.e. per Gunicorn worker); each scrape reads only the rows above it, a primary key
    range. The watermark stays below the oldest undelivered message and `margin` ids below the newest,
    where rows may still change or commit late. Below it every row was sent, failed or blocked when cached;
    a failed or blocked one that an admin requeued and the bot then sent would change the sums, and shows
    as one fewer not-sent row below the watermark (total not-sent rows, an index count, minus those above
    it): the cache is then rebuilt. The retention job (services/retention.py) deletes old rows: a deleted
    not-sent row below the watermark also rebuilds the cache, so after a purge the figures cover the rows kept
    (a counter reset to Prometheus); deleted sent rows alone stay counted until the next rebuild or restart.
    """

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS, margin: int = 1000) -> None:
        self.bounds = bounds
        self.margin = margin
        self.watermark = 0
        self.cached = Histogram(bounds)
        self.cached_not_sent = 0  # rows at or below the watermark that were not sent when cached
        self.rebuilds = 0
        self._lock = threading.Lock()

    def read(self, not_sent_total: int) -> Histogram:
        """The histogram now; call inside the transaction that counted `not_sent_total` (rows in OUTBOX_NOT_SENT)."""
        with self._lock:
            newest = db.session.scalar(select(func.max(OutboxMessage.id))) or 0
            oldest_open = db.session.scalar(select(func.min(OutboxMessage.id)).where(OutboxMessage.state.in_(OUTBOX_UNDELIVERED)))
            target = newest - self.margin
            if oldest_open is not None:
                target = min(target, oldest_open - 1)
            if target > self.watermark:
                added, not_sent = _aggregate(self.bounds, self.watermark, target)
                self.cached, self.cached_not_sent = self.cached.add(added), self.cached_not_sent + not_sent
                self.watermark = target
            tail, tail_not_sent = _aggregate(self.bounds, self.watermark, None)
            if self.cached_not_sent != not_sent_total - tail_not_sent:
                # A row at or below the watermark changed state since it was cached: start over.
                self.rebuilds += 1
                self.watermark = max(target, 0)
                self.cached, self.cached_not_sent = _aggregate(self.bounds, 0, self.watermark)
                tail, _ = _aggregate(self.bounds, self.watermark, None)
            return self.cached.add(tail)


# --- everything /metrics shows, in one snapshot ---------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    outbox_states: dict[str, int]
    outbox_oldest_pending_age: float | None
    outbox_errors: dict[tuple[str, str], int]
    latency: Histogram
    webhook_states: dict[str, int]
    webhook_oldest_pending_age: float | None
    webhook_errors: dict[tuple[str, str], int]


def snapshot(latency: DeliveryLatency) -> Snapshot:
    """Read everything in one consistent transaction (REPEATABLE READ on PostgreSQL), then end it."""
    now = utcnow()
    db.session.rollback()  # a fresh transaction, so that the isolation level below applies to all of it
    with reading() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        # Index ranges only: "sent", by far the biggest state, is counted by the latency histogram.
        not_sent = {state: 0 for state in OUTBOX_NOT_SENT} | _counts(OutboxMessage, OUTBOX_NOT_SENT)
        histogram = latency.read(sum(not_sent.values()))
        webhook_states = {state: 0 for state in WEBHOOK_STATES} | _counts(WebhookEvent)
        return Snapshot(
            outbox_states=not_sent | {OutboxState.SENT: histogram.count},
            outbox_oldest_pending_age=age_seconds(_oldest(OutboxMessage, OUTBOX_UNDELIVERED), now),
            outbox_errors=_error_counts(OutboxMessage, (OutboxState.FAILED, *OUTBOX_UNDELIVERED)),
            latency=histogram,
            webhook_states=webhook_states,
            webhook_oldest_pending_age=age_seconds(_oldest(WebhookEvent, (WebhookState.PENDING,)), now),
            webhook_errors=_error_counts(WebhookEvent, (WebhookState.FAILED, WebhookState.PENDING)),
        )


# --- staff groups (issue 12) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffGroups:
    """Linked staff groups, and those where the staff bot cannot open customers' topics (and why)."""

    linked: int
    problems: list[staff_group.Problem]


def staff_groups() -> StaffGroups:
    """The staff groups' figures for /healthz."""
    with reading():
        return StaffGroups(staff_group.linked_count(), staff_group.problems())
