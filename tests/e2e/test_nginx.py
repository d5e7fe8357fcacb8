"""deploy/nginx.conf as shipped (ports and directories moved) in front of a real Gunicorn: the edge holds.

- 200 idle, 200 slowloris and 50 slow-body sockets open, and the load balancer's probes (/healthz and an
  authenticated /subscribe-status every 0.5 s) are still answered within 1 s, ≥ 99 % of them. Straight at
  Gunicorn the same load leaves nearly none answered: that figure is bench/edge.py's, not a test.
- Every error nginx answers itself is JSON {"error", "message"}, including the ones Gunicorn's parser would
  have answered with an HTML page (414, 431, 400), and 502 when Gunicorn is down.
- Gunicorn receives only the header fields nginx sets, with X-Forwarded-For/-Proto of nginx's own.
"""

from __future__ import annotations

import http.server
import json
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import edge

pytestmark = pytest.mark.e2e

API_TOKEN = secrets.token_urlsafe(24)


@pytest.fixture(scope="module", autouse=True)
def _nginx_installed() -> None:
    if edge.nginx_binary() is None:
        pytest.skip("nginx is not installed: apt-get install nginx (Debian's package; .ci/run installs it)")


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[edge.Gunicorn]:
    directory = tmp_path_factory.mktemp("gunicorn")
    env = edge.web_env(f"sqlite:///{directory / 'app.db'}", edge.free_port(), API_TOKEN)
    edge.migrate(env)
    web = edge.Gunicorn(env, directory / "gunicorn.log")
    try:
        yield web
    finally:
        web.stop()
    assert API_TOKEN not in web.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def proxy(gunicorn: edge.Gunicorn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[edge.Nginx]:
    with edge.nginx(gunicorn.port, tmp_path_factory.mktemp("nginx")) as front:
        yield front


# --- the load balancer's probes under attack ---------------------------------------------------------------------


def test_probes_are_answered_within_a_second_while_hostile_sockets_are_open(proxy: edge.Nginx) -> None:
    with edge.hostile_load(proxy.port, API_TOKEN, idle=200, slowloris=200, slow_body=50, interval=3.0) as load:
        deadline = time.monotonic() + 15
        while load.open_now < 450 or load.bytes_sent < 450:  # every socket open, and the trickles started
            assert time.monotonic() < deadline, f"the load did not start: {load.opened}"
            time.sleep(0.1)
        time.sleep(2)
        result = edge.probe(proxy.port, API_TOKEN, duration=30, every=0.5, timeout=3.0, deadline=1.0)
        assert load.open_now == 450  # the pressure was on until the end
        slow_bodies_closed = load.closed_by_server.get("slow_body", 0)
    summary = f"{result.within}/{result.sent} within 1 s; statuses {result.statuses}; worst {max(result.latencies, default=None)}"
    assert result.sent >= 120, summary
    assert result.within_pct >= 99.0, summary
    # The slow bodies were still trickling in (nginx was holding them, not Gunicorn): none was answered.
    assert slow_bodies_closed == 0
    assert proxy.popen.poll() is None, proxy.output()


# --- nginx's own errors are JSON -----------------------------------------------------------------------------------


def request_line(length: int) -> bytes:
    """A GET /healthz request line of exactly `length` bytes (without its CRLF)."""
    base = "GET /healthz?pad= HTTP/1.1"
    return f"GET /healthz?pad={'a' * (length - len(base))} HTTP/1.1".encode()


def header_line(length: int) -> bytes:
    return b"X-Pad: " + b"a" * (length - len(b"X-Pad: "))


def get(head: bytes, *headers: bytes) -> bytes:
    return head + b"\r\nHost: edge\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


BAD = {
    "request line of 5000 bytes": (get(request_line(5000)), 414, "uri_too_long"),
    "request line of 4095 bytes": (get(request_line(4095)), 414, "uri_too_long"),
    "header line of 4095 bytes": (get(b"GET /healthz HTTP/1.1", header_line(4095)), 431, "headers_too_large"),
    "header line of 8000 bytes": (get(b"GET /healthz HTTP/1.1", header_line(8000)), 431, "headers_too_large"),
    "a header name with a space": (get(b"GET /healthz HTTP/1.1", b"Bad Header: x"), 400, "bad_request"),
    "Content-Length: -1": (get(b"POST /verification HTTP/1.1", b"Content-Length: -1"), 400, "bad_request"),
    "a control character in Authorization": (
        get(b"GET /subscribe-status?user_id=1 HTTP/1.1", b"Authorization: Bearer \x01"),
        400,
        "bad_request",
    ),
    "a request target that is not ASCII": (get("GET /healthz?x=é HTTP/1.1".encode()), 400, "bad_request"),
    "a broken chunk size": (
        b"POST /verification HTTP/1.1\r\nHost: edge\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\n",
        400,
        "bad_request",
    ),
    "a two-letter method": (get(b"AB /healthz HTTP/1.1"), 405, "method_not_allowed"),
    "Transfer-Encoding: gzip": (get(b"POST /verification HTTP/1.1", b"Transfer-Encoding: gzip"), 501, "not_implemented"),
    "HTTP/2.0 in the request line": (get(b"GET /healthz HTTP/2.0"), 505, "http_version_not_supported"),
}


def too_large_body() -> bytes:
    body = b'{"code": "' + b"a" * 70_000 + b'"}'
    head = f"POST /verification HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {API_TOKEN}\r\n"
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


BAD["a body over MAX_BODY_BYTES"] = (too_large_body(), 413, "body_too_large")


def assert_json_error(status: int, headers: dict[str, str], body: bytes, expected_status: int, code: str) -> None:
    assert status == expected_status, body[:300]
    assert headers["content-type"] == "application/json"
    document = json.loads(body)
    assert set(document) == {"error", "message"} and document["error"] == code and document["message"]


@pytest.mark.parametrize("name", sorted(BAD))
def test_nginx_answers_bad_requests_with_json(proxy: edge.Nginx, name: str) -> None:
    data, status, code = BAD[name]
    assert_json_error(*edge.raw(proxy.port, data), status, code)


@pytest.mark.parametrize(
    ("name", "status"),
    [("request line of 4095 bytes", 414), ("a header name with a space", 400), ("Content-Length: -1", 400)],
)
def test_straight_at_gunicorn_its_parser_answers_too(gunicorn: edge.Gunicorn, name: str, status: int) -> None:
    """Gunicorn answers these before Flask sees the request (docs/deploy.md); our worker writes them as JSON too."""
    got, headers, body = edge.raw(gunicorn.port, BAD[name][0])
    assert got == status
    assert headers["content-type"].startswith("application/json")
    assert set(json.loads(body)) == {"error", "message"}


def test_the_longest_request_line_and_header_line_pass_through(proxy: edge.Nginx, gunicorn: edge.Gunicorn) -> None:
    """4094 bytes, Gunicorn's limit_request_line, is also nginx's limit for both (Gunicorn takes header lines
    up to 8190 bytes: nginx is the stricter of the two there)."""
    for port in (proxy.port, gunicorn.port):
        assert edge.raw(port, get(request_line(4094)))[0] == 200
        assert edge.raw(port, get(b"GET /healthz HTTP/1.1", header_line(4094)))[0] == 200
    assert edge.raw(gunicorn.port, get(b"GET /healthz HTTP/1.1", header_line(8000)))[0] == 200


def test_the_apps_own_errors_pass_unchanged(proxy: edge.Nginx) -> None:
    """nginx answers only what it refuses: the app's 401 and 400 keep their codes and details."""
    status, headers, body = edge.raw(proxy.port, get(b"GET /subscribe-status?user_id=1 HTTP/1.1"))
    assert (status, json.loads(body)["error"]) == (401, "unauthorized")
    data = f"POST /verification HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {API_TOKEN}\r\n"
    data += 'Content-Type: application/json\r\nContent-Length: 6\r\n\r\n{"x":}'
    status, headers, body = edge.raw(proxy.port, data.encode())
    assert (status, json.loads(body)["error"]) == (400, "invalid_json")


def test_502_as_json_when_gunicorn_is_down(tmp_path: Path) -> None:
    nobody = edge.free_port()  # nothing listens there: Gunicorn stopped, crashed or not started yet
    with edge.nginx(nobody, tmp_path) as front:
        for path in ("/healthz", "/subscribe-status?user_id=1"):
            assert_json_error(*edge.raw(front.port, get(f"GET {path} HTTP/1.1".encode())), 502, "bad_gateway")


# --- what reaches Gunicorn ------------------------------------------------------------------------------------------


class Recorder(http.server.BaseHTTPRequestHandler):
    """An upstream that answers 200 and keeps the header fields it was sent (in place of Gunicorn)."""

    seen: list[list[tuple[str, str]]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.seen.append(list(self.headers.items()))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"{}\n")

    def log_message(self, *args: object) -> None:
        pass


def test_gunicorn_gets_only_the_fields_nginx_sets(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer((edge.HOST, 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with edge.nginx(server.server_address[1], tmp_path) as front:
            spoofed = [b"X-Forwarded-For: 6.6.6.6", b"X-Forwarded-Proto: https", b"X-Forwarded-Ssl: on", b"X-Real-IP: 6.6.6.6"]
            # More fields than Gunicorn's limit_request_fields, a duplicate Content-Type, an Expect it would refuse.
            noise = [b"X-H%d: v" % i for i in range(150)] + [b"Content-Type: a/b", b"Content-Type: c/d", b"Expect: 999-x"]
            line = b"GET /subscribe-status?user_id=1 HTTP/1.1"
            status, _, _ = edge.raw(front.port, get(line, b"Authorization: Bearer t0k", *spoofed, *noise))
            assert status == 200
    finally:
        server.shutdown()
        server.server_close()
    (fields,) = Recorder.seen
    assert dict(fields) == {
        "Host": "edge",
        "Authorization": "Bearer t0k",
        "Content-Type": "a/b",
        "X-Forwarded-For": "127.0.0.1",
        "X-Forwarded-Proto": "http",
        "Connection": "close",
    }
    assert len(fields) == 6  # each once
