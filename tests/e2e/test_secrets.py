"""No secret in any log or admin view: both processes at DEBUG through every fault Telegram and a webhook receiver can throw.

gunicorn and run_bot.py run with every secret set (two bot tokens, the API and metrics tokens, a webhook
secret, a webhook URL with `user:password@` and `?token=`) at LOG_LEVEL=DEBUG. Telegram is first
unreachable, then the emulator injects each of its faults into both bots; the backend's receiver quotes
the request it got (Authorization header and query string included) in its error pages and headers, times
out and hangs up. Then every line both processes wrote, and every answer of `/admin/webhooks` and
`/admin/outbox` seen on the way, is searched for each secret, plain and base64.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import BOT_USERNAME, PY, Proc, Stack, base_env, free_port, wait_until
from tests.support.e2e import Api

pytestmark = pytest.mark.e2e

WEBHOOK_TIMEOUT = 5.0  # bot.workers.webhooks.REQUEST_TIMEOUT


class Receiver:
    """The backend's webhook endpoint, misbehaving: each request gets the next of `behaviours`, then `otherwise`."""

    def __init__(self, behaviours: list[str], otherwise: str) -> None:
        self.behaviours = list(behaviours)
        self.otherwise = otherwise
        self.seen: list[tuple[str, str]] = []  # (behaviour, what the request carried: request line and headers)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                quoted = f"{self.requestline}\n{self.headers}"  # everything it was sent, credentials included
                with receiver.lock:
                    behaviour = receiver.behaviours.pop(0) if receiver.behaviours else receiver.otherwise
                    receiver.seen.append((behaviour, quoted))
                if behaviour == "hang_up":  # no answer at all
                    self.close_connection = True
                    return
                if behaviour == "timeout":
                    time.sleep(WEBHOOK_TIMEOUT + 1)
                headers = {"Content-Type": "text/plain; charset=utf-8"}
                status = {"echo_500": 500, "unauthorized": 401, "redirect": 302, "gone": 410, "timeout": 504}[behaviour]
                if behaviour == "unauthorized":
                    headers["WWW-Authenticate"] = f'Basic realm="{self.headers.get("Authorization")}"'
                if behaviour == "redirect":
                    headers["Location"] = f"http://elsewhere.example{self.path}"
                body = f"Request rejected. You sent:\n{quoted}".encode()
                try:
                    self.send_response(status, f"Rejected {self.headers.get('Authorization')} {self.path}")
                    for name, value in headers.items():
                        self.send_header(name, value.replace("\n", " "))
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the sender gave up waiting (the timeout)
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def served(self) -> list[str]:
        with self.lock:
            return [behaviour for behaviour, _ in self.seen]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(["echo_500", "unauthorized", "timeout", "hang_up", "redirect", "gone"], otherwise="echo_500")
    yield r
    r.stop()


def token() -> str:
    return f"{secrets.randbelow(9 * 10**9) + 10**9}:{secrets.token_urlsafe(32)}"


def b64_forms(value: str) -> set[str]:
    """`value` as base64 would show it: standard or URL-safe alphabet, with or without padding."""
    forms = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(value.encode()).decode()
        forms |= {encoded, encoded.rstrip("=")}
    return forms


def start_gunicorn(database_url: str, env: dict[str, str], log_dir: Path) -> tuple[Proc, str]:
    port = free_port()
    full = {**base_env(database_url), **env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1"}
    proc = Proc("gunicorn", [PY, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], full, log_dir / "gunicorn.log")
    base_url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.alive(), proc.output()[-3000:]
        try:
            return requests.get(base_url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_until(up, 30, 0.1, "gunicorn to answer /healthz")
    return proc, base_url


def test_no_secret_reaches_any_log_or_admin_view(stack: Stack, receiver: Receiver, bot_token: str, tmp_path: Path):
    staff_token = token()
    api_token, metrics_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    user, password, query_token = "hookuser", f"pw-{secrets.token_urlsafe(16)}", f"qt-{secrets.token_urlsafe(16)}"
    url = f"http://{user}:{password}@127.0.0.1:{receiver.port}/hooks/telegram?token={query_token}"
    env = {
        "LOG_LEVEL": "DEBUG",
        "API_TOKEN": api_token,
        "METRICS_TOKEN": metrics_token,
        "BACKEND_WEBHOOK_URL": url,
        "WEBHOOK_SECRET": webhook_secret,
        "TELEGRAM_BOT_TOKEN": bot_token,  # one env file for both processes, as deployed
        "HORECA_BOT_TOKEN": staff_token,
    }
    emu, staff = stack.emu, staff_token

    # Telegram unreachable: requests' errors quote the URL, which holds the token.
    bot = stack.start_bot(wait=False, **{**env, "TELEGRAM_API_URL": f"http://127.0.0.1:{free_port()}"})
    wait_until(lambda: "Telegram is unreachable" in bot.output(), 15, 0.1, "a connection error logged")
    bot.stop()

    web, base_url = start_gunicorn(stack.database_url, env, tmp_path)
    admin_views: list[str] = []
    try:
        api = Api(base_url, token=api_token)

        def look_at_admin_views() -> None:
            for path in ("/admin/webhooks", "/admin/outbox"):
                response = api.get(path, state="all", limit=100)
                assert response.status_code == 200, response.text
                admin_views.append(response.text)

        stack.start_bot(**env)
        wait_until(lambda: emu.stats(staff)["get_updates_calls"] > 0, 30, what="the staff bot to poll")

        # Every fault the emulator has, in both bots, on sending and on polling.
        for bot_name in (BOT_USERNAME, staff):
            for kind in ("drop", "500", "502", "502_html", "429"):
                emu.faults(kind, bot=bot_name, method="getUpdates", count=1, retry_after=1)
            for kind in ("429", "429", "500", "502", "502_html", "drop", "drop_after"):
                emu.faults(kind, bot=bot_name, method="sendMessage", count=1, retry_after=1)
            emu.faults("slow", bot=bot_name, method="sendMessage", count=1, delay=3)  # beyond the 2 s request timeout
        blocked = stack.user(8099)
        emu.faults("403", bot=BOT_USERNAME, method="sendMessage", chat_id=blocked, count=1)
        emu.faults("403", bot=staff, method="sendMessage", count=1)

        # Traffic: customers linked (a user.linked event each) and told about orders; strangers write to the staff bot.
        customers = [stack.user(8000 + n) for n in range(6)] + [blocked]
        for customer in customers:
            api.link(customer)
            api.push(customer, f"S-{customer}", "created")
        for n in range(12):  # more replies than faults in the way
            emu.send(staff, stack.user(8100 + n), "/start")

        def settled() -> bool:
            look_at_admin_views()
            states = set(stack.outbox_states().values())
            return (
                not emu.list_faults()  # every fault fired
                and states <= {"sent", "blocked"}
                and len(receiver.served()) > len(customers)  # every behaviour, then retries
            )

        wait_until(settled, 45, 0.5, "every fault fired and every message settled")
        look_at_admin_views()
        # The 403 made user 8099 blocked: a user.blocked event joined the user.linked ones.
        assert {"echo_500", "unauthorized", "timeout", "hang_up", "redirect", "gone"} <= set(receiver.served())
        assert "blocked" in stack.outbox_states().values()
        stack.bot.stop()
        # The web side: the metrics token at work, wrong tokens turned away, the API token where it does not belong.
        assert requests.get(base_url + "/metrics", headers={"Authorization": f"Bearer {metrics_token}"}, timeout=5).ok
        for headers in ({}, {"Authorization": f"Bearer {metrics_token}"}, {"Authorization": f"Basic {api_token}"}):
            assert requests.get(base_url + "/admin/outbox", headers=headers, timeout=5).status_code == 401
        assert requests.get(base_url + "/healthz", params={"token": api_token}, timeout=5).ok
    finally:
        web.stop()

    outputs = {"run_bot.py": stack.bot_logs(), "gunicorn": web.output()}
    views = "\n".join(admin_views)
    plain = {
        "customer bot token": bot_token,
        "customer bot secret": bot_token.partition(":")[2],
        "staff bot token": staff_token,
        "staff bot secret": staff_token.partition(":")[2],
        "API token": api_token,
        "metrics token": metrics_token,
        "webhook secret": webhook_secret,
        "webhook secret without whsec_": webhook_secret.removeprefix("whsec_"),
        "webhook URL password": password,
        "webhook URL query token": query_token,
    }
    forms = {name: {value} for name, value in plain.items()}
    for name, value in plain.items():
        forms[f"{name} in base64"] = b64_forms(value)
    forms["webhook URL user:password in base64"] = b64_forms(f"{user}:{password}")

    places = {**outputs, "GET /admin/webhooks and /admin/outbox": views}
    leaks = [
        f"{name} in {where}" for name, values in forms.items() for where, text in places.items() if any(v in text for v in values)
    ]
    assert not leaks, leaks

    # It all happened, at DEBUG, and was recorded: the search above searched something.
    bot_log = outputs["run_bot.py"]
    for evidence in (
        "Telegram is unreachable",
        f"/bot{bot_token.partition(':')[0]}:***/",  # requests quoted the URL; the token in it was masked
        "DEBUG",
        "HTTP 500 Internal Server Error (",
        "HTTP 401 Unauthorized (",
        "HTTP 302 Found (",
        "failed for good",  # 410 Gone
        "ReadTimeout",
        "ConnectionError",
        "Too Many Requests",
        "HTTP 502",
    ):
        assert evidence in bot_log, evidence
    assert "DEBUG" in outputs["gunicorn"]
    for output in outputs.values():  # the HTTP client libraries would log each request line, query string included
        assert not re.search(r" (DEBUG|INFO) \[\d+\] (urllib3|requests)\b", output)
    assert "not kept" in views and "ReadTimeout" in views and "500 Internal Server Error" in views


def test_the_receiver_quotes_what_there_is_to_leak(receiver: Receiver):
    """The misbehaving receiver does quote the credentials it is sent: the test above would see a leak."""
    password, query_token = "pw-" + secrets.token_urlsafe(8), "qt-" + secrets.token_urlsafe(8)
    response = requests.post(
        f"http://hookuser:{password}@127.0.0.1:{receiver.port}/hooks?token={query_token}", data=b"{}", timeout=5
    )
    basic = base64.b64encode(f"hookuser:{password}".encode()).decode()
    assert response.status_code == 500
    for value in (basic, query_token):
        assert value in response.text and value in response.reason
