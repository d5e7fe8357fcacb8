"""Media in the staff group's topics: the customer bot's and the staff bot's real handlers, the real delivery
worker, against the emulator (on SQLite and PostgreSQL).

A customer's photo lands in their topic as a photo with its caption (one upload through the staff bot, shared
with the staff members' private copies), an album lands as an album, a location as a location, and a staff
member's photo (or album) in the topic reaches the customer as a photo through the customer bot.
"""

from __future__ import annotations

import time

from bot import telegram
from bot.handlers import register_handlers
from services import cabinet, outreach
from tests.test_staff_group import (  # noqa: F401 - fixtures
    ANNA,
    BARISTA,
    CAFE_BOT,
    CUSTOMER_TOKEN,
    OWNER,
    STAFF_BOT,
    STRANGER,
    World,
    server,
    world,
)

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000030000000208060000009d74661a0000000d4944415478da63f8ffff3f0300050001ff"
)
ALBUM_WAIT = 1.5  # bot.media_in.ALBUM_WINDOW and a margin: the album's messages are handed over together


class Customers:
    """The customer bot's handlers, fed from the emulator like the staff bot's in `World`."""

    def __init__(self, w: World) -> None:
        self.bot = telegram.build_bot(CUSTOMER_TOKEN)
        register_handlers(self.bot, w.app)
        self.offset = 0

    def process(self) -> None:
        while True:
            updates = self.bot.get_updates(offset=self.offset, timeout=5, long_polling_timeout=0.05)
            if not updates:
                return
            self.offset = updates[-1].update_id + 1
            self.bot.process_new_updates(updates)


def in_topic(w: World, chat_id: int, thread: int) -> list[dict]:
    """The staff bot's messages in the topic (header included), oldest first."""
    return [
        m
        for m in w.emu.group(chat_id)["messages"]
        if m["from"] == "bot" and not m["service"] and not m["deleted"] and m["message_thread_id"] == thread
    ]


def opened(w: World) -> tuple[int, int, Customers]:
    """The linked group and Anna's topic (opened by a text of hers), and the customer bot."""
    chat_id = w.forum()
    w.customer_writes("Hello")
    w.deliver()
    return chat_id, w.topics(chat_id)[0]["message_thread_id"], Customers(w)


def test_a_customers_photo_lands_in_her_topic_as_a_photo_with_its_caption(world):  # noqa: F811
    chat_id, thread, customers = opened(world)
    world.emu.send_media(CAFE_BOT, ANNA, "photo", PNG, caption="the wrong cup")
    customers.process()
    world.deliver()
    last = in_topic(world, chat_id, thread)[-1]
    assert last["media"]["type"] == "photo" and last["plain_text"] == "the wrong cup"
    assert world.emu.file_bytes(last["media"]["file_unique_id"]) == PNG
    # Through the staff bot once: the topic's copy and the two staff members' private copies share the upload.
    assert world.emu.stats(STAFF_BOT)["uploads"] == 1
    assert [m["media"]["type"] for m in world.emu.messages(STAFF_BOT, BARISTA) if m.get("media")] == ["photo"]

    # A location (no caption, no file) lands as a location.
    world.emu.send_media(CAFE_BOT, ANNA, "location", latitude=55.75, longitude=37.61)
    customers.process()
    world.deliver()
    last = in_topic(world, chat_id, thread)[-1]
    assert last["media"]["type"] == "location" and last["media"]["location"]["latitude"] == 55.75


def test_a_customers_album_lands_in_her_topic_as_an_album_in_order(world):  # noqa: F811
    chat_id, thread, customers = opened(world)
    before = len(in_topic(world, chat_id, thread))
    world.emu.send_album(
        CAFE_BOT,
        ANNA,
        [{"type": "photo", "data": PNG, "caption": "first"}, {"type": "photo", "data": PNG + b"2", "caption": "second"}],
    )
    customers.process()
    time.sleep(ALBUM_WAIT)
    world.deliver()
    album = in_topic(world, chat_id, thread)[before:]
    assert [(m["media"]["type"], m["plain_text"]) for m in album] == [("photo", "first"), ("photo", "second")]
    assert album[0]["media"]["media_group_id"] == album[1]["media"]["media_group_id"]


def test_a_staff_members_photo_in_the_topic_reaches_the_customer_as_a_photo(world):  # noqa: F811
    chat_id, thread, _ = opened(world)
    world.emu.group_send_media(chat_id, BARISTA, "photo", PNG, message_thread_id=thread, caption="our new menu")
    time.sleep(0.2)
    world.process()
    world.deliver()
    (photo,) = [m for m in world.emu.messages(CAFE_BOT, ANNA) if m.get("media")]
    assert photo["media"]["type"] == "photo"
    assert photo["plain_text"] == "💬 Message from Bean There:\nour new menu"
    assert world.emu.file_bytes(photo["media"]["file_unique_id"]) == PNG
    assert world.emu.stats(CAFE_BOT)["uploads"] == 1  # downloaded from the staff bot, uploaded through the customer bot

    # An album in the topic reaches her as an album; a stranger's photo goes nowhere.
    world.emu.group_send_album(
        chat_id,
        BARISTA,
        [{"type": "photo", "data": PNG + b"a", "caption": "one"}, {"type": "photo", "data": PNG + b"b", "caption": "two"}],
        message_thread_id=thread,
    )
    world.emu.group_send_media(chat_id, STRANGER, "photo", PNG + b"c", message_thread_id=thread)
    world.process()
    time.sleep(ALBUM_WAIT)
    world.deliver()
    got = [(m["media"]["type"], m["plain_text"]) for m in world.emu.messages(CAFE_BOT, ANNA) if m.get("media")]
    assert got[1:] == [("photo", "one"), ("photo", "two")]
    assert any("only staff" in m["plain_text"] for m in in_topic(world, chat_id, thread))


def test_a_file_over_20_mb_in_the_topic_is_refused_there_and_a_cabinet_photo_shows_in_the_topic(world):  # noqa: F811
    chat_id, thread, _ = opened(world)
    world.emu.group_send_media(chat_id, BARISTA, "document", message_thread_id=thread, size=21 * 1024 * 1024)
    world.process()
    world.deliver()
    assert in_topic(world, chat_id, thread)[-1]["plain_text"].startswith("Not sent: the file is over 20 MB")
    assert [m for m in world.emu.messages(CAFE_BOT, ANNA) if m.get("media")] == []

    # A photo the barista sends to Anna from the cabinet (Reply, then the photo) shows in the topic too.
    with world.app.app_context():
        customer_id = cabinet.list_dialogs(BARISTA).items[0].customer_id
        outreach.reply_to_customer(BARISTA, customer_id)
    world.emu.send_media(STAFF_BOT, BARISTA, "photo", PNG, caption="Two minutes")
    world.process()
    world.deliver()
    last = in_topic(world, chat_id, thread)[-1]
    assert last["media"]["type"] == "photo" and last["plain_text"] == "↩️ Olga (from the bot):\nTwo minutes"
    assert [m["media"]["type"] for m in world.emu.messages(CAFE_BOT, ANNA) if m.get("media")] == ["photo"]


def test_the_customers_edits_follow_into_her_topic(world):  # noqa: F811
    chat_id, thread, customers = opened(world)
    sent = world.emu.send_media(CAFE_BOT, ANNA, "photo", PNG, caption="the wrong cup")
    text = world.emu.send(CAFE_BOT, ANNA, "Where is it?")
    customers.process()
    world.deliver()
    world.emu.edit(CAFE_BOT, ANNA, sent["message_id"], caption="the wrong cup, twice")
    world.emu.edit(CAFE_BOT, ANNA, text["message_id"], text="Where is my latte?")
    customers.process()
    world.deliver()
    photo, said = in_topic(world, chat_id, thread)[-2:]
    assert (photo["media"]["type"], photo["plain_text"], len(photo["edits"])) == ("photo", "the wrong cup, twice", 1)
    assert (said["plain_text"], len(said["edits"])) == ("Where is my latte?", 1)

    # A copy Telegram cannot edit any more (here: its topic was deleted) gets an "Edited:" follow-up in her new topic.
    world.emu.topic(chat_id, OWNER, "delete", message_thread_id=thread)
    world.emu.edit(CAFE_BOT, ANNA, text["message_id"], text="Where is my flat white?")
    customers.process()
    world.deliver()
    (topic,) = world.topics(chat_id)
    assert in_topic(world, chat_id, topic["message_thread_id"])[-1]["plain_text"] == "✏️ Edited:\nWhere is my flat white?"
