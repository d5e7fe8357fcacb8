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
    [
        ("/static/app.js", "text/javascript; charset=utf-8"),
        ("/static/groups.js", "text/javascript; charset=utf-8"),
        ("/static/app.css", "text/css; charset=utf-8"),
    ],
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


# ------------------------------------------------------------------ what the page shows: reply keyboards, deep links, unread

STAFF_BOT = "SandboxCafeStaffBot"
STAFF_TOKEN = "7000000002:" + "PageTestStaffBot".ljust(35, "x")


@pytest.fixture
def two_bots():
    """The sandbox's pair: a customer bot and a staff bot; Ann (602) exists."""
    with EmulatorServer("127.0.0.1", 0, bots={BOT: TOKEN, STAFF_BOT: STAFF_TOKEN}) as server:
        EmulatorClient(server.url).create_user(602, "Ann", language_code="en")
        yield server


def control(server, method: str, route: str, **params):
    if method == "GET":
        response = requests.get(f"{server.url}/control/{route}", params=params, timeout=5)
    else:
        response = requests.post(f"{server.url}/control/{route}", json=params, timeout=5)
    return response.status_code, response.json()


def bot_call(server, token: str, method: str, **params):
    body = requests.post(f"{server.url}/bot{token}/{method}", json=params, timeout=5).json()
    assert body["ok"], body
    return body["result"]


def updates(server, token: str) -> list[dict]:
    return bot_call(server, token, "getUpdates", timeout=0)


def test_a_reply_keyboard_stays_until_removed(two_bots):
    menu = {"keyboard": [[{"text": "💬 Dialogs"}, {"text": "⚙️ Settings"}]], "resize_keyboard": True}
    bot_call(two_bots, STAFF_TOKEN, "sendMessage", chat_id=602, text="Welcome: open 💬 Dialogs", reply_markup=menu)

    status, shown = control(two_bots, "GET", "keyboard", bot=STAFF_BOT, chat_id=602)
    assert status == 200
    assert shown["keyboard"]["keyboard"] == menu["keyboard"] and shown["keyboard"]["resize_keyboard"] is True
    # A later message without markup leaves it; the other bot's chat has none.
    bot_call(two_bots, STAFF_TOKEN, "sendMessage", chat_id=602, text="Anything else")
    assert control(two_bots, "GET", "keyboard", bot=STAFF_BOT, chat_id=602)[1]["keyboard"]["keyboard"] == menu["keyboard"]
    assert control(two_bots, "GET", "keyboard", bot=BOT, chat_id=602)[1]["keyboard"] is None

    # Pressing a reply-keyboard button is sending its text.
    control(two_bots, "POST", "send", bot=STAFF_BOT, user_id=602, text="💬 Dialogs")
    assert [u["message"]["text"] for u in updates(two_bots, STAFF_TOKEN)] == ["💬 Dialogs"]

    bot_call(two_bots, STAFF_TOKEN, "sendMessage", chat_id=602, text="Bye", reply_markup={"remove_keyboard": True})
    assert control(two_bots, "GET", "keyboard", bot=STAFF_BOT, chat_id=602)[1]["keyboard"] is None


def test_a_one_time_keyboard_folds_away_after_the_user_writes(two_bots):
    once = {"keyboard": [[{"text": "Yes"}, {"text": "No"}]], "one_time_keyboard": True}
    bot_call(two_bots, TOKEN, "sendMessage", chat_id=602, text="Sure?", reply_markup=once)
    assert control(two_bots, "GET", "keyboard", bot=BOT, chat_id=602)[1]["keyboard"] is not None
    control(two_bots, "POST", "send", bot=BOT, user_id=602, text="Yes")
    assert control(two_bots, "GET", "keyboard", bot=BOT, chat_id=602)[1]["keyboard"] is None


@pytest.mark.parametrize(
    ("url", "bot", "text"),
    [
        (f"https://t.me/{STAFF_BOT}?start=Q8M3ZK7TRA", STAFF_BOT, "/start Q8M3ZK7TRA"),
        (f"t.me/{STAFF_BOT.lower()}?start=Q8M3ZK7TRA", STAFF_BOT, "/start Q8M3ZK7TRA"),
        (f"https://t.me/{BOT}?start=K7QX3MPR2A", BOT, "/start K7QX3MPR2A"),
        (f"https://t.me/{BOT}", BOT, "/start"),
    ],
)
def test_a_deep_link_goes_to_the_bot_it_names(two_bots, url, bot, text):
    status, opened = control(two_bots, "POST", "open_link", user_id=602, url=url)

    assert status == 200, opened
    assert (opened["bot"], opened["text"]) == (bot, text)
    token, other = (STAFF_TOKEN, TOKEN) if bot == STAFF_BOT else (TOKEN, STAFF_TOKEN)
    assert [u["message"]["text"] for u in updates(two_bots, token)] == [text]
    assert updates(two_bots, other) == []


@pytest.mark.parametrize(
    ("url", "status"),
    [("https://example.com/?start=X", 400), ("hello", 400), ("https://t.me/NoSuchBot?start=X", 404), (None, 400)],
)
def test_a_link_to_no_known_bot_is_refused(two_bots, url, status):
    assert control(two_bots, "POST", "open_link", user_id=602, url=url)[0] == status


def test_unread_counts_until_read_and_survive_looking_elsewhere(two_bots):
    emu = EmulatorClient(two_bots.url)
    emu.create_user(603, "Olga", language_code="en")
    for text in ("one", "two"):
        bot_call(two_bots, STAFF_TOKEN, "sendMessage", chat_id=603, text=text)
    bot_call(two_bots, TOKEN, "sendMessage", chat_id=602, text="for Ann")

    assert control(two_bots, "GET", "unread", user_id=603)[1] == {BOT: 0, STAFF_BOT: 2}
    # Ann's chats are read meanwhile: Olga's count is hers alone.
    control(two_bots, "POST", "read", bot=BOT, user_id=602)
    assert control(two_bots, "GET", "unread", user_id=602)[1] == {BOT: 0, STAFF_BOT: 0}
    assert control(two_bots, "GET", "unread", user_id=603)[1][STAFF_BOT] == 2

    status, read = control(two_bots, "POST", "read", bot=STAFF_BOT, user_id=603)
    assert status == 200 and read["read_up_to"] == 2
    assert control(two_bots, "GET", "unread", user_id=603)[1][STAFF_BOT] == 0
    bot_call(two_bots, STAFF_TOKEN, "sendMessage", chat_id=603, text="three")
    assert control(two_bots, "GET", "unread", user_id=603)[1][STAFF_BOT] == 1

    control(two_bots, "POST", "reset")
    assert control(two_bots, "GET", "unread", user_id=603)[1] == {BOT: 0, STAFF_BOT: 0}
