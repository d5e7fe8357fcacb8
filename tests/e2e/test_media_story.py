"""Media and edits between customers and staff, through the real processes: gunicorn, run_bot.py with both
bots, the emulator.

Every kind of media goes both ways (a file received by one bot reaches the other bot's user with the same
bytes, uploaded once per bot), an album keeps its order and captions, a file over 20 MB is refused with a
message, edits follow both ways, and the backend API shows the same conversation with types and files.
"""

from __future__ import annotations

import pytest

from devtools.tg_emulator import EmulatorClient
from tests.e2e.conftest import BOT_USERNAME, Stack, wait_until
from tests.e2e.test_staff_story import Staff, customer, staff_token  # noqa: F401 - staff_token is a fixture

pytestmark = pytest.mark.e2e

buttons = EmulatorClient.buttons

BARISTA = 7101
ANNA, BORIS = 1101, 1102
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000030000000208060000009d74661a0000000d4944415478da63f8ffff3f0300050001ff"
)

# kind → the fields the user sends besides the file (None: no file)
KINDS: list[tuple[str, dict]] = [
    ("photo", {"caption": "the wrong cup"}),
    ("document", {"caption": "the receipt", "file_name": "receipt.pdf", "mime_type": "application/pdf"}),
    ("voice", {"caption": ""}),
    ("audio", {"caption": "our song", "file_name": "song.mp3"}),
    ("video", {"caption": "the queue"}),
    ("video_note", {}),
    ("sticker", {}),
    ("location", {"latitude": 55.75, "longitude": 37.61}),
    ("venue", {"latitude": 55.75, "longitude": 37.61, "title": "Bean There", "address": "1 Main St"}),
    ("contact", {"phone_number": "+15550100", "first_name": "Anna"}),
]


def data_for(kind: str, who: str) -> bytes:
    return PNG if kind == "photo" and who == "customer" else f"{kind} from the {who}".encode()


def newest(messages: list[dict], since: int) -> list[dict]:
    return [m for m in messages if m["message_id"] > since]


def media_of(message: dict) -> dict:
    return message.get("media") or {}


def wait_media(emu: EmulatorClient, bot: str, chat_id: int, kind: str, since: int, count: int = 1) -> list[dict]:
    def found() -> list[dict] | None:
        got = [m for m in newest(emu.messages(bot, chat_id), since) if media_of(m).get("type") == kind]
        return got if len(got) >= count else None

    return wait_until(found, 15, what=f"{count} {kind} message(s) in chat {chat_id}")


def new_message(staff: Staff, user_id: int, since: int, fragment: str) -> dict:
    """The first staff-bot message after `since` containing `fragment` (a delivery summary may come between)."""
    return wait_until(
        lambda: next((m for m in newest(staff.messages(user_id), since) if fragment in m["plain_text"]), None),
        what=f"{fragment!r} in the staff chat",
    )


def compose(staff: Staff, user_id: int) -> None:
    """Press the newest Reply button in the barista's chat: the next message goes to that customer."""
    with_reply = [m for m in staff.messages(user_id) if any(t.startswith("↩️") for t, _ in buttons(m))]
    since = staff.last_id(user_id)
    staff.press(user_id, with_reply[-1], "↩️")
    new_message(staff, user_id, since, "Write your")


@pytest.fixture
def cafe(stack: Stack, staff_token: str) -> Staff:  # noqa: F811 - the fixture imported above
    staff = Staff(stack, staff_token)
    staff.start()
    customer(stack, ANNA, "Anna", "A-1")
    customer(stack, BORIS, "Boris", "B-1")
    staff.join(BARISTA, "Olga")
    return staff


def test_every_kind_of_media_both_ways(stack: Stack, cafe: Staff):
    emu, staff = stack.emu, cafe
    for kind, fields in KINDS:
        # The customer sends it: the barista gets it through the staff bot, with who sent it.
        since_staff, since_customer = staff.last_id(BARISTA), stack.last_message_id(ANNA)
        data = None if kind in ("location", "venue", "contact") else data_for(kind, "customer")
        emu.send_media(BOT_USERNAME, ANNA, kind, data, **fields)
        wait_until(
            lambda since=since_customer: any("Sent to" in m["plain_text"] for m in newest(stack.messages(ANNA), since)),
            what="the receipt",
        )
        (copy,) = wait_media(emu, staff.bot, BARISTA, kind, since_staff)
        got = media_of(copy)
        if data is not None:
            assert emu.file_bytes(got["file_unique_id"]) == data
        if kind == "location":
            assert (got["location"]["latitude"], got["location"]["longitude"]) == (55.75, 37.61)
        if kind == "venue":
            assert got["venue"]["title"] == "Bean There"
        if kind == "contact":
            assert got["contact"]["phone_number"] == "+15550100"
        shown = "\n".join(m["plain_text"] for m in newest(staff.messages(BARISTA), since_staff))
        assert "Anna" in shown, shown
        if fields.get("caption"):
            assert fields["caption"] in copy["plain_text"]

        # The barista answers with the same kind: Anna gets it through the customer bot, with the cafe's name.
        compose(staff, BARISTA)
        since_customer = stack.last_message_id(ANNA)
        data = None if kind in ("location", "venue", "contact") else data_for(kind, "staff")
        since_staff = staff.last_id(BARISTA)
        emu.send_media(staff.bot, BARISTA, kind, data, **fields)
        new_message(staff, BARISTA, since_staff, "Delivered to Anna")
        (answer,) = wait_media(emu, BOT_USERNAME, ANNA, kind, since_customer)
        if data is not None:
            assert emu.file_bytes(media_of(answer)["file_unique_id"]) == data
        shown = "\n".join(m["plain_text"] for m in newest(stack.messages(ANNA), since_customer))
        assert "Bean There" in shown, shown

    # Each file went up once through each bot; the files it received were downloaded, not re-sent by file_id.
    files = sum(1 for kind, _ in KINDS if kind not in ("location", "venue", "contact"))
    assert emu.stats(staff.bot)["uploads"] == files
    assert emu.stats(BOT_USERNAME)["uploads"] == files

    # The backend sees the same conversation, with each message's type, caption and file.
    dialog = stack.api.get(f"/horeca/cafe-1/dialogs/{ANNA}").json()
    typed = [(m["direction"], m["type"]) for m in dialog["messages"] if m["type"] != "text"]
    assert typed == [(d, kind) for kind, _ in KINDS for d in ("in", "out")]
    photo_in = next(m for m in dialog["messages"] if m["type"] == "photo" and m["direction"] == "in")
    assert photo_in["caption"] == "the wrong cup"
    assert photo_in["media"]["file_size"] == len(PNG) and photo_in["media"]["file_unique_id"]
    document = next(m for m in dialog["messages"] if m["type"] == "document" and m["direction"] == "in")
    assert document["media"]["file_name"] == "receipt.pdf" and document["media"]["mime_type"] == "application/pdf"
    venue = next(m for m in dialog["messages"] if m["type"] == "venue")
    assert venue["media"]["title"] == "Bean There" and venue["media"]["latitude"] == 55.75

    # The cabinet shows the same conversation: the barista opens Anna's dialog.
    (listing,) = staff.say(BARISTA, "/dialogs")
    row = buttons(listing)
    open_anna = row[next(i for i, (t, _) in enumerate(row) if "Anna ·" in t) + 1][1]
    since = staff.last_id(BARISTA)
    emu.press(staff.bot, BARISTA, listing["message_id"], callback_data=open_anna)
    opened = new_message(staff, BARISTA, since, "Order #A-1")
    # (its last ten messages: the video notes, stickers, locations, venues and contacts, each kind marked)
    shown = opened["plain_text"]
    assert "👤 ⏺" in shown and "Olga: 💟" in shown and "👤 📍" in shown and "Olga: 👤" in shown, shown


def test_an_album_keeps_its_order_and_captions_and_a_broadcast_uploads_once(stack: Stack, cafe: Staff):
    emu, staff = stack.emu, cafe
    items = [
        {"type": "photo", "data": b"first photo", "caption": "one"},
        {"type": "photo", "data": b"second photo", "caption": ""},
        {"type": "video", "data": b"third, a video", "caption": "three"},
    ]
    since = staff.last_id(BARISTA)
    emu.send_album(BOT_USERNAME, ANNA, items)
    album = wait_media(emu, staff.bot, BARISTA, "photo", since, count=2) + wait_media(emu, staff.bot, BARISTA, "video", since)
    album.sort(key=lambda m: m["message_id"])
    assert [emu.file_bytes(media_of(m)["file_unique_id"]) for m in album] == [i["data"] for i in items]
    assert [m["plain_text"] for m in album] == ["one", "", "three"]
    assert len({media_of(m)["media_group_id"] for m in album}) == 1
    header = [m for m in newest(staff.messages(BARISTA), since) if not media_of(m)]
    assert "Anna" in header[0]["plain_text"] and header[0]["message_id"] < album[0]["message_id"]
    wait_until(lambda: len([m for m in stack.messages(ANNA) if "Sent to" in m["plain_text"]]) == 1, 10, what="one receipt")

    # The barista sends an album to both customers: each gets it, in order; each file went up once.
    (listing,) = staff.say(BARISTA, "/dialogs")
    staff.press(BARISTA, listing, "Select all")
    staff.press(BARISTA, listing, "✏️ Write to selected (2)", replies=1)
    menu = [{"type": "photo", "data": b"menu page 1", "caption": "Menu"}, {"type": "photo", "data": b"menu page 2"}]
    before = {user_id: stack.last_message_id(user_id) for user_id in (ANNA, BORIS)}
    emu.send_album(staff.bot, BARISTA, menu)
    for user_id in (ANNA, BORIS):
        got = wait_media(emu, BOT_USERNAME, user_id, "photo", before[user_id], count=2)
        assert [emu.file_bytes(media_of(m)["file_unique_id"]) for m in got] == [b"menu page 1", b"menu page 2"]
        assert [m["plain_text"] for m in got] == ["Menu", ""]
        assert "Bean There" in newest(stack.messages(user_id), before[user_id])[0]["plain_text"]
    staff.wait_for(BARISTA, "Delivered to all 2")
    assert emu.stats(BOT_USERNAME)["uploads"] == 2  # two files, two customers: each file once


def test_a_file_over_20_mb_is_refused_with_a_message_both_ways(stack: Stack, cafe: Staff):
    emu, staff = stack.emu, cafe
    big = 21 * 1024 * 1024
    since = stack.last_message_id(ANNA)
    emu.send_media(BOT_USERNAME, ANNA, "document", size=big, file_name="video.mov")
    (reply,) = emu.wait_for_messages(BOT_USERNAME, ANNA, 1, since_message_id=since)
    assert "over 20 MB" in reply["plain_text"]

    (listing,) = staff.say(BARISTA, "/dialogs")
    staff.press(BARISTA, listing, "Select all")
    staff.press(BARISTA, listing, "✏️ Write to selected", replies=1)
    since_staff = staff.last_id(BARISTA)
    emu.send_media(staff.bot, BARISTA, "document", size=big, file_name="menu.pdf")
    (refusal,) = emu.wait_for_messages(staff.bot, BARISTA, 1, since_message_id=since_staff)
    assert "over 20 MB" in refusal["plain_text"]
    # Nothing was stored or queued: the dialog has no document.
    dialog = stack.api.get(f"/horeca/cafe-1/dialogs/{ANNA}").json()
    assert all(m["type"] != "document" for m in dialog["messages"])


def test_edits_follow_both_ways(stack: Stack, cafe: Staff):
    emu, staff = stack.emu, cafe
    # The customer's text, then their edit: the barista's copy is edited in place.
    since = staff.last_id(BARISTA)
    sent = emu.send(BOT_USERNAME, ANNA, "A latte, please")
    copy = staff.wait_for(BARISTA, "A latte, please")
    emu.edit(BOT_USERNAME, ANNA, sent["message_id"], text="A flat white, please")
    edited = wait_until(
        lambda: (lambda m: m if "flat white" in m["plain_text"] else None)(staff.message(BARISTA, copy["message_id"])),
        what="the barista's copy edited",
    )
    assert "Anna" in edited["plain_text"] and buttons(edited), "the header and the Reply button stay"

    # A photo's caption edit edits the copy's caption.
    photo = emu.send_media(BOT_USERNAME, ANNA, "photo", b"the cup", caption="cold")
    (copy,) = wait_media(emu, staff.bot, BARISTA, "photo", since)
    emu.edit(BOT_USERNAME, ANNA, photo["message_id"], caption="cold and small")
    wait_until(
        lambda: "cold and small" in staff.message(BARISTA, copy["message_id"])["plain_text"], what="the copy's caption edited"
    )

    # The barista's reply to both customers, then their edit: both customers' copies are edited.
    (listing,) = staff.say(BARISTA, "/dialogs")
    staff.press(BARISTA, listing, "Select all")
    staff.press(BARISTA, listing, "✏️ Write to selected (2)", replies=1)
    since_staff = staff.last_id(BARISTA)
    emu.send(staff.bot, BARISTA, "Ready in 5 minutes")
    emu.wait_for_messages(staff.bot, BARISTA, 1, since_message_id=since_staff)
    copies = {
        u: wait_until(lambda u=u: next((m for m in stack.messages(u) if "Ready in 5" in m["plain_text"]), None))
        for u in (ANNA, BORIS)
    }
    emu.edit(staff.bot, BARISTA, since_staff + 1, text="Ready in 10 minutes")
    for user_id, message in copies.items():
        wait_until(
            lambda u=user_id, m=message: "Ready in 10" in stack.message(u, m["message_id"])["plain_text"],
            what=f"the copy of {user_id} edited",
        )
    # An edit Telegram cannot make (a caption grown past the 1024 characters a caption may have, with the
    # header) arrives as a short "Edited:" follow-up instead.
    long_caption = "much colder than it should be " * 34
    since = staff.last_id(BARISTA)
    emu.edit(BOT_USERNAME, ANNA, photo["message_id"], caption=long_caption.strip())
    follow_up = staff.wait_for(BARISTA, "✏️ Edited:")
    assert follow_up["message_id"] > since and "much colder" in follow_up["plain_text"]

    dialog = stack.api.get(f"/horeca/cafe-1/dialogs/{ANNA}").json()
    texts = [m["text"] for m in dialog["messages"]]
    assert "A flat white, please" in texts and "Ready in 10 minutes" in texts
    assert next(m for m in dialog["messages"] if m["text"] == "A flat white, please")["edited_at"]
