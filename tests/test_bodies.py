"""Bodies that cannot be read or parsed are a JSON 4xx, never a 500 (issue 13, point 2).

Broken framing only exists on a real connection: Gunicorn decodes `Transfer-Encoding: chunked` itself and
raises its parser's errors from `wsgi.input.read()` inside the view, so the first half of this file sends
raw bytes to a real Gunicorn. The second half sends the same bodies through Flask's test client, with
Werkzeug's own de-chunking reader (the one `flask run` uses) where the framing matters.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from werkzeug.serving import DechunkedInput
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from tests.conftest import API_TOKEN
from tests.support.e2e import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
# One POST endpoint of each blueprint that reads a body: they all read it through webapp.bodies.parse.
BODY_PATHS = ["/verification-codes", "/horeca/cafe-1/staff-codes", "/admin/outbox/retry"]

# (name, headers after the token, body bytes, status, error code); each framing error is what the client sent.
CHUNKED = b"Transfer-Encoding: chunked\r\n"
BROKEN = [
    ("a chunk shorter than its size line", CHUNKED, b"5\r\nabcd\r\n0\r\n\r\n", 400, "bad_request"),
    ("a size line that is not hex", CHUNKED, b"zz\r\n{}\r\n0\r\n\r\n", 400, "bad_request"),
    ("a size line with a sign", CHUNKED, b"-2\r\n{}\r\n0\r\n\r\n", 400, "bad_request"),
    ("a chunk without its CRLF", CHUNKED, b"2\r\n{}XX0\r\n\r\n", 400, "bad_request"),
    ("bytes that are not UTF-8", b"Content-Length: 6\r\n", b'\xff\xfe{"a"', 400, "invalid_json"),
    ("a raw NUL byte", b"Content-Length: 3\r\n", b"{\x00}", 400, "invalid_json"),
]


def response_of(raw: bytes) -> tuple[int, dict]:
    """Status and JSON body of the first response in `raw` (an HTTP/1.1 answer with Content-Length)."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"(?im)^content-length: *(\d+)", head)[1])
    assert re.search(rb"(?im)^content-type: application/json", head), head
    return status, json.loads(rest[:length])


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bodies")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "PROMETHEUS_"))}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp}/app.db",
        API_TOKEN=API_TOKEN,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="1",
        GUNICORN_THREADS="2",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    migrate = [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, capture_output=True)
    log = tmp / "gunicorn.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "Booting worker" in log.read_text(), timeout=30, what="the worker")
        wait_until(lambda: _answers(port), timeout=30, what="/healthz")
        yield port, log
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(port: int) -> bool:
    try:
        return exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def exchange(port: int, request: bytes, *, close_after: bool = True) -> bytes:
    """Send `request` on a new connection, then (by default) end our side; read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        if close_after:
            sock.shutdown(socket.SHUT_WR)  # the server sees the end of the body: nothing more will come
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def post(path: str, headers: bytes, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {API_TOKEN}\r\nContent-Type: application/json\r\n".encode()
        + headers
        + b"Connection: close\r\n\r\n"
        + body
    )


@pytest.mark.e2e
@pytest.mark.parametrize("path", BODY_PATHS)
@pytest.mark.parametrize(("name", "headers", "body", "status", "code"), BROKEN, ids=[case[0] for case in BROKEN])
def test_gunicorn_answers_a_broken_body_with_json(gunicorn, path, name, headers, body, status, code):
    port, log = gunicorn
    logged = log.stat().st_size
    answer = exchange(port, post(path, headers, body))
    assert response_of(answer)[0] == status, answer
    assert response_of(answer)[1]["error"] == code, answer
    assert "Traceback" not in log.read_text()[logged:]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("name", "headers", "body", "message"),
    [
        ("a chunk cut off", CHUNKED, b"a\r\nabc", "the request body could not be read (NoMoreData)"),
        ("a body shorter than Content-Length", b"Content-Length: 100\r\n", b"{}", "the body ended after 2 of the 100 bytes"),
    ],
)
def test_gunicorn_answers_a_body_cut_short_with_json(gunicorn, name, headers, body, message):
    """The client ends its side mid-body: 400 JSON. (A client that keeps the connection open holds a thread until it
    goes away: Gunicorn has no body timeout, which is why it runs behind a buffering proxy.)"""
    port, log = gunicorn
    logged = log.stat().st_size
    status, payload = response_of(exchange(port, post("/verification-codes", headers, body)))
    assert (status, payload["error"]) == (400, "bad_request")
    assert payload["message"].startswith(message)
    assert "Traceback" not in log.read_text()[logged:]


@pytest.mark.e2e
def test_gunicorn_takes_a_well_formed_chunked_body_and_limits_its_size(gunicorn):
    port, _ = gunicorn
    status, payload = response_of(exchange(port, post("/verification-codes", CHUNKED, b"2\r\n{}\r\n0\r\n\r\n")))
    assert status == 201 and payload["code"]
    piece = b"%x\r\n%s\r\n" % (40_000, b" " * 40_000)  # two of them: over MAX_BODY_BYTES (64 KiB)
    status, payload = response_of(exchange(port, post("/verification-codes", CHUNKED, piece * 2 + b"0\r\n\r\n")))
    assert (status, payload["error"]) == (413, "body_too_large")


# --- the same bodies through Flask's test client --------------------------------------------------------------


def post_chunked(api, path: str, body: bytes):
    """POST `body` as chunked framing, read by Werkzeug's de-chunking input as its development server does."""
    environ = EnvironBuilder(path=path, method="POST", headers={**api.headers, "Transfer-Encoding": "chunked"}).get_environ()
    environ.update({"wsgi.input": DechunkedInput(io.BytesIO(body)), "wsgi.input_terminated": True})
    environ.pop("CONTENT_LENGTH", None)
    environ["CONTENT_TYPE"] = "application/json"
    return api.raw.open(Request(environ))


@pytest.mark.parametrize("path", BODY_PATHS)
@pytest.mark.parametrize(("name", "headers", "body", "status", "code"), BROKEN, ids=[case[0] for case in BROKEN])
def test_the_app_answers_a_broken_body_with_json(api, path, name, headers, body, status, code):
    if headers == CHUNKED:
        response = post_chunked(api, path, body)
    else:
        response = api.post(path, data=body, content_type="application/json")
    # Werkzeug's reader is laxer than Gunicorn's: it takes the 5-byte chunk "abcd\r" and leaves the JSON parser to refuse it.
    expected = "invalid_json" if name == "a chunk shorter than its size line" else code
    assert (response.status_code, response.get_json()["error"]) == (status, expected)


def test_a_body_shorter_than_its_content_length_is_a_400(api):
    response = api.post(
        "/verification-codes",
        input_stream=io.BytesIO(b"{}"),
        content_type="application/json",
        environ_overrides={"CONTENT_LENGTH": "100"},
    )
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "bad_request",
        "message": "the body ended after 2 of the 100 bytes Content-Length announced",
    }


def test_a_well_formed_chunked_body_is_read(api):
    response = post_chunked(api, "/verification-codes", b'8\r\n{"code":\r\nf\r\n"CHUNKED-1234"}\r\n0\r\n\r\n')
    assert response.status_code == 201
    assert response.get_json()["code"] == "CHUNKED-1234"


def test_a_chunked_body_over_the_limit_is_a_413_not_cut_to_fit(api):
    """Werkzeug's get_data() stops at MAX_BODY_BYTES without a word: 80 KB of spaces were an empty body and 201."""
    piece = b"%x\r\n%s\r\n" % (40_000, b" " * 40_000)
    response = post_chunked(api, "/verification-codes", piece * 2 + b"0\r\n\r\n")
    assert (response.status_code, response.get_json()["error"]) == (413, "body_too_large")
    exactly = b"%x\r\n%s\r\n" % (65_536, b" " * 65_534 + b"{}")  # MAX_BODY_BYTES to the byte: taken
    assert post_chunked(api, "/verification-codes", exactly + b"0\r\n\r\n").status_code == 201


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/verification-codes", {"code": "ABCD\x00EFGH"}),
        ("/verification/", {"code": "ABCD\x00EFGH"}),
        ("/enter_key_from_user/", {"telegram_user_id": 1001, "verification_code": "ABCD\x00EFGH"}),
        ("/provide_message_to_user/", {"user_id": 1001, "horeca_id": "cafe\x00", "order_id": "A-1", "status": "created"}),
        ("/provide_message_to_user/", {"user_id": 1001, "horeca_id": "cafe-1", "order_id": "A\x001", "status": "created"}),
        (
            "/provide_message_to_user/",
            {"user_id": 1001, "horeca_id": "c", "order_id": "A-1", "status": "created", "text": "\x00"},
        ),
        ("/horeca/cafe-1/staff-codes", {"horeca_name": "Caf\x00e"}),
    ],
)
def test_an_escaped_nul_in_a_string_is_refused_on_every_backend(api, path, body):
    """JSON may carry U+0000 as an escape; PostgreSQL text cannot hold it: 400, never a database error."""
    response = api.post(path, json=body)
    assert (response.status_code, response.get_json()["error"]) == (400, "validation_error")


# --- Gunicorn's own errors: the request never reaches the app -----------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("name", "request_bytes", "status", "code"),
    [
        (
            "a request line over 4094 bytes",
            b"GET /admin/outbox?x=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
            414,
            "uri_too_long",
        ),
        (
            "over 100 header fields",
            b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + b"X-A: b\r\n" * 120 + b"\r\n",
            431,
            "headers_too_large",
        ),
        (
            "a negative Content-Length",
            b"POST /verification-codes HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
            400,
            "bad_request",
        ),
        ("a header with a bad name", b"GET /healthz HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n", 400, "bad_request"),
        ("a request line that is not HTTP", b"HELLO\r\n\r\n", 400, "bad_request"),
        (
            "a transfer coding other than chunked",
            b"POST /verification-codes HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: br, chunked\r\n\r\n",
            501,
            "not_implemented",
        ),
    ],
)
def test_gunicorn_answers_its_own_parser_errors_with_json(gunicorn, name, request_bytes, status, code):
    port, _ = gunicorn
    answer = exchange(port, request_bytes)
    assert response_of(answer)[0] == status, answer
    assert response_of(answer)[1]["error"] == code


@pytest.mark.e2e
def test_a_broken_body_the_app_left_unread_is_answered_with_json_too(gunicorn):
    """The app answers without reading the body (a GET, a 401); Gunicorn then finds the framing broken when it
    drains the body for the next request, and answers that too, after the app's answer."""
    port, _ = gunicorn
    answer = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcd\r\n0\r\n\r\n")
    first, _, second = answer.partition(b"}\n")
    assert response_of(first + b"}\n") == (200, {"status": "ok"})
    assert response_of(second)[0] == 400 and response_of(second)[1]["error"] == "bad_request"
    assert b"<html>" not in answer
    secret = b"Bearer " + API_TOKEN.encode() + b"\x01"  # a control character: an invalid header value
    answer = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nAuthorization: " + secret + b"\r\n\r\n")
    assert response_of(answer)[0] == 400 and API_TOKEN.encode() not in answer
