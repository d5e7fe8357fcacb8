"""The emulator's groups: supergroups with forum topics, members and their rights, chat migration (a real TeleBot)."""

from __future__ import annotations

import pytest
import requests
import telebot
from telebot import apihelper
from telebot.apihelper import ApiTelegramException

from devtools.tg_emulator import EmulatorClient, EmulatorError, EmulatorServer

STAFF = "7100000002:" + "staff".ljust(35, "y")
OWNER, BARISTA = 501, 502


@pytest.fixture(scope="module")
def server():
    srv = EmulatorServer(bots={"staff_bot": STAFF}).start()
    yield srv
    srv.stop()


@pytest.fixture
def emu(server):
    client = EmulatorClient(server.url)
    client.reset()
    client.create_user(OWNER, "Olga", language_code="en")
    client.create_user(BARISTA, "Ivan", language_code="en")
    yield client
    client.close()


@pytest.fixture
def tb(server, emu, monkeypatch):
    monkeypatch.setattr(apihelper, "API_URL", server.api_url)
    bot = telebot.TeleBot(STAFF, threaded=False)
    bot.get_updates(offset=-1, timeout=1, long_polling_timeout=0.05)  # start from here
    return bot


def updates(tb):
    found = tb.get_updates(timeout=5, long_polling_timeout=0.05)
    if found:
        tb.get_updates(offset=found[-1].update_id + 1, timeout=5, long_polling_timeout=0.05)
    return found


def forum(emu, admin: bool = True, manage: bool = True) -> int:
    chat_id = emu.create_group(OWNER, "Bean There staff")["chat_id"]
    emu.set_member(chat_id, bot="staff_bot", status="administrator" if admin else "member", can_manage_topics=manage)
    emu.set_member(chat_id, member_id=BARISTA)
    return chat_id


def test_a_bot_opens_a_topic_writes_in_it_and_members_write_back(emu, tb):
    chat_id = forum(emu)
    joined = updates(tb)
    assert joined[0].my_chat_member.new_chat_member.status == "administrator"
    assert tb.get_chat(chat_id).is_forum is True
    me = tb.get_chat_member(chat_id, tb.get_me().id)
    assert me.status == "administrator" and me.can_manage_topics is True

    topic = tb.create_forum_topic(chat_id, "Anna")
    sent = tb.send_message(chat_id, "hello", message_thread_id=topic.message_thread_id)
    assert sent.message_thread_id == topic.message_thread_id and sent.is_topic_message
    emu.group_send(chat_id, BARISTA, "hi Anna", message_thread_id=topic.message_thread_id)
    (update,) = [u for u in updates(tb) if u.message and u.message.text]
    assert update.message.text == "hi Anna" and update.message.message_thread_id == topic.message_thread_id
    assert update.message.is_topic_message and update.message.chat.type == "supergroup"

    state = emu.group(chat_id)
    created = next(m for m in state["messages"] if m["service"] and "forum_topic_created" in m["service"])
    assert created["message_id"] == topic.message_thread_id  # a topic's id is its creation message's
    assert created["service"] == {"forum_topic_created": {"name": "Anna", "icon_color": topic.icon_color}}


def test_topic_service_messages_and_a_deleted_or_closed_topic_refusing_messages(emu, tb):
    chat_id = forum(emu)
    thread = tb.create_forum_topic(chat_id, "Anna").message_thread_id
    tb.edit_forum_topic(chat_id, thread, name="Anna · #12")
    tb.close_forum_topic(chat_id, thread)
    with pytest.raises(ApiTelegramException, match="TOPIC_CLOSED"):
        tb.send_message(chat_id, "x", message_thread_id=thread)
    with pytest.raises(ApiTelegramException, match="TOPIC_NOT_MODIFIED"):
        tb.close_forum_topic(chat_id, thread)
    tb.reopen_forum_topic(chat_id, thread)
    kinds = [next(iter(m["service"])) for m in emu.group(chat_id)["messages"] if m["service"]]
    assert kinds[-4:] == ["forum_topic_created", "forum_topic_edited", "forum_topic_closed", "forum_topic_reopened"]

    emu.topic(chat_id, OWNER, "delete", message_thread_id=thread)
    with pytest.raises(ApiTelegramException) as raised:
        tb.send_message(chat_id, "x", message_thread_id=thread)
    assert raised.value.error_code == 400 and raised.value.description == "Bad Request: message thread not found"


@pytest.mark.parametrize(
    ("admin", "manage", "kind", "forum_on", "error"),
    [
        (False, False, "supergroup", True, "not enough rights to create a topic"),
        (True, False, "supergroup", True, "not enough rights to create a topic"),
        (True, True, "supergroup", False, "the chat is not a forum"),
        (True, True, "group", False, "the chat is not a forum"),
    ],
)
def test_creating_a_topic_needs_topics_and_the_manage_topics_right(emu, tb, admin, manage, kind, forum_on, error):
    chat_id = emu.create_group(OWNER, kind=kind, is_forum=forum_on)["chat_id"]
    emu.set_member(chat_id, bot="staff_bot", status="administrator" if admin else "member", can_manage_topics=manage)
    with pytest.raises(ApiTelegramException, match=error):
        tb.create_forum_topic(chat_id, "Anna")


def test_privacy_mode_a_plain_member_bot_sees_commands_only(emu, tb):
    chat_id = forum(emu, admin=False, manage=False)
    updates(tb)
    emu.group_send(chat_id, BARISTA, "just chatting")
    emu.group_send(chat_id, BARISTA, "/link ABC")
    texts = [u.message.text for u in updates(tb) if u.message and u.message.text]
    assert texts == ["/link ABC"]


def test_a_migrated_group_answers_with_its_new_id_and_both_chats_say_so(emu, tb, server):
    old = emu.create_group(OWNER, kind="group")["chat_id"]
    emu.set_member(old, bot="staff_bot", status="administrator")
    tb.send_message(old, "before")
    updates(tb)
    new = emu.migrate(old, is_forum=True)["chat_id"]
    assert new < -1_000_000_000_000 and old > -1_000_000_000_000
    seen = [u.message for u in updates(tb) if u.message]
    assert [(m.chat.id, m.migrate_to_chat_id, m.migrate_from_chat_id) for m in seen] == [(old, new, None), (new, None, old)]
    answer = requests.post(f"{server.url}/bot{STAFF}/sendMessage", json={"chat_id": old, "text": "x"}, timeout=5).json()
    assert answer == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": new},
    }
    assert tb.send_message(new, "after").chat.id == new


def test_a_removed_bot_gets_403_and_control_errors_are_clear(emu, tb):
    chat_id = forum(emu)
    emu.set_member(chat_id, bot="staff_bot", status="kicked")
    with pytest.raises(ApiTelegramException, match="kicked"):
        tb.send_message(chat_id, "x")
    with pytest.raises(EmulatorError, match="not a member"):
        emu.group_send(chat_id, 999, "x")
    with pytest.raises(EmulatorError, match="no group"):
        emu.group(-42)
    with pytest.raises(EmulatorError, match="only a basic group"):
        emu.migrate(chat_id)


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000030000000208060000009d74661a0000000d4944415478da63f8ffff3f0300050001ff"
)


def test_media_in_a_topic_both_ways(emu, tb, server):
    chat_id = forum(emu)
    thread = tb.create_forum_topic(chat_id, "Anna").message_thread_id
    updates(tb)
    photo = tb.send_photo(chat_id, PNG, caption="<b>menu</b>", parse_mode="HTML", message_thread_id=thread)
    assert photo.message_thread_id == thread and photo.caption == "menu" and photo.photo[-1].width == 3
    again = tb.send_photo(chat_id, photo.photo[-1].file_id, message_thread_id=thread)  # by the bot's file id
    assert again.photo[-1].file_unique_id == photo.photo[-1].file_unique_id
    album = tb.send_media_group(
        chat_id,
        [telebot.types.InputMediaPhoto(PNG, caption="a"), telebot.types.InputMediaPhoto(PNG + b"x", caption="b")],
        message_thread_id=thread,
    )
    assert [m.caption for m in album] == ["a", "b"] and album[0].media_group_id == album[1].media_group_id
    place = tb.send_location(chat_id, 55.75, 37.61, message_thread_id=thread)
    assert place.location.latitude == 55.75 and place.message_thread_id == thread
    with pytest.raises(ApiTelegramException, match="message thread not found"):
        tb.send_document(chat_id, b"x", message_thread_id=thread + 100)
    shown = [m for m in emu.group(chat_id)["messages"] if m["media"]]
    assert [m["media"]["type"] for m in shown] == ["photo", "photo", "photo", "photo", "location"]
    assert emu.file_bytes(shown[0]["media"]["file_unique_id"]) == PNG

    # A member's photo and album in the topic: message updates with the bot's own file ids, which getFile serves.
    emu.group_send_media(chat_id, BARISTA, "photo", PNG + b"y", message_thread_id=thread, caption="look")
    emu.group_send_album(
        chat_id, BARISTA, [{"type": "document", "data": b"1"}, {"type": "document", "data": b"2"}], message_thread_id=thread
    )
    got = [u.message for u in updates(tb) if u.message]
    assert [m.content_type for m in got] == ["photo", "document", "document"]
    assert got[0].message_thread_id == thread and got[0].is_topic_message and got[0].caption == "look"
    assert got[1].media_group_id == got[2].media_group_id
    path = tb.get_file(got[0].photo[-1].file_id).file_path
    assert requests.get(f"{server.url}/file/bot{STAFF}/{path}", timeout=5).content == PNG + b"y"
