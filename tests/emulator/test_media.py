"""The emulator's media section (devtools/tg_emulator/media.py), played by two telebot bots and a user."""

from __future__ import annotations

import pytest
import requests
import telebot
from telebot import apihelper
from telebot.apihelper import ApiTelegramException
from telebot.types import InputMediaPhoto, InputMediaVideo

from devtools.tg_emulator import EmulatorClient, EmulatorError, EmulatorServer

A_TOKEN = "7100000021:" + "a".ljust(35, "a")
B_TOKEN = "7100000022:" + "b".ljust(35, "b")
ANNA = 801
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000030000000208060000009d74661a")


@pytest.fixture
def world(monkeypatch):
    server = EmulatorServer(bots={"a_bot": A_TOKEN, "b_bot": B_TOKEN}).start()
    monkeypatch.setattr(apihelper, "API_URL", server.api_url)
    monkeypatch.setattr(apihelper, "FILE_URL", server.url + "/file/bot{0}/{1}")
    emu = EmulatorClient(server.url)
    emu.create_user(ANNA, "Anna")
    a, b = telebot.TeleBot(A_TOKEN, threaded=False), telebot.TeleBot(B_TOKEN, threaded=False)
    yield server, emu, a, b
    emu.close()
    server.stop()


def refused(call, *args, **kwargs) -> str:
    with pytest.raises(ApiTelegramException) as caught:
        call(*args, **kwargs)
    assert caught.value.error_code == 400
    return str(caught.value.description)


def test_a_users_photo_is_downloaded_by_its_bot_and_uploaded_by_the_other(world):
    server, emu, a, b = world
    emu.send_media("a_bot", ANNA, "photo", PNG, caption="the cup")
    (update,) = a.get_updates()
    photo = update.message.photo[-1]
    assert update.message.caption == "the cup" and (photo.width, photo.height) == (3, 2)

    info = a.get_file(photo.file_id)
    assert a.download_file(info.file_path) == PNG
    # The file id is a_bot's: b_bot may not send it, fetch it or download its path.
    assert "wrong file identifier" in refused(b.send_photo, ANNA, photo.file_id)
    refused(b.get_file, photo.file_id)
    assert requests.get(server.url + f"/file/bot{B_TOKEN}/{info.file_path}", timeout=5).status_code == 404

    sent = b.send_photo(ANNA, PNG, caption="<b>yours</b>", parse_mode="HTML")
    assert sent.photo[-1].file_unique_id == photo.file_unique_id and sent.photo[-1].file_id != photo.file_id
    assert sent.caption == "yours" and sent.caption_entities[0].type == "bold"
    b.send_photo(ANNA, sent.photo[-1].file_id)  # its own file id: no upload
    assert emu.stats("b_bot")["uploads"] == 1 and emu.stats("a_bot")["downloads"] == 1
    (seen, again) = [m for m in emu.messages("b_bot", ANNA)]
    assert seen["media"]["type"] == "photo" and emu.file_bytes(seen["media"]["file_unique_id"]) == PNG
    assert seen["plain_text"] == "yours" and again["media"]["file_unique_id"] == seen["media"]["file_unique_id"]


def test_over_20_mb_cannot_be_fetched(world):
    _, emu, a, _ = world
    emu.send_media("a_bot", ANNA, "document", size=21 * 1024 * 1024, file_name="film.mov")
    (update,) = a.get_updates()
    assert update.message.document.file_size == 21 * 1024 * 1024 and update.message.document.file_name == "film.mov"
    assert refused(a.get_file, update.message.document.file_id) == "Bad Request: file is too big"


@pytest.mark.parametrize(
    ("send", "kind"),
    [
        (lambda b: b.send_document(ANNA, ("menu.pdf", b"%PDF"), caption="menu"), "document"),
        (lambda b: b.send_voice(ANNA, b"ogg"), "voice"),
        (lambda b: b.send_audio(ANNA, b"mp3"), "audio"),
        (lambda b: b.send_video(ANNA, b"mp4"), "video"),
        (lambda b: b.send_video_note(ANNA, b"round"), "video_note"),
        (lambda b: b.send_sticker(ANNA, b"webp"), "sticker"),
        (lambda b: b.send_location(ANNA, 55.75, 37.61), "location"),
        (lambda b: b.send_venue(ANNA, 55.75, 37.61, "Bean There", "1 Main St"), "venue"),
        (lambda b: b.send_contact(ANNA, "+15550100", "Olga"), "contact"),
    ],
)
def test_each_kind_is_sent_and_parsed(world, send, kind):
    _, emu, _, b = world
    message = send(b)
    assert message.content_type == kind
    (record,) = emu.messages("b_bot", ANNA)
    assert record["media"]["type"] == kind


def test_media_groups_keep_order_and_captions(world):
    _, emu, a, b = world
    sent = b.send_media_group(ANNA, [InputMediaPhoto(PNG, caption="one"), InputMediaVideo(b"clip", caption="two")])
    assert [m.caption for m in sent] == ["one", "two"] and len({m.media_group_id for m in sent}) == 1
    assert "wrong number" in refused(b.send_media_group, ANNA, [InputMediaPhoto(PNG)])

    items = [{"type": "photo", "data": b"p1", "caption": "first"}, {"type": "photo", "data": b"p2"}]
    emu.send_album("a_bot", ANNA, items)
    updates = a.get_updates()
    assert [u.message.caption for u in updates] == ["first", None]
    assert len({u.message.media_group_id for u in updates}) == 1


def test_edits_of_captions_and_by_users(world):
    _, emu, a, b = world
    sent = b.send_photo(ANNA, PNG, caption="old")
    assert b.edit_message_caption("new", ANNA, sent.message_id).caption == "new"
    assert "no text in the message" in refused(b.edit_message_text, "text", ANNA, sent.message_id)
    text = b.send_message(ANNA, "plain")
    assert "no caption" in refused(b.edit_message_caption, "x", ANNA, text.message_id)

    mine = emu.send("a_bot", ANNA, "A latte")
    emu.edit("a_bot", ANNA, mine["message_id"], text="A flat white")
    edited = a.get_updates()[-1].edited_message
    assert edited.text == "A flat white" and edited.message_id == mine["message_id"] and edited.edit_date
    with pytest.raises(EmulatorError):
        emu.edit("a_bot", ANNA, 999, text="nothing to edit")
