"""GET /metrics: Prometheus text that tells the truth about the web app and, from the database, the bot."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from models import OutboxMessage, db
from services import customers, monitoring, outbox_admin
from tests.conftest import API_TOKEN, ApiClient
from tests.support import databases
from tests.support.story import TELEBOT_400, TELEBOT_403, beat, deliver, fail_webhooks, link, push
from webapp import create_app

METRICS_TOKEN = "test-metrics-token"


def scrape(api, token: str = API_TOKEN) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    response = api.raw.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


# --- who may read it ------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dGVzdA==", "Bearer ", f"Token {API_TOKEN}"])
def test_metrics_need_a_token(api, header):
    response = api.raw.get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


def test_the_metrics_token_opens_metrics_and_nothing_else(database_url):
    app = create_app(databases.test_config(database_url, METRICS_TOKEN=METRICS_TOKEN))
    api = ApiClient(app.test_client())
    scrape(api, METRICS_TOKEN)
    scrape(api, API_TOKEN)  # the API token works too
    other = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert api.raw.get("/admin/outbox", headers=other).status_code == 401
    assert api.raw.get("/subscribe-status?user_id=1", headers=other).status_code == 401


def test_metrics_are_not_in_the_openapi_document(api):
    assert "/metrics" not in api.get("/openapi.json").get_json()["paths"]


# --- HTTP requests ---------------------------------------------------------------------------------------


def test_requests_are_counted_by_url_rule_and_status(api):
    rule = "/orders/<horeca_id>/<order_id>"
    before = scrape(api)
    api.get("/orders/cafe-1/A-1")
    api.get("/orders/cafe-2/B-7")
    api.raw.get("/orders/cafe-2/B-7")  # no token
    api.raw.get("/no/such/path")
    after = scrape(api)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("customer_bot_http_requests_total", endpoint=rule, method="GET", status="404") == 2
    assert delta("customer_bot_http_requests_total", endpoint=rule, method="GET", status="401") == 1
    assert delta("customer_bot_http_requests_total", endpoint="<unmatched>", method="GET", status="404") == 1
    assert delta("customer_bot_http_request_duration_seconds_count", endpoint=rule, method="GET") == 3
    assert delta("customer_bot_http_request_duration_seconds_bucket", endpoint=rule, method="GET", le="+Inf") == 3
    assert not any("cafe-2" in str(labels) for _, labels in after), "raw paths must not become labels"


def test_unknown_methods_are_one_series(api):
    """A client can send any token as the method: those must not each become a series of their own."""
    before = scrape(api)
    for method in ("BREW", "WHEN", "PROPFIND"):
        assert api.raw.open("/healthz", method=method).status_code == 405
    after = scrape(api)
    key = ("customer_bot_http_requests_total", (("endpoint", "<unmatched>"), ("method", "other"), ("status", "405")))
    assert after.get(key, 0) - before.get(key, 0) == 3
    assert not any(m in str(labels) for _, labels in after for m in ("BREW", "WHEN", "PROPFIND"))


# --- what the bot did, from the database ---------------------------------------------------------------------------


def test_outbox_figures_match_what_was_pushed_and_delivered(app, api):
    link(api, 1001)
    link(api, 1002)
    ids = [push(api, status, order_id="A-1") for status in ("created", "accepted", "preparing", "ready")]
    other = push(api, "created", user_id=1002, order_id="B-1")
    deliver(app, ids[0], "sent", latency=0.3)
    deliver(app, ids[1], "sent", latency=1.5)
    deliver(app, ids[2], "sent", latency=45.0)
    deliver(app, other, "failed", error=TELEBOT_400)
    with app.app_context():
        customers.mark_blocked(1002, True)
    push(api, "accepted", user_id=1002, order_id="B-1")  # recorded blocked
    retrying = push(api, "completed", order_id="A-1")
    deliver(app, retrying, "pending", error="HTTP 502 Bad Gateway", age=30)

    samples = scrape(api)
    states = {s: value(samples, "customer_bot_outbox_messages", state=s) for s in monitoring.OUTBOX_STATES}
    assert states == {"pending": 2, "sending": 0, "sent": 3, "failed": 1, "blocked": 1, "superseded": 0}  # ids[3] is pending too
    assert value(samples, "customer_bot_outbox_queued_total") == 7
    assert value(samples, "customer_bot_outbox_backlog") == 2
    assert 30 <= value(samples, "customer_bot_outbox_oldest_pending_age_seconds") < 40
    assert value(samples, "customer_bot_outbox_errors", state="failed", code="400") == 1
    assert value(samples, "customer_bot_outbox_errors", state="pending", code="502") == 1

    def bucket(le):
        return value(samples, "customer_bot_delivery_latency_seconds_bucket", le=le)

    assert (bucket("0.5"), bucket("1.0"), bucket("2.0"), bucket("30.0"), bucket("60.0"), bucket("+Inf")) == (1, 1, 2, 2, 3, 3)
    assert value(samples, "customer_bot_delivery_latency_seconds_count") == 3
    assert value(samples, "customer_bot_delivery_latency_seconds_sum") == pytest.approx(46.8, abs=0.01)
    assert value(samples, "customer_bot_database_up") == 1


def test_telegram_errors_by_code(app, api):
    link(api, 1001)
    for n, error in enumerate((TELEBOT_403, TELEBOT_403, TELEBOT_400, "ReadTimeout: HTTPSConnectionPool read timed out", "???")):
        deliver(app, push(api, "created", order_id=f"E-{n}"), "failed", error=error)
    samples = scrape(api)
    codes = {dict(labels)["code"]: v for (name, labels), v in samples.items() if name == "customer_bot_outbox_errors"}
    assert codes == {"403": 2, "400": 1, "ReadTimeout": 1, "other": 1}


def test_webhook_figures(database_url):
    app = create_app(databases.test_config(database_url, BACKEND_WEBHOOK_URL="http://127.0.0.1:9/hook"))
    databases.clean(app)
    api = ApiClient(app.test_client())
    link(api, 1001)
    link(api, 1002)
    samples = scrape(api)
    assert value(samples, "customer_bot_webhook_events", state="pending") == 2
    assert value(samples, "customer_bot_webhook_events", state="failed") == 0

    fail_webhooks(app, "HTTP 503 Service Unavailable: down for maintenance")
    samples = scrape(api)
    assert value(samples, "customer_bot_webhook_events", state="failed") == 2
    assert value(samples, "customer_bot_webhook_errors", state="failed", code="503") == 2
    assert value(samples, "customer_bot_webhook_oldest_pending_age_seconds") == 0


@pytest.mark.parametrize(
    "text,code",
    [
        (TELEBOT_403, "403"),
        ("400 Bad Request: chat not found", "400"),
        ("429 Too Many Requests: retry after 5", "429"),
        ("gave up after 5 attempts in 300 s: 502 Bad Gateway", "502"),
        ("HTTP 502 without a Bot API answer (ApiHTTPException)", "502"),
        ("HTTP 500 Internal Server Error: oops", "500"),
        ("ConnectionError: HTTPSConnectionPool(host='api.telegram.org', port=443): Max retries exceeded", "ConnectionError"),
        ("gave up after 3 attempts in 301 s: ReadTimeout: read timed out", "ReadTimeout"),
        ("requeued by an admin at 2026-11-27T03:00:00Z; last error: 400 Bad Request", "requeued"),
        ("something odd", "other"),
        (None, "none"),
    ],
)
def test_error_codes_are_read_from_the_stored_reason(text, code):
    assert monitoring.error_code(text) == code


def test_bot_heartbeat_figures(app, api):
    samples = scrape(api)
    assert value(samples, "customer_bot_bot_up", bot="customer") == 0
    assert not any(name == "customer_bot_bot_heartbeat_age_seconds" for name, _ in samples)
    beat(app, seconds_ago=5)
    samples = scrape(api)
    assert value(samples, "customer_bot_bot_up", bot="customer") == 1
    assert 5 <= value(samples, "customer_bot_bot_heartbeat_age_seconds", bot="customer") < 15


def test_http_metrics_survive_an_unreachable_database(tmp_path):
    app = create_app(databases.test_config(f"sqlite:///{tmp_path}/missing/dir/app.db"))
    samples = scrape(ApiClient(app.test_client()))
    assert value(samples, "customer_bot_database_up") == 0
    assert not any(name.startswith("customer_bot_outbox") for name, _ in samples)


# --- the delivery latency histogram's cache ----------------------------------------------------------------------------


def test_latency_cache_counts_each_sent_message_once_and_notices_a_retried_one(app, api):
    """With margin 0 the cache takes every final row at once; later scrapes only read the rows above it."""
    link(api)
    latency = monitoring.DeliveryLatency(margin=0)
    ids = [push(api, "created", order_id=f"L-{n}") for n in range(4)]
    for pk in ids[:3]:
        deliver(app, pk, "sent", latency=1.5)
    deliver(app, ids[3], "failed", error=TELEBOT_400)

    def read():
        with app.app_context():
            not_sent = db.session.scalar(select(func.count()).where(OutboxMessage.state.in_(monitoring.OUTBOX_NOT_SENT)))
            try:
                return latency.read(not_sent)
            finally:
                db.session.rollback()

    first = read()
    assert (first.count, latency.watermark, latency.rebuilds) == (3, ids[3], 0)
    assert first.buckets[latency.bounds.index(2.0)] == 3 and first.total == pytest.approx(4.5, abs=0.01)

    newer = push(api, "created", order_id="L-new")
    deliver(app, newer, "sent", latency=0.2)
    second = read()
    assert (second.count, latency.rebuilds, latency.watermark) == (4, 0, newer)  # added to the cache

    # An admin retries the old failed message and the bot sends it before the next scrape.
    with app.app_context():
        outbox_admin.retry_outbox([ids[3]])
    deliver(app, ids[3], "sent", latency=600.0)
    third = read()
    assert (third.count, latency.rebuilds) == (5, 1)  # one fewer unsent row below the watermark: rebuilt
    assert third.total == pytest.approx(4.5 + 0.2 + 600.0, abs=0.01)
