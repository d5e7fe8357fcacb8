"""The staff group with a topic per customer: the staff bot's handlers and the real delivery worker, against the emulator.

Each test tells one part of the story on SQLite and PostgreSQL: a group code links the group, a customer's
message opens their topic, a staff reply there reaches the customer, a stranger's does not, a deleted topic is
opened again, a group upgraded to a supergroup is followed, missing rights are said in the group and in /healthz,
and the cabinet sees the same conversation.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select
from telebot import apihelper

from bot import telegram
from bot.settings import BotSettings
from bot.staff.handlers import register_staff_handlers
from bot.staff.topics import redraw_headers
from bot.workers.telegram import Delivery
from devtools.tg_emulator import EmulatorClient, EmulatorServer
from models import OutboxMessage, StaffGroup, db
from services import cabinet, conversation, linking, orders, outreach, relay, staff
from services.customers import Profile
from tests.support.openapi import check_response

CUSTOMER_TOKEN = "7100000011:" + "customer".ljust(35, "x")
STAFF_TOKEN = "7100000012:" + "staff".ljust(35, "y")
CAFE_BOT, STAFF_BOT = "cafe_bot", "staff_bot"
OWNER, BARISTA, COLLEAGUE, STRANGER = 9001, 9002, 9003, 9009
ANNA = 501


@pytest.fixture(scope="module")
def server():
    srv = EmulatorServer(bots={CAFE_BOT: CUSTOMER_TOKEN, STAFF_BOT: STAFF_TOKEN}).start()
    yield srv
    srv.stop()


class World:
    """The emulator (people and the group), the staff bot's handlers and the delivery worker of both bots."""

    def __init__(self, app, api, emu: EmulatorClient) -> None:
        self.app, self.api, self.emu = app, api, emu
        self.staff_bot = telegram.build_bot(STAFF_TOKEN)
        register_staff_handlers(self.staff_bot, app)
        settings = BotSettings(
            global_rate=0, per_chat_rate=0, retry_deadline=30, backoff_base=0.05, backoff_max=0.1, request_timeout=2, workers=2
        )
        bots = {"customer": telegram.build_bot(CUSTOMER_TOKEN), "horeca": telegram.build_bot(STAFF_TOKEN)}
        self.delivery = Delivery(app, bots, settings, threading.Event())
        self.offset = 0

    def process(self) -> None:
        """The staff bot handles every update waiting for it."""
        while True:
            updates = self.staff_bot.get_updates(offset=self.offset, timeout=5, long_polling_timeout=0.05)
            if not updates:
                return
            self.offset = updates[-1].update_id + 1
            self.staff_bot.process_new_updates(updates)

    def deliver(self) -> None:
        self.delivery.tick()

    def join_staff(self, user_id: int) -> None:
        with self.app.app_context():
            code = staff.issue_code("cafe-1", "Bean There").code
        self.emu.send(STAFF_BOT, user_id, f"/start {code}")
        self.process()

    def group_code(self) -> str:
        response = self.api.post("/horeca/cafe-1/group-codes", json={})
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        assert body["command"] == f"/link {body['code']}"
        return body["code"]

    def forum(self, admin: bool = True, manage: bool = True, kind: str = "supergroup") -> int:
        """OWNER's group with the staff bot (and BARISTA, COLLEAGUE, STRANGER) in it, linked by a group code."""
        chat_id = self.emu.create_group(OWNER, "Bean There staff", kind=kind)["chat_id"]
        for member in (BARISTA, COLLEAGUE, STRANGER):
            self.emu.set_member(chat_id, member_id=member)
        self.emu.set_member(chat_id, bot=STAFF_BOT, status="administrator" if admin else "member", can_manage_topics=manage)
        self.emu.group_send(chat_id, BARISTA, f"/link {self.group_code()}")
        self.process()
        return chat_id

    def customer_writes(self, text: str, user_id: int = ANNA) -> None:
        with self.app.app_context():
            assert relay.relay_from_customer(user_id, text).outcome == "relayed"

    def said(self, chat_id: int, thread: int | None = None) -> list[str]:
        """What the staff bot wrote in the group (in one topic, or outside topics), oldest first."""
        return [
            m["plain_text"]
            for m in self.emu.group(chat_id)["messages"]
            if m["from"] == "bot" and not m["service"] and not m["deleted"] and m["message_thread_id"] == thread
        ]

    def topics(self, chat_id: int) -> list[dict]:
        return [t for t in self.emu.group(chat_id)["topics"] if not t["deleted"]]

    def to_customer(self, user_id: int = ANNA) -> list[str]:
        return [m["plain_text"] for m in self.emu.messages(CAFE_BOT, user_id) if "Message from" in m["plain_text"]]

    def stored_chat(self) -> int:
        with self.app.app_context():
            return db.session.scalar(select(StaffGroup.chat_id))


@pytest.fixture
def world(app, api, server, monkeypatch):
    for name in ("API_URL", "CUSTOM_REQUEST_SENDER", "CONNECT_TIMEOUT", "READ_TIMEOUT"):
        monkeypatch.setattr(apihelper, name, getattr(apihelper, name))
    telegram.configure_api(server.url, 2.0)
    emu = EmulatorClient(server.url)
    emu.reset()
    for user_id, name in ((OWNER, "Maria"), (BARISTA, "Olga"), (COLLEAGUE, "Ivan"), (STRANGER, "Nobody")):
        emu.create_user(user_id, name, language_code="en")
    emu.create_user(ANNA, "Anna", username="anna", language_code="en")
    with app.app_context():
        linking.claim(linking.issue().code, ANNA, chat_id=ANNA, profile=Profile("Anna", None, "anna", "en"))
        orders.record_status(ANNA, "cafe-1", "12", "preparing")
    w = World(app, api, emu)
    w.join_staff(BARISTA)
    w.join_staff(COLLEAGUE)
    yield w
    w.delivery.close()
    emu.close()


def test_a_group_code_links_the_group_and_a_first_message_opens_the_customers_topic(world):
    chat_id = world.forum()
    assert world.said(chat_id)[-1].startswith("✅ This group is linked to Bean There")
    world.customer_writes("Where is my coffee?")
    world.deliver()
    (topic,) = world.topics(chat_id)
    assert topic["name"] == "Anna (@anna)"
    header, message = world.said(chat_id, topic["message_thread_id"])
    assert header == "👤 Anna (@anna)\nActive orders:\n• #12 — preparing"
    assert message == "Where is my coffee?"
    world.customer_writes("Any news?")
    world.deliver()
    assert len(world.topics(chat_id)) == 1  # one topic per customer
    assert world.said(chat_id, topic["message_thread_id"])[-1] == "Any news?"


def test_a_staff_reply_in_the_topic_reaches_the_customer_and_shows_in_the_cabinet(world):
    chat_id = world.forum()
    world.customer_writes("Where is my coffee?")
    world.deliver()
    thread = world.topics(chat_id)[0]["message_thread_id"]
    world.emu.group_send(chat_id, BARISTA, "On its way!", message_thread_id=thread)
    world.process()
    world.deliver()
    assert world.to_customer() == ["💬 Message from Bean There:\nOn its way!"]
    with world.app.app_context():
        found = conversation.conversation("cafe-1", ANNA)
        assert [(m.direction, m.text, m.staff.name if m.staff else None) for m in found.messages] == [
            ("in", "Where is my coffee?", None),
            ("out", "On its way!", "Olga"),
        ]
        assert found.messages[-1].delivery == "sent"
        # The colleague note of the cabinet covers answers given in the group.
        (item,) = cabinet.list_dialogs(COLLEAGUE).items
        assert item.colleague == "Olga"


def test_a_cabinet_reply_appears_in_the_topic_with_its_author(world):
    chat_id = world.forum()
    world.customer_writes("Where is my coffee?")
    world.deliver()
    with world.app.app_context():
        customer_id = cabinet.list_dialogs(BARISTA).items[0].customer_id
        outreach.reply_to_customer(BARISTA, customer_id)
        outreach.send_to_selected(BARISTA, "Two minutes")
    world.deliver()
    thread = world.topics(chat_id)[0]["message_thread_id"]
    assert world.said(chat_id, thread)[-1] == "↩️ Olga (from the bot):\nTwo minutes"
    assert world.to_customer() == ["💬 Message from Bean There:\nTwo minutes"]


def test_a_strangers_message_in_a_topic_goes_nowhere_and_the_group_is_told_once(world):
    chat_id = world.forum()
    world.customer_writes("Hello")
    world.deliver()
    thread = world.topics(chat_id)[0]["message_thread_id"]
    for text in ("I can answer too", "Still me"):
        world.emu.group_send(chat_id, STRANGER, text, message_thread_id=thread)
        world.process()
    world.deliver()
    said = world.said(chat_id, thread)
    told = [s for s in said if "only staff" in s]
    assert told == ["Nobody, only staff of Bean There can answer customers: Olga, Ivan. Your messages do not reach the customer."]
    assert world.to_customer() == []
    with world.app.app_context():
        assert not db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.bot == "customer", OutboxMessage.kind == "message")
        ).all()


@pytest.mark.parametrize("action", ["delete", "close"])
def test_a_deleted_or_closed_topic_is_opened_again_on_the_next_message(world, action):
    chat_id = world.forum()
    world.customer_writes("First")
    world.deliver()
    old = world.topics(chat_id)[0]["message_thread_id"]
    world.emu.topic(chat_id, OWNER, action, message_thread_id=old)
    world.process()
    world.customer_writes("Second")
    world.deliver()
    new = [t for t in world.topics(chat_id) if t["message_thread_id"] != old and not t["closed"]]
    assert len(new) == 1 and new[0]["name"] == "Anna (@anna)"
    assert world.said(chat_id, new[0]["message_thread_id"])[-1] == "Second"
    # A reply in the new topic still reaches the customer.
    world.emu.group_send(chat_id, BARISTA, "Here", message_thread_id=new[0]["message_thread_id"])
    world.process()
    world.deliver()
    assert world.to_customer() == ["💬 Message from Bean There:\nHere"]


def test_a_basic_group_is_reported_then_followed_when_upgraded_to_a_supergroup(world):
    old = world.forum(kind="group")
    assert world.said(old)[-1] == "⚠️ I cannot open topics: turn on Topics in the group's settings."
    health = world.api.get("/healthz").get_json()
    assert health["staff_groups"]["problems"][0]["problem"] == "not_forum"
    new = world.emu.migrate(old, is_forum=True)["chat_id"]
    world.process()  # the migrate_to/from_chat_id service messages
    assert world.stored_chat() == new
    assert world.said(new)[-1] == "✅ Rights are fine: customers' topics are opened again."
    assert world.api.get("/healthz").get_json()["staff_groups"] == {"linked": 1, "problems": []}
    world.customer_writes("Hello")
    world.deliver()
    assert world.said(new, world.topics(new)[0]["message_thread_id"])[-1] == "Hello"


def test_a_migration_the_bot_missed_is_followed_from_telegrams_answer(world):
    old = world.forum(kind="group")
    world.customer_writes("Hello")  # queued for the basic group
    new = world.emu.migrate(old, is_forum=True)["chat_id"]
    world.deliver()  # 400 with migrate_to_chat_id, before the bot saw the service messages
    assert world.stored_chat() == new
    assert world.said(new, world.topics(new)[0]["message_thread_id"])[-1] == "Hello"


def test_missing_rights_are_said_once_in_the_group_and_in_healthz_and_messages_wait(world):
    chat_id = world.forum(admin=False)
    assert world.said(chat_id)[-1] == "⚠️ I cannot open topics: make the bot an admin with the “Manage Topics” right."
    world.customer_writes("Hello")
    world.deliver()
    world.deliver()
    assert world.topics(chat_id) == []
    assert sum("cannot open topics" in s for s in world.said(chat_id)) == 1
    (problem,) = world.api.get("/healthz").get_json()["staff_groups"]["problems"]
    assert (problem["horeca_id"], problem["chat_id"], problem["problem"]) == ("cafe-1", chat_id, "not_admin")

    world.emu.set_member(chat_id, bot=STAFF_BOT, status="administrator")  # admin, still without Manage Topics
    world.process()
    assert world.said(chat_id)[-1] == "⚠️ I cannot open topics: give the bot the “Manage Topics” right."
    world.emu.set_member(chat_id, bot=STAFF_BOT, status="administrator", can_manage_topics=True)
    world.process()
    assert world.said(chat_id)[-1] == "✅ Rights are fine: customers' topics are opened again."
    time.sleep(0.3)  # the waiting row's backoff
    world.deliver()
    assert world.said(chat_id, world.topics(chat_id)[0]["message_thread_id"])[-1] == "Hello"
    assert world.api.get("/healthz").get_json()["staff_groups"]["problems"] == []


def test_the_topic_header_follows_the_customers_orders(world):
    chat_id = world.forum()
    world.customer_writes("Hello")
    world.deliver()
    thread = world.topics(chat_id)[0]["message_thread_id"]
    with world.app.app_context():
        orders.record_status(ANNA, "cafe-1", "12", "ready")
        orders.record_status(ANNA, "cafe-1", "13", "accepted")
        assert redraw_headers(world.staff_bot) == 1
        assert redraw_headers(world.staff_bot) == 0  # drawn: nothing to do until the orders change again
    assert world.said(chat_id, thread)[0] == "👤 Anna (@anna)\nActive orders:\n• #12 — ready\n• #13 — accepted"
    with world.app.app_context():
        orders.record_status(ANNA, "cafe-1", "12", "completed")
        orders.record_status(ANNA, "cafe-1", "13", "cancelled")
        redraw_headers(world.staff_bot)
    assert world.said(chat_id, thread)[0] == "👤 Anna (@anna)\nNo active orders."


def test_group_codes_follow_the_staff_code_rules(world):
    spec = world.api.get("/openapi.json").get_json()
    response = world.api.post("/horeca/cafe-1/group-codes", json={"horeca_name": "Bean There"})
    check_response(spec, "/horeca/{horeca_id}/group-codes", "post", response)
    assert response.get_json()["deep_link"] is None  # no staff bot username known (no heartbeat, none configured)
    for bad in ([], {"horeca_name": ""}, {"horeca_name": "x" * 129}):
        response = world.api.post("/horeca/cafe-1/group-codes", json=bad)
        assert response.status_code == 400, bad
        check_response(spec, "/horeca/{horeca_id}/group-codes", "post", response)
    response = world.api.raw.post("/horeca/cafe-1/group-codes", json={})
    assert response.status_code == 401
    response = world.api.post("/horeca/" + "x" * 129 + "/group-codes", json={})
    assert response.status_code == 400
    chat_id = world.emu.create_group(OWNER, "Other")["chat_id"]
    world.emu.set_member(chat_id, bot=STAFF_BOT, status="administrator", can_manage_topics=True)
    world.emu.group_send(chat_id, OWNER, "/link WRONGCODE1")
    world.process()
    assert world.said(chat_id) == ["This group code is unknown or has expired. Ask your manager for a new one."]
    with world.app.app_context():
        staff_code = staff.issue_code("cafe-1").code
    world.emu.group_send(chat_id, OWNER, f"/link {staff_code}")  # a staff code is not a group code
    world.process()
    assert world.said(chat_id)[-1].startswith("This group code is unknown")
    assert world.stored_chat() is None
    world.emu.group_send(chat_id, OWNER, world.group_code())  # the bare code links a group not linked yet
    world.process()
    assert world.said(chat_id)[-1].startswith("✅ This group is linked to Bean There")
    before = len(world.said(chat_id))
    world.emu.group_send(chat_id, OWNER, "WRONGCODE2")  # once linked, a code-like word is just chat
    world.process()
    assert len(world.said(chat_id)) == before


def test_a_startgroup_deep_link_links_and_a_code_in_another_group_moves_the_cafe(world):
    first = world.forum()
    world.customer_writes("Hello")
    world.deliver()
    second = world.emu.create_group(OWNER, "New staff room")["chat_id"]
    world.emu.set_member(second, bot=STAFF_BOT, status="administrator", can_manage_topics=True)
    code = world.group_code()
    world.emu.group_send(second, OWNER, f"/start@{STAFF_BOT} {code}")  # what Telegram sends for ?startgroup=<code>
    world.process()
    assert world.said(second)[-1].startswith("✅ This group is linked to Bean There")
    assert world.stored_chat() == second
    world.customer_writes("Still there?")
    world.deliver()
    (topic,) = world.topics(second)  # a new topic in the new group; the old group gets nothing more
    assert world.said(second, topic["message_thread_id"])[-1] == "Still there?"
    assert all("Still there?" not in s for t in world.topics(first) for s in world.said(first, t["message_thread_id"]))


def test_a_reply_to_a_customer_who_blocked_the_bot_is_not_sent_and_the_topic_is_told(world):
    chat_id = world.forum()
    world.customer_writes("Hello")
    world.deliver()
    thread = world.topics(chat_id)[0]["message_thread_id"]
    world.emu.block(CAFE_BOT, ANNA)
    with world.app.app_context():
        orders.record_status(ANNA, "cafe-1", "12", "ready")
    world.deliver()  # the status gets 403: Anna is recorded as blocked
    world.emu.group_send(chat_id, BARISTA, "Your coffee is ready", message_thread_id=thread)
    world.process()
    assert world.said(chat_id, thread)[-1] == "Anna has blocked the bot: the message was not delivered."
    with world.app.app_context():
        assert conversation.conversation("cafe-1", ANNA).messages[-1].delivery == "blocked"
