"""Webhook events reach a real HTTP receiver, signed per Standard Webhooks, retried, on every configured database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bot.workers import webhooks
from config import Config, ConfigError
from models import Order, WebhookEvent, db, utcnow
from services import customers, events, linking, orders
from tests.conftest import ApiClient
from tests.support import databases
from webapp import create_app

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


# --- a backend that receives webhooks ---------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def verify(self, secret: str = SECRET) -> dict:
        """What a backend does: check the signature over the raw body, then parse it."""
        return Webhook(secret).verify(self.body, self.headers)


class Receiver:
    """A webhook endpoint on 127.0.0.1: records every request, answers `status` (or the next of `statuses`)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.statuses: list[int] = []
        self.status = 200
        self.delay = 0.0
        self.on_request = None  # called inside the request, before answering
        self.answer = None  # (status, reason, headers, body) of a request handler, instead of the plain answer
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append(Received(dict(self.headers.items()), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.status
                if receiver.on_request:
                    receiver.on_request()
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.answer:
                    status, reason, headers, answer = receiver.answer(self)
                    self.send_response(status, reason)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"backend says no")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/telegram"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def verified(self) -> list[dict]:
        return [r.verify() for r in self.received]


def closed_port() -> int:
    """A port nothing listens on (a receiver that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def make_app(database_url: str, **overrides):
    app = create_app(databases.test_config(database_url, **overrides))
    databases.clean(app)
    return app


@pytest.fixture
def hook_app(database_url, receiver):
    """The app with webhooks on, pointing at the receiver."""
    app = make_app(database_url, BACKEND_WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=SECRET)
    yield app
    with app.app_context():
        db.engine.dispose()


# --- helpers ------------------------------------------------------------------------------------------


def stored(app) -> list[WebhookEvent]:
    """Every event row, oldest first (detached copies to read after the context ends)."""
    with app.app_context():
        rows = db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
        db.session.expunge_all()
        return list(rows)


def edit_events(app, **values) -> None:
    """Change every event row, as time passing (or another process) would."""
    with app.app_context():
        db.session.execute(update(WebhookEvent).values(**values))
        db.session.commit()


def link(app, user_id: int = 1001) -> str:
    with app.app_context():
        code = linking.issue().code
        linking.claim(code, user_id, chat_id=user_id)
    return code


def queue_event(app, data: dict | None = None) -> None:
    with app.app_context():
        events.emit("user.blocked", data or {"telegram_user_id": 1})
        db.session.commit()


def seconds_until_next_attempt(app) -> float:
    (event,) = stored(app)
    return (event.next_attempt_at - utcnow()).total_seconds()


# --- the events --------------------------------------------------------------------------------------


def test_a_code_claimed_through_the_api_sends_a_signed_user_linked_event(hook_app, receiver):
    api = ApiClient(hook_app.test_client())
    code = api.post("/verification-codes", json={}).get_json()["code"]
    assert api.post("/enter_key_from_user/", json={"telegram_user_id": 1001, "verification_code": code}).status_code == 200
    (event,) = stored(hook_app)
    assert (event.type, event.state, event.attempts) == ("user.linked", "pending", 0)

    assert webhooks.deliver_due(hook_app) == 1

    (request,) = receiver.received
    payload = request.verify()
    assert payload["type"] == "user.linked"
    assert payload["data"] == {"telegram_user_id": 1001, "verification_code": code}
    assert payload["timestamp"].endswith("Z")
    assert request.body == event.body.encode()  # sent exactly as stored
    assert request.id == event.event_id and request.id.startswith("msg_")
    assert request.headers["Content-Type"] == "application/json"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 10
    assert request.headers["webhook-signature"].startswith("v1,")

    (event,) = stored(hook_app)
    assert (event.state, event.attempts, event.last_error, event.claimed_at) == ("sent", 1, None, None)
    assert event.delivered_at is not None
    assert webhooks.deliver_due(hook_app) == 0 and len(receiver.received) == 1  # sent once


def test_claiming_the_same_code_again_sends_nothing_new(hook_app, receiver):
    api = ApiClient(hook_app.test_client())
    code = link(hook_app)
    assert api.post("/enter_key_from_user/", json={"telegram_user_id": 1001, "verification_code": code}).status_code == 200
    assert [e.type for e in stored(hook_app)] == ["user.linked"]


def test_a_cancel_request_is_sent(hook_app, receiver):
    link(hook_app, 1001)
    with hook_app.app_context():
        orders.record_status(1001, "cafe-1", "A-1", "preparing")
        order_pk = db.session.scalar(select(Order.id))
        assert orders.request_cancel(1001, order_pk).outcome == "requested"
        assert orders.request_cancel(1001, order_pk).outcome == "already_requested"

    assert webhooks.deliver_due(hook_app) == 2
    linked, cancel = receiver.verified()
    assert linked["type"] == "user.linked"
    assert cancel["type"] == "order.cancel_requested"
    assert cancel["data"] == {"order_id": "A-1", "horeca_id": "cafe-1", "user_id": 1001}


def test_blocking_and_unblocking_are_sent_once_each(hook_app, receiver):
    code = link(hook_app, 1001)
    with hook_app.app_context():
        assert customers.mark_blocked(1001, True) is True
        assert customers.mark_blocked(1001, True) is False  # no change, no event
        assert customers.mark_blocked(1001, False) is True
        assert customers.mark_blocked(4242, True) is False  # unknown user

    assert webhooks.deliver_due(hook_app) == 3
    assert [(p["type"], p["data"]) for p in receiver.verified()] == [
        ("user.linked", {"telegram_user_id": 1001, "verification_code": code}),
        ("user.blocked", {"telegram_user_id": 1001}),
        ("user.unblocked", {"telegram_user_id": 1001}),
    ]
    assert {r.id for r in receiver.received} == {e.event_id for e in stored(hook_app)}
    assert all(e.state == "sent" for e in stored(hook_app))


def test_no_events_without_a_webhook_url(database_url, receiver):
    app = make_app(database_url, BACKEND_WEBHOOK_URL="", WEBHOOK_SECRET="")
    try:
        api = ApiClient(app.test_client())
        code = api.post("/verification-codes", json={}).get_json()["code"]
        assert api.post("/enter_key_from_user/", json={"telegram_user_id": 1001, "verification_code": code}).status_code == 200
        with app.app_context():
            orders.record_status(1001, "cafe-1", "A-1", "created")
            assert orders.request_cancel(1001, db.session.scalar(select(Order.id))).outcome == "requested"
            assert customers.mark_blocked(1001, True) is True
        assert stored(app) == []
        assert webhooks.deliver_due(app) == 0
        assert receiver.received == []
    finally:
        with app.app_context():
            db.engine.dispose()


# --- failures and retries ---------------------------------------------------------------------------


def test_a_failing_receiver_is_retried_with_the_same_id_and_growing_backoff(hook_app, receiver):
    queue_event(hook_app)
    receiver.status = 500
    delays = []
    for attempt in range(1, 4):
        assert webhooks.deliver_due(hook_app) == 1
        (event,) = stored(hook_app)
        assert (event.state, event.attempts) == ("pending", attempt)
        assert event.last_error == "HTTP 500 Internal Server Error (15 bytes of text/plain, not kept)"
        delays.append(seconds_until_next_attempt(hook_app))
        assert webhooks.deliver_due(hook_app) == 0  # not due yet: nothing is sent
        edit_events(hook_app, next_attempt_at=utcnow() - timedelta(seconds=1))  # time passes
    assert 4 <= delays[0] <= 6.1 and 8 <= delays[1] <= 12.1 and 16 <= delays[2] <= 24.1, delays

    receiver.status = 200
    assert webhooks.deliver_due(hook_app) == 1
    assert len(receiver.received) == 4
    assert len({r.id for r in receiver.received}) == 1  # one webhook-id across every retry
    assert all(r.body == receiver.received[0].body for r in receiver.received)
    receiver.verified()  # each attempt is signed for its own timestamp
    (event,) = stored(hook_app)
    assert (event.state, event.attempts, event.last_error) == ("sent", 4, None)


def test_the_backoff_is_capped_at_an_hour():
    assert all(0.8 * 3600 <= webhooks.RETRY.backoff(n) <= 1.2 * 3600 for n in (11, 12, 30, 1000))
    assert 4 <= webhooks.RETRY.backoff(1) <= 6


@pytest.mark.parametrize("status", [500, 503, 404, 429, 302])
def test_any_answer_but_2xx_is_retried(hook_app, receiver, status):
    queue_event(hook_app)
    receiver.status = status
    assert webhooks.deliver_due(hook_app) == 1
    (event,) = stored(hook_app)
    assert (event.state, event.attempts) == ("pending", 1)
    assert event.last_error.startswith(f"HTTP {status}")
    assert len(receiver.received) == 1  # a redirect is not followed


def test_gone_is_final(hook_app, receiver):
    queue_event(hook_app)
    receiver.status = 410
    assert webhooks.deliver_due(hook_app) == 1
    (event,) = stored(hook_app)
    assert event.state == "failed" and event.last_error.startswith("HTTP 410")


def test_retries_go_on_for_24_hours_then_the_event_fails(hook_app, receiver):
    queue_event(hook_app)
    receiver.status = 503
    edit_events(hook_app, created_at=utcnow() - timedelta(hours=23, minutes=58))
    assert webhooks.deliver_due(hook_app) == 1
    assert stored(hook_app)[0].state == "pending"

    edit_events(hook_app, created_at=utcnow() - timedelta(hours=24, seconds=1), next_attempt_at=utcnow())
    assert webhooks.deliver_due(hook_app) == 1
    (event,) = stored(hook_app)
    assert (event.state, event.attempts) == ("failed", 2)
    assert event.last_error.startswith("HTTP 503")

    edit_events(hook_app, next_attempt_at=utcnow() - timedelta(hours=1))
    assert webhooks.deliver_due(hook_app) == 0  # failed is final
    assert len(receiver.received) == 2


def test_a_receiver_that_is_down_is_retried_and_no_credentials_are_recorded(database_url, receiver, caplog):
    port = closed_port()
    url = f"http://hookuser:s3cr3t-pass@127.0.0.1:{port}/hooks?token=tok-123"
    app = make_app(database_url, BACKEND_WEBHOOK_URL=url, WEBHOOK_SECRET=SECRET)
    try:
        queue_event(app)
        with caplog.at_level(logging.WARNING, logger="bot.workers.webhooks"):
            assert webhooks.deliver_due(app) == 1
        (event,) = stored(app)
        assert (event.state, event.attempts) == ("pending", 1)
        assert "ConnectionError" in event.last_error
        assert f"http://***@127.0.0.1:{port}/hooks?***" in event.last_error
        for text in (event.last_error, caplog.text):
            for secret in ("hookuser", "s3cr3t-pass", "tok-123", SECRET, SECRET.removeprefix("whsec_")):
                assert secret not in text

        # The receiver comes back at that address: the retry goes through, same id.
        edit_events(app, next_attempt_at=utcnow())
        app.config["BACKEND_WEBHOOK_URL"] = receiver.url
        assert webhooks.deliver_due(app) == 1
        (request,) = receiver.received
        assert request.id == event.event_id
        request.verify()
        assert stored(app)[0].state == "sent"
    finally:
        with app.app_context():
            db.engine.dispose()


def test_a_receiver_quoting_the_request_in_its_answer_leaves_no_credential_anywhere(database_url, receiver, caplog):
    """A receiver's error page may quote what it got: the Authorization header, the query string, the signature."""
    user, password, token = "hookuser", "s3cr3t-pass-9Zq", "tok-8c1d2e"
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    url = receiver.url.replace("http://", f"http://{user}:{password}@") + f"?token={token}"

    def echo(request) -> tuple[int, str, dict[str, str], bytes]:
        quoted = f"{request.requestline} {dict(request.headers.items())}"
        assert basic in quoted and token in quoted  # what there is to leak
        return 500, f"Oops {quoted}", {"Content-Type": f"text/html; x={token}", "WWW-Authenticate": quoted}, quoted.encode()

    receiver.answer = echo
    app = make_app(database_url, BACKEND_WEBHOOK_URL=url, WEBHOOK_SECRET=SECRET)
    try:
        queue_event(app)
        with caplog.at_level(logging.DEBUG):  # urllib3 logs each request line, query included, at DEBUG
            assert webhooks.deliver_due(app) == 1
        (event,) = stored(app)
        assert re.fullmatch(r"HTTP 500 Internal Server Error \(\d+ bytes of text/html, not kept\)", event.last_error)
        assert "?token=" not in caplog.text  # not even the query string, masked or not
        for text in (event.last_error, caplog.text):
            for secret in (user, password, token, basic, SECRET, SECRET.removeprefix("whsec_")):
                assert secret not in text
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.mark.parametrize(
    "status,headers,body,recorded",
    [
        (
            503,
            {"Content-Type": "application/json"},
            b'{"error":"x"}',
            "HTTP 503 Service Unavailable (13 bytes of application/json, not kept)",
        ),
        (599, {}, b"", "HTTP 599 (empty body)"),
        (401, {"Content-Type": "Basic realm=aHVudGVyMg=="}, b"no", "HTTP 401 Unauthorized (2 bytes of unknown type, not kept)"),
    ],
)
def test_a_failed_answer_is_recorded_by_status_length_and_media_type(status, headers, body, recorded):
    assert webhooks.describe_answer(status, headers, body) == recorded


def test_the_url_is_masked():
    assert webhooks.mask_url("https://u:p@example.com:8443/h?token=1") == "https://***@example.com:8443/h?***"
    assert webhooks.mask_url("https://example.com/h") == "https://example.com/h"


# --- signatures --------------------------------------------------------------------------------------


def test_a_tampered_body_or_another_secret_fails_verification(hook_app, receiver):
    link(hook_app, 1001)
    webhooks.deliver_due(hook_app)
    (request,) = receiver.received
    assert request.verify()["data"]["telegram_user_id"] == 1001

    tampered = request.body.replace(b"1001", b"1002")
    assert tampered != request.body
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(request.body, {**request.headers, "webhook-id": "msg_other"})
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        request.verify(other)


def test_the_signature_is_what_the_docs_describe(hook_app, receiver):
    """HMAC-SHA256 over "id.timestamp.body" keyed with the base64-decoded part after whsec_."""
    queue_event(hook_app)
    webhooks.deliver_due(hook_app)
    (request,) = receiver.received
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{request.id}.{request.headers['webhook-timestamp']}.".encode() + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    version, signature = request.headers["webhook-signature"].split(",", 1)
    assert version == "v1" and hmac.compare_digest(signature, expected)
    assert json.loads(request.body)["type"] == "user.blocked"


# --- claims ------------------------------------------------------------------------------------------


def test_a_fresh_claim_is_left_alone_and_a_stale_one_is_taken_over(hook_app, receiver):
    queue_event(hook_app)
    edit_events(hook_app, claimed_at=utcnow() - timedelta(seconds=30))  # another process is sending it
    assert webhooks.deliver_due(hook_app) == 0
    edit_events(hook_app, claimed_at=utcnow() - timedelta(seconds=61))  # that process died
    assert webhooks.deliver_due(hook_app) == 1
    assert stored(hook_app)[0].state == "sent"


def test_an_outcome_is_not_recorded_over_a_claim_taken_over_meanwhile(hook_app, receiver):
    queue_event(hook_app)
    takeover = utcnow() + timedelta(seconds=1)

    def another_process_takes_over():
        edit_events(hook_app, claimed_at=takeover)

    receiver.on_request = another_process_takes_over
    receiver.status = 500
    assert webhooks.deliver_due(hook_app) == 1
    (event,) = stored(hook_app)
    assert (event.state, event.attempts, event.claimed_at, event.last_error) == ("pending", 0, takeover, None)


def test_a_tick_out_of_time_gives_back_what_it_did_not_send(hook_app, receiver, monkeypatch):
    for n in range(3):
        queue_event(hook_app, {"telegram_user_id": n})
    monkeypatch.setattr(webhooks, "TICK_BUDGET", 0.05)
    receiver.delay = 0.2
    assert webhooks.deliver_due(hook_app) == 1
    first, *rest = stored(hook_app)
    assert first.state == "sent"
    assert [(e.state, e.attempts, e.claimed_at) for e in rest] == [("pending", 0, None)] * 2
    monkeypatch.setattr(webhooks, "TICK_BUDGET", 30.0)
    receiver.delay = 0
    assert webhooks.deliver_due(hook_app) == 2  # at once, without waiting for the claims to go stale


def test_a_tick_told_to_stop_sends_nothing_more_and_gives_the_rest_back(hook_app, receiver):
    import threading

    for n in range(3):
        queue_event(hook_app, {"telegram_user_id": n})
    stop = threading.Event()
    stop.set()  # the bot process got SIGTERM
    assert webhooks.deliver_due(hook_app, stop=stop) == 0
    assert [(e.state, e.attempts, e.claimed_at) for e in stored(hook_app)] == [("pending", 0, None)] * 3
    assert webhooks.deliver_due(hook_app) == 3  # the next process sends them at once


def test_the_scheduler_job_logs_a_failing_tick_goes_on_and_stops_when_told(hook_app, receiver, caplog):
    queue_event(hook_app)
    stop = threading.Event()
    tick = webhooks.webhook_job(hook_app, stop)
    hook_app.config["WEBHOOK_SECRET"] = "not-a-whsec-secret"  # this tick fails before claiming anything
    with caplog.at_level(logging.ERROR):
        assert tick() == 0
    assert "webhook delivery failed; the next run tries again" in caplog.text
    assert "not-a-whsec-secret" not in caplog.text
    assert [(e.state, e.claimed_at) for e in stored(hook_app)] == [("pending", None)]

    hook_app.config["WEBHOOK_SECRET"] = SECRET
    assert tick() == 1 and len(receiver.received) == 1
    queue_event(hook_app, {"telegram_user_id": 2})
    stop.set()  # the bot process got SIGTERM: the job starts no tick
    assert tick() == 0 and len(receiver.received) == 1


def test_concurrent_ticks_never_send_the_same_event_twice(hook_app, receiver):
    total = 40
    with hook_app.app_context():
        for n in range(total):
            events.emit("user.blocked", {"telegram_user_id": n})
        db.session.commit()
    receiver.delay = 0.01
    start = threading.Barrier(4)
    attempted = [0] * 4
    errors = []

    def worker(i: int) -> None:
        try:
            start.wait()
            while n := webhooks.deliver_due(hook_app, limit=3):  # each call pushes its own app context
                attempted[i] += n
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sum(attempted) == total
    assert sum(1 for n in attempted if n) >= 2, attempted  # the ticks really did overlap
    ids = [r.id for r in receiver.received]
    assert len(ids) == total and len(set(ids)) == total
    assert all((e.state, e.attempts) == ("sent", 1) for e in stored(hook_app))


# --- configuration -----------------------------------------------------------------------------------


def test_deliver_due_does_nothing_when_disabled(database_url):
    app = make_app(database_url)
    try:
        assert webhooks.deliver_due(app) == 0
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.mark.parametrize("url", ["", None])
def test_no_url_needs_no_secret(url):
    webhooks.check_config({"BACKEND_WEBHOOK_URL": url, "WEBHOOK_SECRET": ""})


def test_a_good_secret_passes_in_any_config_form():
    webhooks.check_config({"BACKEND_WEBHOOK_URL": "https://backend.example/hooks", "WEBHOOK_SECRET": SECRET})
    webhooks.check_config(Config(BACKEND_WEBHOOK_URL="https://backend.example/hooks", WEBHOOK_SECRET=SECRET))
    unpadded = "whsec_" + base64.b64encode(b"k" * 32).decode().rstrip("=")
    webhooks.check_config({"BACKEND_WEBHOOK_URL": "https://backend.example/hooks", "WEBHOOK_SECRET": unpadded})


@pytest.mark.parametrize(
    "secret,says",
    [
        ("", "WEBHOOK_SECRET is not"),
        ("   ", "WEBHOOK_SECRET is not"),
        ("hunter2-plain-password", "start with whsec_"),
        ("whsec_", "nothing after whsec_"),
        ("whsec_!!not*base64??", "not valid base64"),
        ("whsec_" + base64.b64encode(b"short-key").decode(), "too short"),
    ],
)
def test_a_missing_or_malformed_secret_stops_the_start_without_showing_it(secret, says):
    with pytest.raises(ConfigError) as caught:
        webhooks.check_config(Config(BACKEND_WEBHOOK_URL="https://backend.example/hooks", WEBHOOK_SECRET=secret))
    message = str(caught.value)
    assert says in message
    assert "\n" not in message
    if secret.strip().removeprefix("whsec_"):
        assert secret.strip().removeprefix("whsec_") not in message


@pytest.mark.parametrize("url", ["backend.example/hooks", "ftp://backend.example/x", "https://"])
def test_a_url_that_is_not_http_stops_the_start(url):
    with pytest.raises(ConfigError, match="BACKEND_WEBHOOK_URL"):
        webhooks.check_config({"BACKEND_WEBHOOK_URL": url, "WEBHOOK_SECRET": SECRET})


def test_a_bad_url_is_reported_without_its_credentials():
    with pytest.raises(ConfigError) as caught:
        webhooks.check_config({"BACKEND_WEBHOOK_URL": "ftp://user:pa55word@backend.example/x", "WEBHOOK_SECRET": SECRET})
    assert "pa55word" not in str(caught.value)
