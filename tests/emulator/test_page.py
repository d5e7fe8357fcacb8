"""The sandbox page's server side: `/` and `/static/*` served with a strict CSP, and the block state it shows."""

from __future__ import annotations

import pytest
import requests

from devtools.tg_emulator import EmulatorClient, EmulatorServer

BOT = "SandboxCafeBot"
TOKEN = "7000000001:" + "PageTestBot".ljust(35, "x")


@pytest.fixture(scope="module")
def server():
    with EmulatorServer("127.0.0.1", 0, bots={BOT: TOKEN}) as server:
        yield server


def test_root_serves_the_page_with_a_strict_policy(server):
    response = requests.get(server.url + "/", timeout=5)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert 'data-testid="chat"' in response.text
    assert '<script src="/static/app.js" defer></script>' in response.text


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/static/app.js", "text/javascript; charset=utf-8"), ("/static/app.css", "text/css; charset=utf-8")],
)
def test_static_files(server, path, content_type):
    response = requests.get(server.url + path, timeout=5)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert len(response.content) == int(response.headers["Content-Length"]) > 100


@pytest.mark.parametrize(
    "path",
    [
        "/static/",
        "/static/missing.js",
        "/static/../server.py",
        "/static/..%2fserver.py",
        "/static/%2e%2e/core.py",
        "/static/.hidden.js",
        "/static/sub/app.js",
        "/favicon.ico",
    ],
)
def test_nothing_else_is_served(server, path):
    # requests would normalise "..": send the path as written.
    session = requests.Session()
    prepared = session.prepare_request(requests.Request("GET", server.url + "/"))
    prepared.url = server.url + path
    response = session.send(prepared, timeout=5)

    assert response.status_code == 404
    assert response.json()["description"] == "Not Found"


def test_control_api_still_answers_at_its_paths(server):
    assert requests.get(server.url + "/control/health", timeout=5).json() == {"ok": True}
    assert requests.post(server.url + "/static/app.js", timeout=5).status_code == 404


def test_blocked_reports_the_switch(server):
    emu = EmulatorClient(server.url)
    emu.create_user(601, "Ann", language_code="en")

    def blocked():
        response = requests.get(server.url + "/control/blocked", params={"bot": BOT, "user_id": 601}, timeout=5)
        assert response.status_code == 200
        return response.json()

    assert blocked() == {"bot": BOT, "user_id": 601, "blocked": False}
    emu.block(BOT, 601)
    assert blocked()["blocked"] is True
    emu.unblock(BOT, 601)
    assert blocked()["blocked"] is False


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"user_id": 601}, 400),
        ({"bot": BOT}, 400),
        ({"bot": BOT, "user_id": "x"}, 400),
        ({"bot": "NoSuchBot", "user_id": 1}, 404),
    ],
)
def test_blocked_bad_input(server, params, status):
    response = requests.get(server.url + "/control/blocked", params=params, timeout=5)

    assert response.status_code == status
    assert "error" in response.json()
