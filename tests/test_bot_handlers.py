"""The customer bot's handlers, offline: fabricated updates through `process_new_updates`, Telegram calls captured."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update
from telebot import TeleBot, apihelper
from telebot.types import Update

from bot import handlers, keyboards, texts
from models import CodeAttempt, Customer, Order, OutboxMessage, db, utcnow
from services import customers, linking, orders

TOKEN = "1234:test-token-for-offline-handler-tests"


class FakeTelegram:
    """Stands in for the Bot API: records every call and answers like Telegram would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.message_ids = itertools.count(100)
        self.fail: dict[str, dict[str, Any]] = {}  # method → error body to answer with

    def __call__(self, method: str, url: str, params: dict | None = None, **kw: Any) -> Any:
        name = urlsplit(url).path.rsplit("/", 1)[-1]
        params = dict(params or {})
        self.calls.append((name, params))
        if name in self.fail:
            return _Response(self.fail[name]["error_code"], {"ok": False, **self.fail[name]})
        if name in ("sendMessage", "editMessageText", "editMessageReplyMarkup"):
            chat = int(params.get("chat_id", 0))
            message_id = int(params["message_id"]) if "message_id" in params else next(self.message_ids)
            chat_json = {"id": chat, "type": "private"}
            result: Any = {"message_id": message_id, "date": 1, "chat": chat_json, "text": params.get("text", "")}
        else:
            result = True
        return _Response(200, {"ok": True, "result": result})

    def of(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    def texts(self) -> list[str]:
        return [p["text"] for p in self.of("sendMessage")]


class _Response:
    def __init__(self, status: int, body: dict) -> None:
        self.status_code = status
        self._body = body
        self.text = json.dumps(body)
        self.reason = "OK" if status == 200 else "Error"

    def json(self) -> dict:
        return self._body


@pytest.fixture
def telegram(monkeypatch) -> FakeTelegram:
    fake = FakeTelegram()
    monkeypatch.setattr(apihelper, "CUSTOM_REQUEST_SENDER", fake)
    monkeypatch.setattr(apihelper, "API_URL", "https://telegram.invalid/bot{0}/{1}")
    return fake


@pytest.fixture
def bot(app, telegram) -> TeleBot:
    instance = TeleBot(TOKEN, threaded=False)
    handlers.register_handlers(instance, app)
    return instance


_update_ids = itertools.count(1)


def user(user_id: int, language_code: str | None = "en") -> dict:
    data = {"id": user_id, "is_bot": False, "first_name": "Anna"}
    if language_code:
        data["language_code"] = language_code
    return data


def message(user_id: int, text: str, language_code: str | None = "en") -> Update:
    body: dict[str, Any] = {
        "message_id": next(_update_ids),
        "date": 1,
        "chat": {"id": user_id, "type": "private"},
        "from": user(user_id, language_code),
        "text": text,
    }
    if text.startswith("/"):
        body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return Update.de_json({"update_id": next(_update_ids), "message": body})


def press(user_id: int, message_id: int, data: str, reply_markup: dict | None = None) -> Update:
    msg: dict[str, Any] = {"message_id": message_id, "date": 1, "chat": {"id": user_id, "type": "private"}, "text": "…"}
    if reply_markup:
        msg["reply_markup"] = reply_markup
    return Update.de_json(
        {
            "update_id": next(_update_ids),
            "callback_query": {
                "id": f"q{next(_update_ids)}",
                "from": user(user_id),
                "chat_instance": "1",
                "data": data,
                "message": msg,
            },
        }
    )


def member(user_id: int, old: str, new: str) -> Update:
    bot_user = {"id": 1234, "is_bot": True, "first_name": "Bot"}
    return Update.de_json(
        {
            "update_id": next(_update_ids),
            "my_chat_member": {
                "chat": {"id": user_id, "type": "private"},
                "from": user(user_id),
                "date": 1,
                "old_chat_member": {"user": bot_user, "status": old},
                "new_chat_member": {"user": bot_user, "status": new},
            },
        }
    )


def issue(app) -> str:
    with app.app_context():
        return linking.issue().code


def linked(app, user_id: int, language_code: str = "en") -> None:
    with app.app_context():
        linking.claim(linking.issue().code, user_id, user_id)
        customer = db.session.scalar(select(Customer).where(Customer.telegram_user_id == user_id))
        customer.language_code = language_code
        db.session.commit()


def sent_status(app, user_id: int, order_id: str, status: str, message_id: int, has_button: bool = True) -> int:
    """Record a status and pretend the delivery job sent it as `message_id`; returns the order's pk."""
    with app.app_context():
        orders.record_status(user_id, "cafe-1", order_id, status)
        row = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()))
        row.state, row.telegram_message_id, row.has_button, row.sent_at = "sent", message_id, has_button, utcnow()
        db.session.commit()
        return row.order_pk


# --- linking ----------------------------------------------------------------------------------------


def test_start_with_a_code_links_the_user(app, bot, telegram):
    code = issue(app)
    bot.process_new_updates([message(501, f"/start {code}")])
    assert telegram.texts() == [texts.EN.linked]
    with app.app_context():
        assert linking.verification_status(code) == (code, 501)


def test_start_without_payload_asks_an_unknown_user_for_the_code_in_russian(bot, telegram):
    bot.process_new_updates([message(502, "/start", language_code=None)])
    assert telegram.texts() == [texts.RU.ask_code]


@pytest.mark.parametrize("typed", ["{code}", "  {code}  ", "{lower}"])
def test_a_typed_code_links_too(app, bot, telegram, typed):
    code = issue(app)
    bot.process_new_updates([message(503, typed.format(code=code, lower=code.lower()))])
    assert telegram.texts() == [texts.EN.linked]


def test_wrong_codes_are_counted_and_the_sixth_is_not_looked_up(app, bot, telegram, monkeypatch):
    for n in range(5):
        bot.process_new_updates([message(504, f"NOSUCHCODE{n}")])
    assert telegram.texts() == [texts.EN.unknown_code] * 5
    looked_up = []
    monkeypatch.setattr(linking, "claim", lambda *a, **k: looked_up.append(a))
    bot.process_new_updates([message(504, issue(app))])
    assert telegram.texts()[-1] == texts.EN.too_many_codes
    assert looked_up == []


def test_wrong_codes_of_many_users_refuse_every_code_for_a_minute(app, bot, telegram, monkeypatch, caplog):
    """The limit across users: WRONG_CODES_PER_MINUTE wrong codes from anyone, then even a right one is refused."""
    assert app.config["WRONG_CODES_PER_MINUTE"] == 30  # the default
    app.config["WRONG_CODES_PER_MINUTE"] = 8
    monkeypatch.setattr(linking, "_busy_logged_at", 0.0)  # this process has not warned yet
    for guesser in range(8):  # eight users, one wrong code each: each far below their own limit of 5
        bot.process_new_updates([message(700 + guesser, f"NOSUCHCODE{guesser}")])
    assert telegram.texts() == [texts.EN.unknown_code] * 8

    code = issue(app)
    with caplog.at_level("WARNING", logger="services.linking"):
        bot.process_new_updates([message(720, code)])
        bot.process_new_updates([message(721, "NOSUCHCODE9", language_code="ru")])
        bot.process_new_updates([message(720, f"/start {code}")])
    assert telegram.texts()[8:] == [texts.EN.codes_busy, texts.RU.codes_busy, texts.EN.codes_busy]
    assert texts.EN.codes_busy == "⏳ Too many code attempts right now. Please try again in a minute."
    warnings = [r.getMessage() for r in caplog.records if "limit across users" in r.getMessage()]
    assert len(warnings) == 1 and "8 wrong codes in the last minute" in warnings[0]  # one line, not one per attempt
    with app.app_context():
        assert linking.verification_status(code).user_id is None  # the right code was not even looked at
        assert linking.wrong_codes(721) == (0, 8)  # refused attempts are not counted

        # A minute later the guesses no longer count: the code goes through.
        db.session.execute(update(CodeAttempt).values(created_at=CodeAttempt.created_at - timedelta(seconds=61)))
        db.session.commit()
    bot.process_new_updates([message(720, code)])
    assert telegram.texts()[-1] == texts.EN.linked


def test_the_limit_across_users_can_be_turned_off(app, bot, telegram):
    app.config["WRONG_CODES_PER_MINUTE"] = 0
    for guesser in range(40):
        bot.process_new_updates([message(730 + guesser, f"NOSUCHCODE{guesser}")])
    bot.process_new_updates([message(799, issue(app))])
    assert telegram.texts() == [texts.EN.unknown_code] * 40 + [texts.EN.linked]


def test_a_code_used_by_someone_else_is_refused(app, bot, telegram):
    code = issue(app)
    bot.process_new_updates([message(505, code)])
    bot.process_new_updates([message(506, code)])
    assert telegram.texts() == [texts.EN.linked, texts.EN.used_code]


def test_text_that_is_not_a_code_gets_a_hint_and_is_not_counted(app, bot, telegram):
    for _ in range(6):
        bot.process_new_updates([message(507, "hello!")])
    assert telegram.texts() == [texts.EN.ask_code] * 6
    with app.app_context():
        assert not linking.too_many_wrong_codes(507)


# --- reachable or not --------------------------------------------------------------------------------


def reachability(api, user_id: int) -> tuple[bool, bool, str | None]:
    body = api.get(f"/subscribe-status?user_id={user_id}").get_json()
    return body["subscribed"], body["reachable"], body["reason"]


def test_a_code_typed_in_the_bot_proves_the_chat(app, api, bot, telegram):
    code = issue(app)
    bot.process_new_updates([message(540, f"/start {code}")])
    assert reachability(api, 540) == (True, True, None)


@pytest.mark.parametrize("first_words", ["/start", "/help", "hello", "NOSUCHCODE1"])
def test_a_user_linked_through_the_api_is_reachable_once_they_write_to_the_bot(app, api, bot, telegram, first_words):
    code = issue(app)
    assert api.post("/enter_key_from_user/", json={"telegram_user_id": 541, "verification_code": code}).status_code == 200
    assert reachability(api, 541) == (False, False, "never_started")
    bot.process_new_updates([message(541, first_words)])
    assert reachability(api, 541) == (True, True, None)


def test_restarting_the_bot_makes_a_user_reachable(app, api, bot, telegram):
    code = issue(app)
    api.post("/enter_key_from_user/", json={"telegram_user_id": 542, "verification_code": code})
    bot.process_new_updates([member(542, "kicked", "member")])
    assert reachability(api, 542) == (True, True, None)
    bot.process_new_updates([member(542, "member", "kicked")])
    assert reachability(api, 542) == (False, False, "blocked")
    with app.app_context():
        assert customers.subscribe_status(542).is_bot_blocked


# --- the safety net ---------------------------------------------------------------------------------


def test_a_crashing_handler_apologises_and_polling_goes_on(app, bot, telegram, monkeypatch, caplog):
    def boom(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(linking, "claim", boom)
    bot.process_new_updates([message(508, "ABCDEFGH23")])  # must not raise
    assert telegram.texts() == [texts.EN.apology]
    assert "handler on_text failed (user 508)" in caplog.text and "database on fire" in caplog.text
    bot.process_new_updates([message(508, "/start")])
    assert telegram.texts()[-1] == texts.EN.ask_code


def test_a_crashing_button_handler_still_answers_the_callback(app, bot, telegram, monkeypatch):
    monkeypatch.setattr(handlers.status_card, "pressed", lambda *a: 1 / 0)
    bot.process_new_updates([press(509, 7, "c:1")])
    (answer,) = telegram.of("answerCallbackQuery")
    assert answer["text"] == texts.EN.apology_short and answer["show_alert"] is True


def test_even_a_failing_apology_does_not_escape(app, bot, telegram, monkeypatch):
    monkeypatch.setattr(linking, "wrong_codes", lambda *a: 1 / 0)
    telegram.fail["sendMessage"] = {"error_code": 502, "description": "Bad Gateway"}
    bot.process_new_updates([message(510, "ABCDEFGH23")])


# --- blocked or not ---------------------------------------------------------------------------------


def test_my_chat_member_records_blocked_and_back(app, bot, telegram):
    linked(app, 511)
    bot.process_new_updates([member(511, "member", "kicked")])
    with app.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.telegram_user_id == 511))
        assert customer.is_blocked and customer.blocked_at is not None
    bot.process_new_updates([member(511, "kicked", "member")])
    with app.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.telegram_user_id == 511))
        assert not customer.is_blocked and customer.unblocked_at is not None
    assert telegram.calls == []  # nothing is said to someone who just blocked or restarted


def test_start_takes_a_blocked_user_back_and_lists_active_orders(app, bot, telegram):
    linked(app, 512)
    sent_status(app, 512, "<A&1>", "accepted", 40)
    bot.process_new_updates([member(512, "member", "kicked")])
    bot.process_new_updates([message(512, "/start")])
    (text,) = telegram.texts()
    assert text.startswith(texts.EN.welcome_back)
    assert "<b>&lt;A&amp;1&gt;</b> · cafe-1" in text  # ids escaped for HTML
    with app.app_context():
        assert not db.session.scalar(select(Customer.is_blocked).where(Customer.telegram_user_id == 512))


# --- the cancel button ------------------------------------------------------------------------------


def cancel_markup(order_pk: int) -> dict:
    return json.loads(keyboards.cancel(texts.EN, order_pk).to_json())


def test_cancel_asks_for_confirmation_then_requests_the_cancel(app, bot, telegram):
    linked(app, 513)
    pk = sent_status(app, 513, "A-1", "preparing", 41)
    bot.process_new_updates([press(513, 41, f"c:{pk}", cancel_markup(pk))])
    (edit,) = telegram.of("editMessageText")
    assert "Cancel order A-1?" in edit["text"]
    assert [b["callback_data"] for b in json.loads(edit["reply_markup"])["inline_keyboard"][0]] == [f"cy:{pk}", f"cn:{pk}"]
    assert telegram.of("answerCallbackQuery")[-1].get("text") is None

    bot.process_new_updates([press(513, 41, f"cy:{pk}")])
    edit = telegram.of("editMessageText")[-1]
    assert "Cancellation requested." in edit["text"] and "reply_markup" not in edit
    assert telegram.of("answerCallbackQuery")[-1]["text"] == texts.EN.toast_cancel_requested
    with app.app_context():
        order = db.session.get(Order, pk)
        assert order.cancel_requested_at is not None
        assert db.session.scalar(select(OutboxMessage.has_button).where(OutboxMessage.telegram_message_id == 41)) is False


def test_no_keeps_the_order_and_brings_the_button_back(app, bot, telegram):
    linked(app, 514)
    pk = sent_status(app, 514, "A-2", "accepted", 42)
    bot.process_new_updates([press(514, 42, f"cn:{pk}")])
    edit = telegram.of("editMessageText")[-1]
    assert texts.EN.cancel_hint in edit["text"]
    assert json.loads(edit["reply_markup"]) == cancel_markup(pk)
    assert telegram.of("answerCallbackQuery")[-1]["text"] == texts.EN.toast_kept
    with app.app_context():
        assert db.session.get(Order, pk).cancel_requested_at is None


def test_a_late_press_is_refused_with_an_alert_and_the_button_goes(app, bot, telegram):
    linked(app, 515)
    pk = sent_status(app, 515, "A-3", "preparing", 43)
    sent_status(app, 515, "A-3", "ready", 44, has_button=False)
    bot.process_new_updates([press(515, 43, f"cy:{pk}", cancel_markup(pk))])
    answer = telegram.of("answerCallbackQuery")[-1]
    assert answer["text"] == texts.EN.alert_too_late and answer["show_alert"] is True
    assert telegram.of("editMessageReplyMarkup")[-1]["message_id"] == 43
    with app.app_context():
        assert db.session.get(Order, pk).cancel_requested_at is None


def test_a_stale_button_on_an_older_message_points_to_the_newest(app, bot, telegram):
    linked(app, 516)
    pk = sent_status(app, 516, "A-4", "created", 45)
    sent_status(app, 516, "A-4", "accepted", 46)
    bot.process_new_updates([press(516, 45, f"c:{pk}", cancel_markup(pk))])
    assert telegram.of("answerCallbackQuery")[-1]["text"] == texts.EN.alert_use_latest
    assert telegram.of("editMessageReplyMarkup")[-1]["message_id"] == 45


@pytest.mark.parametrize("data", ["", "garbage", "c:", "c:0", "c:abc", "cy:1:2", "x:1", "c:99999999999999999999", " c:1"])
def test_garbage_callback_data_changes_nothing(app, bot, telegram, data):
    linked(app, 517)
    sent_status(app, 517, "A-5", "created", 47)
    bot.process_new_updates([press(517, 47, data)])
    (answer,) = telegram.of("answerCallbackQuery")
    assert answer["text"] == texts.EN.alert_invalid and answer["show_alert"] is True
    assert telegram.of("editMessageText") == telegram.of("editMessageReplyMarkup") == []


def test_another_users_order_cannot_be_cancelled(app, bot, telegram):
    linked(app, 518)
    linked(app, 519)
    pk = sent_status(app, 518, "A-6", "created", 48)
    sent_status(app, 519, "B-6", "created", 48)  # Eve has a message with the same id in her own chat
    bot.process_new_updates([press(519, 48, f"cy:{pk}")])
    assert telegram.of("answerCallbackQuery")[-1]["text"] == texts.EN.alert_invalid
    assert telegram.of("editMessageText") == telegram.of("editMessageReplyMarkup") == []
    with app.app_context():
        assert db.session.get(Order, pk).cancel_requested_at is None


def test_a_cancel_request_takes_every_keyboard_of_the_order_off(app, bot, telegram):
    linked(app, 723)
    pk = sent_status(app, 723, "S-3", "created", 61)
    sent_status(app, 723, "S-3", "accepted", 62)  # the keyboard of 61 outlived it (say an edit failed)
    bot.process_new_updates([press(723, 62, f"cy:{pk}")])
    edits = {e["message_id"]: e for e in telegram.of("editMessageText")}
    assert "Cancellation requested." in edits[62]["text"] and "reply_markup" not in edits[62]
    assert "Order placed" in edits[61]["text"] and "reply_markup" not in edits[61]
    assert "until it is ready" not in edits[61]["text"]
    with app.app_context():
        assert db.session.scalars(select(OutboxMessage.has_button).where(OutboxMessage.order_pk == pk)).all() == [False, False]


def test_no_on_an_older_message_keeps_the_order_without_bringing_its_button_back(app, bot, telegram):
    linked(app, 724)
    pk = sent_status(app, 724, "S-4", "created", 63)
    sent_status(app, 724, "S-4", "accepted", 64)
    bot.process_new_updates([press(724, 63, f"cn:{pk}")])
    edit = telegram.of("editMessageText")[-1]
    assert edit["message_id"] == 63 and "reply_markup" not in edit and "until it is ready" not in edit["text"]
    assert telegram.of("answerCallbackQuery")[-1]["text"] == texts.EN.toast_kept
    with app.app_context():
        assert db.session.scalar(select(OutboxMessage.has_button).where(OutboxMessage.telegram_message_id == 63)) is False


def test_a_pressed_card_is_drawn_in_the_customers_language_whatever_the_client_says(app, bot, telegram):
    linked(app, 725, language_code="ru")  # the press comes from a client set to English
    pk = sent_status(app, 725, "S-5", "created", 65)
    bot.process_new_updates([press(725, 65, f"c:{pk}")])
    edit = telegram.of("editMessageText")[-1]
    assert "Отменить заказ S-5?" in edit["text"]
    assert [b["text"] for b in json.loads(edit["reply_markup"])["inline_keyboard"][0]] == ["Да, отменить", "Нет"]


# --- texts and keyboards ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code,lang", [(None, "ru"), ("", "ru"), ("ru", "ru"), ("uk", "ru"), ("en", "en"), ("en-GB", "en"), ("EN", "en")]
)
def test_language_is_english_for_en_and_russian_otherwise(code, lang):
    assert texts.for_language(code).lang == lang


def test_every_status_has_a_text_in_both_languages():
    for catalog in texts.CATALOGS.values():
        assert set(catalog.statuses) == set(orders.STATUSES)


def test_status_messages_escape_what_the_backend_sent():
    text = texts.EN.status_message("<b>1</b>", "cafe&co", "accepted", "Table <5>", texts.Footer.HINT)
    assert "&lt;b&gt;1&lt;/b&gt;" in text and "cafe&amp;co" in text and "Table &lt;5&gt;" in text


@pytest.mark.parametrize("data,parsed", [("c:1", ("c", 1)), ("cy:42", ("cy", 42)), ("cn:9223372036854775807", ("cn", 2**63 - 1))])
def test_callback_data_we_make_parses(data, parsed):
    assert keyboards.parse(data) == parsed


@pytest.mark.parametrize("data", [None, "", "c", "c:", "c:0", "c:01", "c:-1", "c:1 ", "cc:1", "c:9223372036854775808", "c:1\n"])
def test_anything_else_does_not(data):
    assert keyboards.parse(data) is None
