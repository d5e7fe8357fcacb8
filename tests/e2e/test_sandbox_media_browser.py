"""A photo in the sandbox, in a browser: a customer attaches one in the page and a barista sees it in the staff
bot's chat; the barista answers with a photo and the customer sees it. The real sandbox (`python -m
devtools.launch`: the emulator, gunicorn, run_bot.py with both bots), Debian's Chromium through Playwright.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import pytest

from tests.e2e.test_sandbox_browser import CUSTOMER_BOT, STAFF_BOT, Sandbox, bot_messages, browser, page, sandbox, screenshot
from tests.support.e2e import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (requirements-dev.txt)")
expect = sync_api.expect

__all__ = ["browser", "page", "sandbox"]  # the fixtures this module shares with test_sandbox_browser


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour (the page must be able to draw it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b"")


def user(page, user_id: int, name: str) -> None:
    """Create a user in the page (the page then shows their chat with the customer bot)."""
    if not page.get_by_test_id("new-user-id").is_visible():
        page.get_by_test_id("new-user").locator("summary").click()
    page.get_by_test_id("new-user-id").fill(str(user_id))
    page.get_by_test_id("new-user-name").fill(name)
    page.get_by_test_id("new-user-lang").select_option("en")
    page.get_by_test_id("create-user").click()
    expect(page.get_by_test_id("chat-title")).to_have_text(f"@{CUSTOMER_BOT}")


def open_link(page, link: str) -> None:
    page.get_by_test_id("composer-input").fill(link)
    page.get_by_test_id("composer-input").press("Enter")


def photo_loaded(page, locator) -> bool:
    return bool(locator.evaluate("img => img.complete && img.naturalWidth > 0"))


def test_a_photo_sent_and_seen_on_both_sides(sandbox: Sandbox, page, tmp_path: Path):
    ann, olga = 5023456789, 5029876543
    page.goto(sandbox.emulator_url + "/")
    expect(page.get_by_test_id("connection")).to_have_text("connected")

    # Ann links the customer bot and has an order; Olga joins the cafe's staff by the staff code's link.
    user(page, ann, "Ann")
    issued = sandbox.api.post("/verification-codes", {}).json()
    open_link(page, issued["deep_link"])
    expect(bot_messages(page)).to_have_count(1)
    sandbox.api.push(ann, "A-1", "preparing", expect=[202])
    expect(bot_messages(page, "Order A-1")).to_have_count(1)
    user(page, olga, "Olga")
    staff_code = sandbox.api.post("/horeca/cafe-1/staff-codes", {"horeca_name": "Bean There"}).json()
    open_link(page, staff_code["deep_link"])
    expect(page.get_by_test_id("chat-title")).to_have_text(f"@{STAFF_BOT}")
    expect(bot_messages(page, "Bean There").first).to_be_visible()

    # Ann attaches a photo with a caption: she sees it in her chat, and it goes to the cafe.
    page.get_by_test_id("user-select").select_option(str(ann))
    page.locator(f'[data-testid="bot-tab"][data-bot="{CUSTOMER_BOT}"]').click()
    cup = tmp_path / "cup.png"
    cup.write_bytes(png(40, 30, (200, 60, 40)))
    page.get_by_test_id("composer-input").fill("the wrong cup")
    page.get_by_test_id("attach-input").set_input_files(str(cup))
    mine = page.locator('[data-testid="message"][data-from="user"]').filter(has=page.get_by_test_id("message-photo"))
    expect(mine).to_have_count(1)
    expect(mine).to_contain_text("the wrong cup")
    wait_until(lambda: photo_loaded(page, mine.get_by_test_id("message-photo")), what="Ann's photo drawn in her chat")
    expect(bot_messages(page, "Sent to Bean There")).to_have_count(1)

    # Olga sees it in the staff bot's chat, drawn, with who sent it and a Reply button.
    page.get_by_test_id("user-select").select_option(str(olga))
    page.locator(f'[data-testid="bot-tab"][data-bot="{STAFF_BOT}"]').click()
    copy = bot_messages(page).filter(has=page.get_by_test_id("message-photo"))
    expect(copy).to_have_count(1)
    expect(copy).to_contain_text(re.compile(r"Ann.*the wrong cup", re.S))
    wait_until(lambda: photo_loaded(page, copy.get_by_test_id("message-photo")), what="the photo drawn in the staff chat")
    shown = copy.get_by_test_id("message-photo").evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert shown == [40, 30]

    # She answers with a photo of her own: Reply, attach.
    copy.get_by_role("button", name=re.compile("Reply")).click()
    expect(bot_messages(page, "Write your")).to_have_count(1)
    fresh = tmp_path / "fresh.png"
    fresh.write_bytes(png(24, 24, (40, 160, 60)))
    page.get_by_test_id("composer-input").fill("a fresh one is coming")
    page.get_by_test_id("attach-input").set_input_files(str(fresh))
    expect(bot_messages(page, "Delivered to Ann")).to_have_count(1)
    screenshot(page, "sandbox-photo-staff.png")

    # Ann sees the cafe's photo in her chat.
    page.get_by_test_id("user-select").select_option(str(ann))
    page.locator(f'[data-testid="bot-tab"][data-bot="{CUSTOMER_BOT}"]').click()
    answer = bot_messages(page).filter(has=page.get_by_test_id("message-photo"))
    expect(answer).to_have_count(1)
    expect(answer).to_contain_text(re.compile(r"Bean There.*a fresh one is coming", re.S))
    wait_until(lambda: photo_loaded(page, answer.get_by_test_id("message-photo")), what="the cafe's photo drawn in Ann's chat")
    assert answer.get_by_test_id("message-photo").evaluate("img => img.naturalWidth") == 24
    assert screenshot(page, "sandbox-photo.png").stat().st_size > 10_000

    # An album (sent from Ann's phone: the page attaches one file at a time) shows as one bubble on both sides.
    items = [
        {"type": "photo", "data": png(20, 20, (30, 30, 200)), "caption": "left side"},
        {"type": "photo", "data": png(20, 20, (200, 200, 30)), "caption": "right side"},
    ]
    sandbox.emu.send_album(CUSTOMER_BOT, ann, items)
    mine = page.locator('[data-testid="message"][data-from="user"]').filter(has=page.get_by_test_id("album"))
    expect(mine.get_by_test_id("message-photo")).to_have_count(2)
    expect(mine.locator("figcaption")).to_have_text(["left side", "right side"])
    page.get_by_test_id("user-select").select_option(str(olga))
    page.locator(f'[data-testid="bot-tab"][data-bot="{STAFF_BOT}"]').click()
    album = bot_messages(page).filter(has=page.get_by_test_id("album"))
    expect(album.get_by_test_id("message-photo")).to_have_count(2)
    expect(album.locator("figcaption")).to_have_text(["left side", "right side"])
    screenshot(page, "sandbox-album-staff.png")
