"""The customer bot's side of staff dialogs, offline: the customer bot's handlers against the in-process emulator."""

from __future__ import annotations

import json

import pytest
import telebot
from sqlalchemy import select
from telebot import apihelper

from bot.handlers import register_handlers
from devtools.tg_emulator import EmulatorClient, EmulatorServer
from models import DialogMessage, OutboxMessage, db
from services import customers, linking, orders, staff
from services.customers import Profile

CUSTOMER_TOKEN = "7100000011:" + "customer".ljust(35, "x")
BOT = "cafe_bot"
ANNA = 501


@pytest.fixture(scope="module")
def server():
    srv = EmulatorServer(bots={BOT: CUSTOMER_TOKEN}).start()
    yield srv
    srv.stop()


class CustomerBot:
    def __init__(self, app, emu: EmulatorClient) -> None:
        self.app = app
        self.emu = emu
        self.bot = telebot.TeleBot(CUSTOMER_TOKEN, threaded=False)
        register_handlers(self.bot, app)
        self.offset = 0

    def process(self) -> None:
        while updates := self.bot.get_updates(offset=self.offset, timeout=5, long_polling_timeout=0.05):
            self.offset = updates[-1].update_id + 1
            self.bot.process_new_updates(updates)

    def say(self, user_id: int, text: str) -> list[dict]:
        before = max((m["message_id"] for m in self.emu.chat(BOT, user_id)), default=0)
        self.emu.send(BOT, user_id, text)
        self.process()
        return self.emu.messages(BOT, user_id, since_message_id=before)

    def press(self, user_id: int, message: dict, data: str) -> dict:
        query = self.emu.press(BOT, user_id, message["message_id"], callback_data=data, force=True)["callback_query_id"]
        self.process()
        return self.emu.callback_answers(BOT, query)[-1]

    def message(self, user_id: int, message_id: int) -> dict:
        return next(m for m in self.emu.messages(BOT, user_id) if m["message_id"] == message_id)


@pytest.fixture
def cb(app, server, monkeypatch):
    monkeypatch.setattr(apihelper, "API_URL", server.api_url)
    emu = EmulatorClient(server.url)
    emu.reset()
    emu.create_user(ANNA, "Anna", language_code="en")
    yield CustomerBot(app, emu)
    emu.close()


def setup_cafe(app, horeca_id: str, name: str, staff_id: int, order_id: str | None = None) -> None:
    """A horeca with one staff member; Anna (linked) has an active order there if `order_id`."""
    with app.app_context():
        staff.join(staff.issue_code(horeca_id, name).code, staff_id, staff_id, Profile(first_name="Olga"))
        if order_id:
            if customers.find(ANNA) is None:
                linking.claim(linking.issue().code, ANNA, ANNA, Profile(first_name="Anna"))
            orders.record_status(ANNA, horeca_id, order_id, "preparing")


def notices(app, chat_id: int) -> list[dict]:
    with app.app_context():
        rows = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "staff_notice", OutboxMessage.chat_id == chat_id)
        ).all()
        return [json.loads(r.payload) for r in rows]


def test_a_text_with_an_active_order_goes_to_the_staff(cb, app):
    setup_cafe(app, "cafe-1", "Bean There", 9001, order_id="A-1")
    (receipt,) = cb.say(ANNA, "Can I have it without sugar?")
    assert receipt["plain_text"] == "✉️ Sent to Bean There."
    (notice,) = notices(app, 9001)
    assert (notice["customer"], notice["order_id"], notice["text"]) == ("Anna", "A-1", "Can I have it without sugar?")


def test_a_text_without_an_order_or_dialog_gets_the_usual_answer(cb, app):
    setup_cafe(app, "cafe-1", "Bean There", 9001)
    with app.app_context():
        linking.claim(linking.issue().code, ANNA, ANNA, Profile(first_name="Anna"))
    (reply,) = cb.say(ANNA, "hello there")
    assert "Sent to" not in reply["plain_text"]
    assert notices(app, 9001) == []


def test_a_code_is_still_a_code_during_a_dialog(cb, app):
    setup_cafe(app, "cafe-1", "Bean There", 9001, order_id="A-1")
    with app.app_context():
        code = linking.issue().code
    (reply,) = cb.say(ANNA, code)
    assert "Done!" in reply["plain_text"]
    assert notices(app, 9001) == []


def test_two_horecas_ask_which_one(cb, app):
    setup_cafe(app, "cafe-1", "One", 9001, order_id="A-1")
    setup_cafe(app, "cafe-2", "Two", 9002, order_id="A-2")
    (question,) = cb.say(ANNA, "Where is my coffee?")
    assert question["plain_text"] == "Which cafe is this message for?"
    labels = EmulatorClient.buttons(question)
    assert [t for t, _ in labels] == ["One", "Two"]
    assert notices(app, 9001) == notices(app, 9002) == []

    message_id = int(labels[1][1].split(":")[1])
    assert cb.press(ANNA, question, f"dh:{message_id}:000000000000")["show_alert"] is True  # no such horeca
    assert cb.press(ANNA, question, "dh:junk")["show_alert"] is True
    assert cb.press(ANNA, question, labels[1][1])["show_alert"] is False
    assert cb.message(ANNA, question["message_id"])["plain_text"] == "✉️ Sent to Two."
    assert [n["text"] for n in notices(app, 9002)] == ["Where is my coffee?"] and notices(app, 9001) == []
    with app.app_context():
        assert db.session.scalar(select(DialogMessage.horeca_id)) == "cafe-2"


def test_a_customer_who_had_blocked_the_bot_is_back_when_writing(cb, app):
    setup_cafe(app, "cafe-1", "Bean There", 9001, order_id="A-1")
    with app.app_context():
        customers.mark_blocked(ANNA, True)
    assert cb.say(ANNA, "I am back")[0]["plain_text"] == "✉️ Sent to Bean There."
    with app.app_context():
        assert customers.find(ANNA).is_blocked is False
