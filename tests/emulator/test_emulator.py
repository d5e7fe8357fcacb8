"""Telegram Bot API emulator: driven by a real telebot.TeleBot and by plain HTTP requests."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import telebot
from telebot import apihelper, types
from telebot.apihelper import ApiTelegramException

from devtools.tg_emulator import EmulatorClient, EmulatorError, EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
# Built at runtime so that nothing token-shaped sits in the repository.
CUSTOMER = "7100000001:" + "customer".ljust(35, "x")
STAFF = "7100000002:" + "staff".ljust(35, "y")
OTHER = "7100000099:" + "other".ljust(35, "z")
USER = 501


@pytest.fixture(scope="module")
def server():
    srv = EmulatorServer(bots={"cafe_bot": CUSTOMER, "staff_bot": STAFF}).start()
    yield srv
    srv.stop()


@pytest.fixture
def emu(server):
    client = EmulatorClient(server.url)
    client.reset()
    client.create_user(USER, "Ann", username="ann", language_code="en")
    yield client
    client.close()


@pytest.fixture
def tb(server, emu, monkeypatch):
    monkeypatch.setattr(apihelper, "API_URL", server.api_url)
    return telebot.TeleBot(CUSTOMER, threaded=False)


def call(server, token, method, **params):
    """A Bot API call with every parameter in the query string, like pyTelegramBotAPI does."""
    r = requests.post(f"{server.url}/bot{token}/{method}", params=params, timeout=10)
    return r.status_code, r.json()


def updates(tb, **kw):
    # telebot replaces a long_polling_timeout of 0 by its 10 s default: use a tiny one instead.
    return tb.get_updates(timeout=5, long_polling_timeout=kw.pop("long_polling_timeout", 0.05), **kw)


def inline(*buttons):
    kb = types.InlineKeyboardMarkup()
    kb.add(*(types.InlineKeyboardButton(text, callback_data=data) for text, data in buttons))
    return kb


# ---------------------------------------------------------------- identity


def test_get_me_usernames_and_unauthorized(server, tb):
    me = tb.get_me()
    assert (me.id, me.username, me.is_bot) == (7100000001, "cafe_bot", True)
    assert call(server, OTHER, "getMe")[1]["result"]["username"] == "emu_7100000099_bot"
    bad = {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert call(server, "123:short", "getMe") == (401, bad)
    # A configured bot id only accepts its own secret.
    assert call(server, "7100000001:" + "w" * 35, "getMe") == (401, bad)


def test_method_names_case_insensitive_and_unknown_method(server, emu):
    assert call(server, CUSTOMER, "GETME")[0] == 200
    status, body = call(server, CUSTOMER, "sendPigeon")
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})
    assert emu.stats("cafe_bot")["calls"] == {"getMe": 1, "sendPigeon": 1}


def test_bots_list_never_shows_tokens(server, emu):
    call(server, OTHER, "getMe")
    listed = emu.bots()
    assert {"id": 7100000001, "username": "cafe_bot", "configured": True} in listed
    assert {"id": 7100000099, "username": "emu_7100000099_bot", "configured": False} in listed
    assert CUSTOMER.split(":")[1] not in json.dumps(listed)
    # Bots can be named by username, @username, token or id on the control side.
    for ref in ("cafe_bot", "@CAFE_BOT", CUSTOMER, "7100000001"):
        assert emu.stats(ref)["sent"] == 0
    with pytest.raises(EmulatorError) as err:
        emu.stats("7100000001:" + "q" * 35)
    assert err.value.status == 404 and "q" * 35 not in str(err.value)


# ----------------------------------------------------------- conversation


def test_start_command_update_then_reply_with_keyboard(tb, emu):
    sent = emu.send("cafe_bot", USER, "/start ABC")
    [update] = updates(tb)
    assert update.update_id == sent["update_id"]
    msg = update.message
    assert (msg.text, msg.chat.id, msg.from_user.username) == ("/start ABC", USER, "ann")
    assert msg.message_id == sent["message_id"]
    assert [(e.type, e.offset, e.length) for e in msg.entities] == [("bot_command", 0, 6)]

    reply = tb.send_message(USER, "Order <b>#12</b> is ready", parse_mode="HTML", reply_markup=inline(("Got it", "ack:12")))
    assert reply.message_id == msg.message_id + 1  # same per-chat sequence as the user's message
    assert reply.text == "Order #12 is ready"
    assert [(e.type, e.offset, e.length) for e in reply.entities] == [("bold", 6, 3)]
    assert reply.from_user.is_bot and reply.chat.type == "private"

    [record] = emu.messages("cafe_bot", USER)
    assert record["text"] == "Order <b>#12</b> is ready" and record["plain_text"] == "Order #12 is ready"
    assert record["parse_mode"] == "HTML" and record["deleted"] is False and record["edits"] == []
    assert abs(record["received_at"] - time.time()) < 5
    assert EmulatorClient.buttons(record) == [("Got it", "ack:12")]
    conversation = [(m["from"], m["message_id"]) for m in emu.chat("cafe_bot", USER)]
    assert conversation == [("user", msg.message_id), ("bot", reply.message_id)]


def test_press_button_and_answer_callback(tb, emu):
    msg = tb.send_message(USER, "Ready?", reply_markup=inline(("Yes", "yes"), ("No", "no")))
    pressed = emu.press("cafe_bot", USER, msg.message_id, button_text="No")
    [update] = updates(tb)
    query = update.callback_query
    assert (query.id, query.data, query.from_user.id) == (pressed["callback_query_id"], "no", USER)
    assert query.message.message_id == msg.message_id and query.message.text == "Ready?"
    assert query.chat_instance

    assert tb.answer_callback_query(query.id, "Noted", show_alert=True) is True
    [answer] = emu.callback_answers("cafe_bot", query.id)
    assert (answer["text"], answer["show_alert"], answer["data"]) == ("Noted", True, "no")
    # A query is answered once; unknown ids are "too old" as well.
    for query_id in (query.id, "123"):
        with pytest.raises(ApiTelegramException) as err:
            tb.answer_callback_query(query_id)
        assert err.value.description == ("Bad Request: query is too old and response timeout expired or query ID is invalid")


def test_press_refuses_missing_buttons_unless_forced(tb, emu):
    msg = tb.send_message(USER, "Pick", reply_markup=inline(("A", "a")))
    with pytest.raises(EmulatorError) as err:
        emu.press("cafe_bot", USER, msg.message_id, callback_data="b")
    assert err.value.status == 400 and "no inline button" in err.value.message
    with pytest.raises(EmulatorError):
        emu.press("cafe_bot", USER, 999, callback_data="a")
    tb.edit_message_reply_markup(USER, msg.message_id)  # keyboard removed: the button is gone
    with pytest.raises(EmulatorError):
        emu.press("cafe_bot", USER, msg.message_id, callback_data="a")

    emu.press("cafe_bot", USER, msg.message_id, callback_data="order:1:cancel'--", force=True)
    emu.press("cafe_bot", USER, 999, callback_data="x", force=True)
    first, second = updates(tb)
    assert first.callback_query.data == "order:1:cancel'--"
    assert isinstance(second.callback_query.message, types.InaccessibleMessage)


def test_callback_query_expires(tb, emu):
    emu.limits(callback_ttl=0.1)
    msg = tb.send_message(USER, "Pick", reply_markup=inline(("A", "a")))
    query_id = emu.press("cafe_bot", USER, msg.message_id, callback_data="a")["callback_query_id"]
    time.sleep(0.15)
    with pytest.raises(ApiTelegramException) as err:
        tb.answer_callback_query(query_id)
    assert err.value.error_code == 400


def test_polling_bot_end_to_end(server, tb, emu):
    """A real TeleBot with handlers, long-polling in a thread, like the project's bot process."""

    @tb.message_handler(commands=["start"])
    def start(message):
        tb.send_message(message.chat.id, f"Hi {message.from_user.first_name}", reply_markup=inline(("Status", "st")))

    @tb.callback_query_handler(func=lambda q: True)
    def pressed(query):
        tb.answer_callback_query(query.id, "Preparing")
        tb.edit_message_text("Status: preparing", query.message.chat.id, query.message.message_id)

    thread = threading.Thread(
        target=tb.polling, kwargs={"non_stop": True, "interval": 0, "timeout": 5, "long_polling_timeout": 1}
    )
    thread.start()
    try:
        emu.send("cafe_bot", USER, "/start")
        [hello] = emu.wait_for_messages("cafe_bot", USER, 1, timeout=5)
        assert hello["plain_text"] == "Hi Ann"
        emu.press("cafe_bot", USER, hello["message_id"], callback_data="st")
        deadline = time.monotonic() + 5
        while not emu.messages("cafe_bot", USER)[0]["edits"] and time.monotonic() < deadline:
            time.sleep(0.02)
        [edited] = emu.messages("cafe_bot", USER)
        assert edited["text"] == "Status: preparing" and edited["reply_markup"] is None
        assert [e["text"] for e in edited["edits"]] == ["Status: preparing"]
        assert edited["original"]["text"] == "Hi Ann"
        assert emu.callback_answers("cafe_bot")[0]["text"] == "Preparing"
    finally:
        tb.stop_polling()
        thread.join(5)
    assert not thread.is_alive()


def test_edit_semantics(tb, emu):
    msg = tb.send_message(USER, "v1", reply_markup=inline(("A", "a")))
    with pytest.raises(ApiTelegramException) as err:
        tb.edit_message_text("v1", USER, msg.message_id, reply_markup=inline(("A", "a")))
    assert err.value.description == (
        "Bad Request: message is not modified: specified new message content and reply markup are exactly "
        "the same as a current content and reply markup of the message"
    )
    edited = tb.edit_message_text("v2", USER, msg.message_id, reply_markup=inline(("B", "b")))
    assert edited.text == "v2" and edited.edit_date and edited.reply_markup.keyboard[0][0].callback_data == "b"
    tb.edit_message_reply_markup(USER, msg.message_id, reply_markup=inline(("C", "c")))
    tb.edit_message_reply_markup(USER, msg.message_id)  # no markup: keyboard removed
    with pytest.raises(ApiTelegramException):
        tb.edit_message_reply_markup(USER, msg.message_id)  # already without keyboard: not modified
    # Same text with different formatting is a modification.
    tb.edit_message_text("<b>v2</b>", USER, msg.message_id, parse_mode="HTML")
    [record] = emu.messages("cafe_bot", USER)
    assert [e["reply_markup"] for e in record["edits"]] == [
        {"inline_keyboard": [[{"text": "B", "callback_data": "b"}]]},
        {"inline_keyboard": [[{"text": "C", "callback_data": "c"}]]},
        None,
        None,
    ]
    assert record["entities"] == [{"offset": 0, "length": 2, "type": "bold"}]
    assert emu.stats("cafe_bot")["edits"] == 4

    with pytest.raises(ApiTelegramException) as err:
        tb.edit_message_text("x", USER, 999)
    assert err.value.description == "Bad Request: message to edit not found"
    user_msg = emu.send("cafe_bot", USER, "hello")["message_id"]
    with pytest.raises(ApiTelegramException) as err:
        tb.edit_message_text("x", USER, user_msg)
    assert err.value.description == "Bad Request: message can't be edited"


def test_delete_message(tb, emu):
    msg = tb.send_message(USER, "bye")
    assert tb.delete_message(USER, msg.message_id) is True
    with pytest.raises(ApiTelegramException) as err:
        tb.delete_message(USER, msg.message_id)
    assert err.value.description == "Bad Request: message to delete not found"
    with pytest.raises(ApiTelegramException) as err:
        tb.edit_message_text("x", USER, msg.message_id)
    assert err.value.description == "Bad Request: message to edit not found"
    [record] = emu.messages("cafe_bot", USER)
    assert record["deleted"] is True and record["deleted_at"]


def test_chat_not_found_block_unblock_deactivate(server, tb, emu):
    with pytest.raises(ApiTelegramException) as err:
        tb.send_message(777, "hi")
    assert (err.value.error_code, err.value.description) == (400, "Bad Request: chat not found")

    emu.block("cafe_bot", USER)
    with pytest.raises(ApiTelegramException) as err:
        tb.send_message(USER, "hi")
    assert (err.value.error_code, err.value.description) == (403, "Forbidden: bot was blocked by the user")
    # The staff bot is not blocked by the same user.
    assert call(server, STAFF, "sendMessage", chat_id=USER, text="hi")[0] == 200
    with pytest.raises(EmulatorError):
        emu.send("cafe_bot", USER, "hello?")  # a blocked bot cannot be written to

    emu.unblock("cafe_bot", USER, send_start=True)
    blocked, unblocked, start = updates(tb)
    for update, old, new in ((blocked, "member", "kicked"), (unblocked, "kicked", "member")):
        member = update.my_chat_member
        assert (member.old_chat_member.status, member.new_chat_member.status) == (old, new)
        assert member.chat.id == USER and member.new_chat_member.user.username == "cafe_bot"
    assert blocked.my_chat_member.new_chat_member.until_date == 0
    assert start.message.text == "/start"
    tb.send_message(USER, "welcome back")

    emu.deactivate(USER)
    with pytest.raises(ApiTelegramException) as err:
        tb.send_message(USER, "hi")
    assert (err.value.error_code, err.value.description) == (403, "Forbidden: user is deactivated")


def test_text_and_markup_validation(server, tb, emu):
    cases = [
        ({"text": ""}, "Bad Request: message text is empty"),
        ({"text": "x" * 4097}, "Bad Request: message is too long"),
        ({"text": "<b>bold", "parse_mode": "HTML"}, 'Can\'t find end tag corresponding to start tag "b"'),
        ({"text": "<b>x</i>", "parse_mode": "HTML"}, 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ({"text": "a<br>b", "parse_mode": "HTML"}, 'Unsupported start tag "br" at byte offset 1'),
        ({"text": "x", "reply_markup": "{nope"}, "Bad Request: can't parse reply keyboard markup JSON object"),
        (
            {"text": "x", "reply_markup": json.dumps({"inline_keyboard": [[{"text": "t", "callback_data": "d" * 65}]]})},
            "Bad Request: BUTTON_DATA_INVALID",
        ),
        ({"text": "x", "parse_mode": "Klingon"}, "Bad Request: unsupported parse_mode Klingon"),
    ]
    for params, description in cases:
        status, body = call(server, CUSTOMER, "sendMessage", chat_id=USER, **params)
        assert status == 400 and description in body["description"], (params, body)
    assert tb.send_message(USER, "x" * 4096).text == "x" * 4096
    msg = tb.send_message(USER, '1 &lt; 2 &amp; <a href="https://e.x/?a=1&amp;b=2">link</a> &copy;', parse_mode="HTML")
    assert msg.text == "1 < 2 & link &copy;"
    assert msg.entities[0].type == "text_link" and msg.entities[0].url == "https://e.x/?a=1&b=2"
    assert tb.send_message(USER, "*bold* _it_", parse_mode="MarkdownV2").text == "*bold* _it_"
    assert emu.stats("cafe_bot")["errors"] == {"400": len(cases)}


def test_params_from_form_multipart_and_json_bodies(server, emu):
    url = f"{server.url}/bot{CUSTOMER}/sendMessage"
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    r1 = requests.post(url, data={"chat_id": USER, "text": "form", "reply_markup": json.dumps(markup)}, timeout=5)
    r2 = requests.post(url, json={"chat_id": USER, "text": "json", "reply_markup": markup}, timeout=5)
    r3 = requests.post(url, files={"chat_id": (None, str(USER)), "text": (None, "multipart")}, timeout=5)
    r4 = requests.get(url, params={"chat_id": USER, "text": "get", "disable_notification": "True"}, timeout=5)
    for r in (r1, r2, r3, r4):
        assert r.status_code == 200 and r.json()["ok"], r.text
    assert r2.json()["result"]["reply_markup"] == markup
    records = emu.messages("cafe_bot", USER)
    assert [m["text"] for m in records] == ["form", "json", "multipart", "get"]
    assert records[3]["options"] == {"disable_notification": True}
    r5 = requests.post(url, data="{broken", headers={"Content-Type": "application/json"}, timeout=5)
    assert r5.status_code == 400 and r5.json()["ok"] is False


# --------------------------------------------------------------- updates


def test_get_updates_long_poll_wakes_up_on_update(server, tb, emu):
    threading.Timer(0.2, lambda: emu.send("cafe_bot", USER, "ping")).start()
    started = time.monotonic()
    [update] = tb.get_updates(timeout=10, long_polling_timeout=10)
    assert update.message.text == "ping" and time.monotonic() - started < 2
    started = time.monotonic()
    assert tb.get_updates(offset=update.update_id + 1, timeout=5, long_polling_timeout=0.3) == []
    assert 0.25 < time.monotonic() - started < 2


def test_offset_confirms_and_limit(tb, emu):
    ids = [emu.send("cafe_bot", USER, f"m{i}")["update_id"] for i in range(5)]
    assert [u.update_id for u in updates(tb, limit=2)] == ids[:2]
    assert [u.update_id for u in updates(tb)] == ids  # nothing confirmed yet
    assert [u.update_id for u in updates(tb, offset=ids[3])] == ids[3:]
    assert emu.stats("cafe_bot")["pending_updates"] == 2
    assert [u.update_id for u in updates(tb, offset=-1)] == ids[4:]


def test_allowed_updates_are_remembered(tb, emu):
    assert updates(tb, allowed_updates=["message"]) == []
    msg = tb.send_message(USER, "Pick", reply_markup=inline(("A", "a")))
    assert emu.press("cafe_bot", USER, msg.message_id, callback_data="a")["update_id"] is None
    emu.block("cafe_bot", USER)
    emu.unblock("cafe_bot", USER)
    emu.send("cafe_bot", USER, "text")
    assert [u.message.text for u in updates(tb)] == ["text"]  # setting kept without allowed_updates
    assert emu.stats("cafe_bot")["dropped_updates"] == 3
    updates(tb, allowed_updates=[])  # empty list: back to the default set
    emu.press("cafe_bot", USER, msg.message_id, callback_data="a")
    assert updates(tb)[-1].callback_query.data == "a"


def test_second_poller_gets_conflict(server, emu):
    results = {}

    def first():
        results["first"] = call(server, CUSTOMER, "getUpdates", timeout=5)

    thread = threading.Thread(target=first)
    thread.start()
    time.sleep(0.2)
    assert call(server, CUSTOMER, "getUpdates", timeout=0)[0] == 200
    thread.join(5)
    status, body = results["first"]
    assert status == 409 and body["description"].startswith("Conflict: terminated by other getUpdates request")


def test_webhook_methods(server, tb, emu):
    assert tb.set_webhook("https://example.com/hook") is True
    assert tb.get_webhook_info().url == "https://example.com/hook"
    with pytest.raises(ApiTelegramException) as err:
        updates(tb)
    assert err.value.error_code == 409
    emu.send("cafe_bot", USER, "queued")
    assert tb.delete_webhook(drop_pending_updates=True) is True
    assert updates(tb) == [] and tb.get_webhook_info().url == ""
    assert tb.log_out() is True and tb.close() is True


def test_bots_are_independent(server, tb, emu):
    staff = telebot.TeleBot(STAFF, threaded=False)
    emu.send("cafe_bot", USER, "to customer bot")
    emu.send("staff_bot", USER, "to staff bot")
    assert [u.message.text for u in updates(tb)] == ["to customer bot"]
    assert [u.message.text for u in updates(staff)] == ["to staff bot"]
    # Message ids are per bot and chat: the staff bot continues its own sequence.
    staff_reply = staff.send_message(USER, "staff reply")
    assert staff_reply.message_id == emu.chat("staff_bot", USER)[0]["message_id"] + 1
    assert [m["text"] for m in emu.messages("staff_bot", USER)] == ["staff reply"]
    assert emu.messages("cafe_bot", USER) == []


def test_commands_menu_button_chat_and_action(tb, emu):
    assert tb.set_my_commands([types.BotCommand("start", "Start"), types.BotCommand("orders", "My orders")])
    assert [c.command for c in tb.get_my_commands()] == ["start", "orders"]
    assert tb.get_my_commands(language_code="de") == []
    with pytest.raises(ApiTelegramException):
        tb.set_my_commands([types.BotCommand("Bad-Command", "x")])
    assert tb.delete_my_commands() is True and tb.get_my_commands() == []
    assert tb.set_chat_menu_button(USER, types.MenuButtonCommands(type="commands")) is True
    assert tb.get_chat_menu_button(USER).type == "commands"
    chat = tb.get_chat(USER)
    assert (chat.id, chat.type, chat.first_name, chat.username) == (USER, "private", "Ann", "ann")
    assert tb.send_chat_action(USER, "typing") is True
    with pytest.raises(ApiTelegramException):
        tb.send_chat_action(USER, "dancing")


# ---------------------------------------------------------- rate limiting


def test_rate_limits(server, tb, emu):
    for i in range(5):
        tb.send_message(USER, f"unlimited {i}")  # off by default
    emu.limits(enabled=True)
    for i in range(3):
        last = tb.send_message(USER, f"burst {i}")  # the per-chat burst of 3...
    with pytest.raises(ApiTelegramException) as err:
        tb.send_message(USER, "one too many")  # ...then 1/s
    assert err.value.error_code == 429
    retry_after = err.value.result_json["parameters"]["retry_after"]
    assert 1 <= retry_after <= 3 and err.value.description == f"Too Many Requests: retry after {retry_after}"
    tb.edit_message_text("edits are not limited", USER, last.message_id)

    assert emu.stats("cafe_bot")["rate_limited_429"] == 1

    # The per-bot limit, on another bot (its own window), across 5 chats.
    emu.limits(global_per_second=4, per_chat_per_second=100)
    for uid in range(601, 606):
        emu.create_user(uid, "Guest")
    status = [call(server, OTHER, "sendMessage", chat_id=uid, text="x")[0] for uid in range(601, 606)]
    assert status == [200, 200, 200, 200, 429]
    stats = emu.stats(OTHER)
    assert stats["rate_limited_429"] == 1 and stats["errors"] == {"429": 1} and stats["sent"] == 4
    emu.limits(enabled=False)  # switchable at runtime
    assert call(server, OTHER, "sendMessage", chat_id=601, text="x")[0] == 200


# --------------------------------------------------------- fault injection


def test_injected_errors(server, tb, emu):
    emu.faults("429", bot="cafe_bot", method="sendMessage", count=2, retry_after=7)
    for _ in range(2):
        with pytest.raises(ApiTelegramException) as err:
            tb.send_message(USER, "x")
        assert err.value.error_code == 429 and err.value.result_json["parameters"] == {"retry_after": 7}
    tb.send_message(USER, "third time lucky")
    assert tb.get_me()  # other methods were never affected

    emu.faults("403", method="sendmessage")
    emu.faults("500", method="getMe")
    emu.faults("502", method="getMe")
    with pytest.raises(ApiTelegramException) as err:
        tb.send_message(USER, "x")
    assert err.value.description == "Forbidden: bot was blocked by the user"
    for code, description in ((500, "Internal Server Error"), (502, "Bad Gateway")):
        with pytest.raises(ApiTelegramException) as err:
            tb.get_me()
        assert (err.value.error_code, err.value.description) == (code, description)
    emu.faults("502_html", method="getMe")
    with pytest.raises(apihelper.ApiHTTPException):
        tb.get_me()
    stats = emu.stats("cafe_bot")
    assert stats["faults_injected"] == 6 and stats["sent"] == 1 and emu.list_faults() == []


def test_fault_filters_by_chat_and_bot(server, emu):
    emu.create_user(502, "Bob")
    emu.faults("500", bot="staff_bot", count=5)
    emu.faults("403", chat_id=502, count=1)
    assert call(server, CUSTOMER, "sendMessage", chat_id=USER, text="ok")[0] == 200
    assert call(server, CUSTOMER, "sendMessage", chat_id=502, text="blocked")[0] == 403
    assert call(server, STAFF, "getMe")[0] == 500
    assert emu.clear_faults() == {"removed": 1}
    assert call(server, STAFF, "getMe")[0] == 200


def test_slow_drop_and_drop_after(server, tb, emu):
    emu.faults("slow", method="sendMessage", delay=0.3)
    started = time.monotonic()
    tb.send_message(USER, "slow")
    assert time.monotonic() - started >= 0.3

    emu.faults("drop", method="sendMessage")
    with pytest.raises(requests.ConnectionError):
        tb.send_message(USER, "lost")
    emu.faults("drop_after", method="sendMessage")
    with pytest.raises(requests.ConnectionError):
        tb.send_message(USER, "delivered but unacknowledged")
    records = emu.messages("cafe_bot", USER)
    assert [m["text"] for m in records] == ["slow", "delivered but unacknowledged"]
    assert tb.send_message(USER, "the connection pool recovers").message_id == records[-1]["message_id"] + 1


def test_probabilistic_storm_until_cleared(server, emu):
    emu.faults("500", method="getMe", probability=0.5)
    codes = [call(server, CUSTOMER, "getMe")[0] for _ in range(60)]
    assert 10 < codes.count(500) < 50 and codes.count(200) + codes.count(500) == 60
    emu.faults("429", method="getMe", probability=1.0, retry_after=1)
    assert call(server, CUSTOMER, "getMe")[0] in (429, 500)
    emu.clear_faults()
    assert all(call(server, CUSTOMER, "getMe")[0] == 200 for _ in range(10))
    with pytest.raises(EmulatorError):
        emu.faults("teapot")


# ------------------------------------------------------------ control side


def test_wait_for_messages(tb, emu):
    threading.Timer(0.2, lambda: [tb.send_message(USER, f"n{i}") for i in range(2)]).start()
    msgs = emu.wait_for_messages("cafe_bot", USER, count=2, timeout=5)
    assert [m["text"] for m in msgs] == ["n0", "n1"]
    since = msgs[0]["message_id"]
    assert emu.wait_for_messages("cafe_bot", USER, count=1, since_message_id=since, timeout=1)[0]["text"] == "n1"
    with pytest.raises(TimeoutError, match="sent 2 of 3"):
        emu.wait_for_messages("cafe_bot", USER, count=3, timeout=0.2)


def test_reset_keeps_bots_and_update_ids_monotonic(server, tb, emu):
    first = emu.send("cafe_bot", USER, "before")["update_id"]
    last_id = tb.send_message(USER, "msg").message_id
    emu.faults("500", count=10)
    emu.reset()
    assert emu.users() == [] and emu.list_faults() == [] and emu.stats("cafe_bot")["sent"] == 0
    assert emu.messages("cafe_bot", USER) == [] and emu.pending_updates("cafe_bot") == []
    assert tb.get_me().username == "cafe_bot"
    sent = emu.send("cafe_bot", USER, "after")  # auto-creates the user with defaults
    # Ids are never reused: a running bot may still remember (and try to edit) old messages.
    assert sent["update_id"] > first and sent["message_id"] == last_id + 1
    assert emu.users()[0]["first_name"] == f"User {USER}"


def test_stale_offset_from_previous_emulator_run_does_not_lose_updates(tb, emu):
    emu.send("cafe_bot", USER, "fresh")
    [update] = updates(tb, offset=10_000_000)
    assert update.message.text == "fresh" and update.update_id == 10_000_000


def test_control_errors(server, emu):
    r = requests.post(f"{server.url}/control/send", json={"bot": "nobody_bot", "user_id": 1, "text": "x"}, timeout=5)
    assert r.status_code == 404 and "nobody_bot" in r.json()["error"]
    r = requests.get(f"{server.url}/control/send", timeout=5)
    assert r.status_code == 405
    r = requests.post(f"{server.url}/control/users", json={"first_name": "x"}, timeout=5)
    assert r.status_code == 400 and r.json() == {"error": "id is required"}
    assert requests.get(f"{server.url}/nowhere", timeout=5).status_code == 404


def test_tokens_never_logged(server, tb, emu, caplog):
    with caplog.at_level(logging.DEBUG, logger="devtools.tg_emulator"):
        tb.get_me()
        call(server, "42:" + "n" * 35, "sendMessage", chat_id=1, text="x")
        requests.get(f"{server.url}/bot{CUSTOMER}", timeout=5)
    assert "/bot7100000001:***/getMe" in caplog.text
    for secret in (CUSTOMER.split(":")[1], "n" * 35):
        assert secret not in caplog.text


# ---------------------------------------------------------- load and CLI


def test_concurrent_long_polls_and_throughput(server, emu):
    tokens = [f"72000{i:05d}:" + "load".ljust(35, "q") for i in range(50)]

    def poll(token):
        with requests.Session() as s:
            r = s.get(f"{server.url}/bot{token}/getUpdates", params={"timeout": 10}, timeout=15)
            return r.json()["result"][0]["message"]["text"]

    with ThreadPoolExecutor(50) as pool:
        futures = [pool.submit(poll, t) for t in tokens]
        time.sleep(0.3)  # let every poll park
        started = time.monotonic()
        for i, token in enumerate(tokens):
            emu.send(token, USER, f"hello {i}")
        assert [f.result() for f in futures] == [f"hello {i}" for i in range(50)]
    assert time.monotonic() - started < 3

    def burst(n):
        with requests.Session() as s:
            for _ in range(n):
                r = s.post(f"{server.url}/bot{CUSTOMER}/sendMessage", params={"chat_id": USER, "text": "load"}, timeout=5)
                assert r.status_code == 200

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(burst, [50] * 8))
    rate = 400 / (time.monotonic() - started)
    assert emu.stats("cafe_bot")["sent"] == 400
    assert rate > 100, f"{rate:.0f} msgs/s"


def test_cli_subprocess(tmp_path):
    env = {**os.environ, "TG_EMULATOR_BOTS": f"env_bot={STAFF}", "TG_EMULATOR_LOG_LEVEL": "DEBUG"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.tg_emulator", "--port", "0", "--bot", f"cli_bot={CUSTOMER}", "--rate-limit"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("tg-emulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        assert requests.get(f"{url}/bot{CUSTOMER}/getMe", timeout=5).json()["result"]["username"] == "cli_bot"
        assert requests.get(f"{url}/bot{STAFF}/getMe", timeout=5).json()["result"]["username"] == "env_bot"
        assert EmulatorClient(url).limits()["enabled"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "/bot7100000001:***/getMe" in err  # DEBUG request log, masked
    for secret in (CUSTOMER.split(":")[1], STAFF.split(":")[1]):
        assert secret not in out + err


def test_cli_rejects_bad_bot_spec_without_echoing_it():
    secret = "not-a-valid-token-but-secret"
    proc = subprocess.run(
        [sys.executable, "-m", "devtools.tg_emulator", "--port", "0", "--bot", f"x=1:{secret}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert proc.returncode == 2 and secret not in proc.stderr + proc.stdout


def test_stop_answers_pending_long_polls():
    with EmulatorServer(port=0) as srv:
        result = {}
        thread = threading.Thread(target=lambda: result.update(r=call(srv, OTHER, "getUpdates", timeout=30)))
        thread.start()
        time.sleep(0.2)
        started = time.monotonic()
    thread.join(5)
    assert result["r"] == (200, {"ok": True, "result": []}) and time.monotonic() - started < 2


def test_tg_time_becomes_a_date_time_entity(server, emu):
    """Bot API "Date-time entity formatting": <tg-time unix="…" format="…"> → a date_time entity (issue 11)."""
    status, body = call(
        server,
        CUSTOMER,
        "sendMessage",
        chat_id=USER,
        parse_mode="HTML",
        text='Ready by <tg-time unix="1906615800" format="t">12:30</tg-time>',
    )
    assert status == 200, body
    message = body["result"]
    assert message["text"] == "Ready by 12:30"
    assert message["entities"] == [
        {"offset": 9, "length": 5, "type": "date_time", "unix_time": 1906615800, "date_time_format": "t"}
    ]
    status, body = call(server, CUSTOMER, "sendMessage", chat_id=USER, parse_mode="HTML", text='<tg-time unix="1">x</tg-time>')
    assert status == 200 and "date_time_format" not in body["result"]["entities"][0]  # no format: the text as sent
    for text in ('<tg-time unix="1" format="tw">x</tg-time>', '<tg-time format="t">x</tg-time>'):
        status, body = call(server, CUSTOMER, "sendMessage", chat_id=USER, parse_mode="HTML", text=text)
        assert status == 400 and "can't parse entities" in body["description"], body
