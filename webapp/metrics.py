"""GET /metrics: Prometheus text format, for the API token or METRICS_TOKEN.

Two sources, one page:
- HTTP requests of this web app (counter by endpoint, method and status; latency histogram), counted in
  each Gunicorn worker. With PROMETHEUS_MULTIPROC_DIR set (the systemd unit sets it) prometheus-client
  keeps them in files there and every worker's answer sums all workers; without it (tests, `flask run`)
  a plain in-process registry is used.
- What the bot process did, read from the shared database at scrape time (`services.monitoring`): outbox
  messages by state, backlog and its age, delivery latency, Telegram errors by code, webhook events by
  state and error, the bots' heartbeats. So one scrape of the web app tells the truth about both processes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from services import monitoring
from webapp.auth import OPERATOR_HINT, operator_token
from webapp.errors import error_response

bp = Blueprint("metrics", __name__)
log = logging.getLogger(__name__)

PREFIX = "customer_bot"
disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: multiprocess mode has none either, so both modes look alike
# Created once per process; in multiprocess mode the registry is irrelevant (values live in files).
_LOCAL = CollectorRegistry(auto_describe=True)
HTTP_REQUESTS = Counter(
    f"{PREFIX}_http_requests",
    "HTTP requests by endpoint (URL rule), method and status",
    ["endpoint", "method", "status"],
    registry=_LOCAL,
)
HTTP_LATENCY = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time to answer an HTTP request, by endpoint (URL rule) and method",
    ["endpoint", "method"],
    registry=_LOCAL,
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def init_app(app: Flask) -> None:
    """Count every request of `app` (by URL rule, so /orders/<horeca_id>/<order_id> is one endpoint)."""
    app.extensions["delivery_latency"] = monitoring.DeliveryLatency()
    app.before_request(_start_timer)
    app.after_request(_count_request)


def _start_timer() -> None:
    request.environ["customer_bot.started"] = time.perf_counter()


# Methods counted by name; anything else (a client can send any token as a method) is one "other" series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The labelled series per (endpoint, method, status): labels() validates and locks on every call, and this
# runs on every request.
_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def _count_request(response: Response) -> Response:
    environ = request.environ
    started = environ.pop("customer_bot.started", None)
    rule = request.url_rule
    method = environ["REQUEST_METHOD"]
    key = (rule.rule if rule is not None else "<unmatched>", method if method in _METHODS else "other", response.status_code)
    series = _series.get(key)
    if series is None:
        endpoint, method, status = key
        series = _series.setdefault(
            key, (HTTP_REQUESTS.labels(endpoint, method, str(status)), HTTP_LATENCY.labels(endpoint, method))
        )
    series[0].inc()
    if started is not None:
        series[1].observe(time.perf_counter() - started)
    return response


class _Local:
    """This process's HTTP metrics, when not in multiprocess mode."""

    def collect(self) -> Iterable[Metric]:
        return _LOCAL.collect()


class _Database:
    """Metrics read from the database at scrape time."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        config = self.app.config
        up = GaugeMetricFamily(f"{PREFIX}_database_up", "1 when the database answered this scrape's queries")
        try:
            # Read transactions: on SQLite a scrape never waits behind a writer.
            snap = monitoring.snapshot(self.app.extensions["delivery_latency"])
            bots = monitoring.bot_statuses(config["BOT_STALE_SECONDS"], monitoring.expected_bots(config))
        except Exception as exc:  # noqa: BLE001 - the HTTP metrics are still worth serving
            log.warning("metrics: database queries failed: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _outbox_families(snap)
        yield from _webhook_families(snap)
        yield from _bot_families(bots)


def _outbox_families(snap: monitoring.Snapshot) -> Iterator[Metric]:
    by_state = GaugeMetricFamily(
        f"{PREFIX}_outbox_messages", "Outbox messages (status updates and dialog messages) by delivery state", labels=["state"]
    )
    for state, count in sorted(snap.outbox_states.items()):
        by_state.add_metric([state], count)
    yield by_state
    yield CounterMetricFamily(
        f"{PREFIX}_outbox_queued", "Messages ever queued for the bot (rows in the outbox)", value=sum(snap.outbox_states.values())
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_outbox_backlog",
        "Messages not delivered yet (pending or being sent)",
        value=sum(snap.outbox_states.get(s, 0) for s in monitoring.OUTBOX_UNDELIVERED),
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_outbox_oldest_pending_age_seconds",
        "Age of the oldest undelivered message (0 when none)",
        value=snap.outbox_oldest_pending_age or 0.0,
    )
    errors = GaugeMetricFamily(
        f"{PREFIX}_outbox_errors",
        "Messages whose last Telegram attempt failed, by error code (403, 429, 5xx, an exception name), "
        "state failed (given up) or pending/sending (will retry)",
        labels=["state", "code"],
    )
    for (state, code), count in sorted(snap.outbox_errors.items()):
        errors.add_metric([state, code], count)
    yield errors
    latency = snap.latency
    cumulative = [(_le(bound), count) for bound, count in zip(latency.bounds, latency.buckets, strict=True)]
    yield HistogramMetricFamily(
        f"{PREFIX}_delivery_latency_seconds",
        "Time from queueing to Telegram accepting the message (sent_at - created_at), over every sent message",
        buckets=[*cumulative, ("+Inf", latency.count)],
        sum_value=latency.total,
    )


def _webhook_families(snap: monitoring.Snapshot) -> Iterator[Metric]:
    by_state = GaugeMetricFamily(
        f"{PREFIX}_webhook_events",
        "Backend webhook events by delivery state (pending includes those waiting to retry)",
        labels=["state"],
    )
    for state, count in sorted(snap.webhook_states.items()):
        by_state.add_metric([state], count)
    yield by_state
    yield GaugeMetricFamily(
        f"{PREFIX}_webhook_oldest_pending_age_seconds",
        "Age of the oldest undelivered webhook event (0 when none)",
        value=snap.webhook_oldest_pending_age or 0.0,
    )
    errors = GaugeMetricFamily(
        f"{PREFIX}_webhook_errors",
        "Webhook events whose last attempt failed, by HTTP status or exception name",
        labels=["state", "code"],
    )
    for (state, code), count in sorted(snap.webhook_errors.items()):
        errors.add_metric([state, code], count)
    yield errors


def _bot_families(bots: dict[str, monitoring.BotStatus]) -> Iterator[Metric]:
    up = GaugeMetricFamily(f"{PREFIX}_bot_up", "1 when the bot wrote a heartbeat within BOT_STALE_SECONDS", labels=["bot"])
    age = GaugeMetricFamily(f"{PREFIX}_bot_heartbeat_age_seconds", "Seconds since the bot's last heartbeat", labels=["bot"])
    for name, status in sorted(bots.items()):
        up.add_metric([name], 1 if status.ok else 0)
        if status.seconds_since is not None:
            age.add_metric([name], status.seconds_since)
    yield up
    yield age


def _le(bound: float) -> str:
    return str(float(bound))


def render(app: Flask) -> bytes:
    """The whole exposition: this app's (or every worker's) HTTP metrics, then the database's."""
    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Local())
    registry.register(_Database(app))
    return generate_latest(registry)


@bp.get("/metrics")
def metrics() -> Response | tuple[Response, int]:
    """Prometheus text format; `Authorization: Bearer <METRICS_TOKEN or API_TOKEN>`."""
    if not operator_token():
        return error_response(401, "unauthorized", OPERATOR_HINT)
    return Response(render(current_app._get_current_object()), content_type=CONTENT_TYPE_PLAIN_0_0_4)  # type: ignore[attr-defined]
