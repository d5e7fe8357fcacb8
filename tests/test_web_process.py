"""The web app as deployed: Gunicorn with its config, two workers, metrics in multiprocess mode.

A story of good and bad requests, then the captured output is searched for every secret: no bot token,
API token, metrics token or webhook secret may appear in a log line (or in any answer), and the access
log has exactly one line per request.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support import databases
from webapp import create_app

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {
    "API_TOKEN": "api-TOKEN-4f1c9e-do-not-log",
    "METRICS_TOKEN": "metrics-TOKEN-8d2b7a-do-not-log",
    # Token-shaped on purpose, built here so no token-shaped string sits in the repository.
    "TELEGRAM_BOT_TOKEN": "7000000123:" + "TELEGRAM-token-0a9b8c7d6e5f-do-not-log",
    "HORECA_BOT_TOKEN": "7000000456:" + "HORECA-token-1b2c3d4e5f6a-do-not-log",
    "WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"WEBHOOK-secret-marker-0123456789").decode(),
}
# What must never show up: every secret, and the webhook key without its prefix.
NEEDLES = [*SECRETS.values(), SECRETS["WEBHOOK_SECRET"].removeprefix("whsec_")]
ACCESS_LINE = re.compile(r'^\S+ "(?P<method>[A-Z]+) (?P<path>\S+)" (?P<status>\d{3}) \d+B \d+ms pid=<?(?P<pid>\d+)>?$')
ERROR_LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[[A-Z]+\] ")
APP_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \[\d+\] \S+: ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Web:
    """`gunicorn -c gunicorn.conf.py wsgi:app` in the repository, its output captured to files."""

    def __init__(self, tmp: Path, database_url: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.out_path, self.err_path = tmp / "stdout.log", tmp / "stderr.log"
        self.runtime = tmp / "run"
        self.runtime.mkdir()
        self.home = tmp / "home"
        env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")}
        env.update(SECRETS)
        env.update(
            DATABASE_URL=database_url,
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            GUNICORN_WORKERS="2",
            # As customer-bot-web.service sets them: RuntimeDirectory= holds the metrics and the control socket.
            RUNTIME_DIRECTORY=str(self.runtime),
            PROMETHEUS_MULTIPROC_DIR=str(self.runtime),
            HOME=str(self.home),  # must stay untouched (ProtectHome=)
            BACKEND_WEBHOOK_URL="http://127.0.0.1:9/hooks",
            BOT_USERNAME="TestCafeBot",
            LOG_LEVEL="DEBUG",
            PYTHONUNBUFFERED="1",
        )
        env.pop("DEV_MODE", None)
        self.sent: list[tuple[str, str]] = []
        self.statuses: list[str] = []
        self.answers: list[str] = []
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=err,
            )
        self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"gunicorn exited: {self.output()}"
            try:
                # Once connected, wait for the answer: a probe given up on would still be served and logged.
                if requests.get(self.base + "/healthz", timeout=(1, 30)).status_code == 200:
                    self.sent.append(("GET", "/healthz"))
                    self.statuses.append("200")
                    return
            except requests.ConnectionError:  # not listening yet
                time.sleep(0.1)
        raise AssertionError(f"gunicorn did not answer within {timeout} s: {self.output()}")

    def call(self, method: str, path: str, *, token: str | None = SECRETS["API_TOKEN"], **kw) -> requests.Response:
        """One request on a fresh connection (so both workers get some); remembered for the access log check."""
        headers = kw.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        headers["Connection"] = "close"
        response = requests.request(method, self.base + path, headers=headers, timeout=10, **kw)
        self.sent.append((method, path.split("?", 1)[0]))
        self.statuses.append(str(response.status_code))
        self.answers.append(response.text)
        return response

    def stop(self) -> int:
        """SIGTERM, Gunicorn's graceful stop, as systemd sends it."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def output(self) -> str:
        return self.out_path.read_text(errors="replace") + self.err_path.read_text(errors="replace")


@pytest.fixture
def web(tmp_path, database_url):
    databases.clean(create_app(databases.test_config(database_url)))
    server = Web(tmp_path, database_url)
    yield server
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait()


def test_secrets_never_reach_the_logs_and_each_request_is_one_line(web):
    tg_token = SECRETS["TELEGRAM_BOT_TOKEN"]
    api_token = SECRETS["API_TOKEN"]

    # Good requests: a customer is linked and gets two statuses.
    code = web.call("POST", "/verification-codes", json={}).json()["code"]
    claim = {"telegram_user_id": 1001, "verification_code": code}
    assert web.call("POST", "/enter_key_from_user/", json=claim).status_code == 200
    for status in ("created", "accepted"):
        assert (
            web.call(
                "POST",
                "/provide_message_to_user/",
                json={"user_id": 1001, "order_id": "A-1", "horeca_id": "cafe-1", "status": status},
            ).status_code
            == 202
        )
    assert web.call("GET", "/orders/cafe-1/A-1").status_code == 200
    assert web.call("GET", "/subscribe-status?user_id=1001").json()["known"] is True

    # Bad tokens, including the other secrets sent where the API token belongs.
    for token in ("wrong", tg_token, SECRETS["WEBHOOK_SECRET"], SECRETS["METRICS_TOKEN"], "", api_token + "x"):
        assert web.call("GET", "/subscribe-status?user_id=1001", token=token).status_code == 401
    assert web.call("GET", "/subscribe-status?user_id=1001", token=None).status_code == 401
    assert web.call("GET", "/admin/outbox", token=tg_token).status_code == 401
    # A secret in the query string (some clients do that): the access log leaves query strings out.
    assert web.call("GET", f"/subscribe-status?user_id=1001&token={api_token}&bot={tg_token}").status_code == 200

    # Bad bodies, some of them carrying secrets as values.
    assert web.call("POST", "/verification/", json={"code": tg_token}).status_code == 404
    assert web.call("POST", "/verification-codes", json={"code": tg_token}).status_code == 400
    bad_claim = {"telegram_user_id": tg_token, "verification_code": api_token}
    assert web.call("POST", "/enter_key_from_user/", json=bad_claim).status_code == 400
    assert (
        web.call(
            "POST", "/provide_message_to_user/", data=f"not json {api_token}", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert (
        web.call(
            "POST",
            "/provide_message_to_user/",
            json={"user_id": 1001, "order_id": "A-1", "horeca_id": "cafe-1", "status": "teleported", "text": tg_token},
        ).status_code
        == 400
    )
    oversize = "x" * 70_000  # MAX_BODY_BYTES is 64 KiB
    assert web.call("POST", "/verification-codes", data=oversize, headers={"Content-Type": "application/json"}).status_code == 413
    assert web.call("POST", "/admin/outbox/retry", json={"ids": [api_token]}).status_code == 400
    assert web.call("GET", "/no/such/page").status_code == 404
    assert web.call("DELETE", "/verification-codes").status_code == 405

    # Operations endpoints.
    assert web.call("GET", "/healthz/bot", token=None).status_code == 401  # details need a token
    assert web.call("GET", "/healthz/bot", token=SECRETS["METRICS_TOKEN"]).status_code == 503  # no bot process here
    assert web.call("GET", "/admin/outbox?state=pending").json()["items"]
    assert web.call("POST", "/admin/outbox/retry", json={"all_failed": True}).status_code == 200
    assert web.call("GET", "/metrics", token="wrong").status_code == 401
    assert web.call("GET", "/metrics", token=tg_token).status_code == 401
    assert web.call("GET", "/metrics", token=SECRETS["METRICS_TOKEN"]).status_code == 200

    # Metrics are summed over both workers: every request so far is counted once (this scrape not yet).
    before_scrape = Counter(web.statuses)
    metrics = web.call("GET", "/metrics", token=SECRETS["METRICS_TOKEN"])
    counted = Counter()
    for family in text_string_to_metric_families(metrics.text):
        for sample in family.samples:
            if sample.name == "customer_bot_http_requests_total":
                counted[sample.labels["status"]] += int(sample.value)
    assert counted == before_scrape, (counted, before_scrape)
    assert "customer_bot_outbox_messages" in metrics.text

    assert (web.runtime / "gunicorn.ctl").exists(), "the control socket lives in the runtime directory"
    assert len(list(web.runtime.glob("counter_*.db"))) >= 1
    assert web.stop() == 0, "Gunicorn's graceful stop exits cleanly"
    assert not web.home.exists(), "nothing is written to the home directory"
    output = web.output()
    for needle in NEEDLES:
        assert needle not in output, f"a secret reached the logs: {needle[:12]}…"
        for answer in web.answers:
            assert needle not in answer, f"a secret came back in an answer: {needle[:12]}…"

    # One line per event: access lines, Gunicorn's own lines, the app's lines; no tracebacks.
    access = []
    config_dump = False  # at DEBUG, Gunicorn prints its settings at start, one indented line each
    for line in output.splitlines():
        match = ACCESS_LINE.match(line)
        if match:
            access.append(match)
        elif config_dump and line.startswith("  "):
            continue
        else:
            assert ERROR_LOG_LINE.match(line) or APP_LOG_LINE.match(line), f"not a one-line log event: {line!r}"
        config_dump = line.endswith("[DEBUG] Current configuration:") or config_dump and line.startswith("  ")
    assert Counter((m["method"], m["path"], m["status"]) for m in access) == Counter(
        (method, path, status) for (method, path), status in zip(web.sent, web.statuses, strict=True)
    )
    assert "Traceback" not in output
