"""The staff group in the sandbox page, in a browser: what docs/sandbox.md tells a newcomer to try.

`make run` (devtools.launch: the emulator, gunicorn and run_bot.py); a barista who joined the staff bot creates a
staff group from the page, links it by typing the group code there, sees the customer's topic open with their
message and photo and answers in it; the customer gets the answer from the customer bot. A screenshot goes to
tests/artifacts/sandbox-group.png.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_sandbox_browser import (  # noqa: F401 - fixtures: browser, page, sandbox
    CUSTOMER_BOT,
    STAFF_BOT,
    Sandbox,
    browser,
    page,
    sandbox,
    screenshot,
    sync_api,
)
from tests.support.e2e import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
expect = sync_api.expect

OLGA, ANNA = 701, 702
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000030000000208060000009d74661a0000000d4944415478da63f8ffff3f0300050001ff"
)


def test_a_staff_group_with_topics_in_the_sandbox(sandbox: Sandbox, page):  # noqa: F811 - the imported fixtures
    emu, api = sandbox.emu, sandbox.api
    emu.create_user(OLGA, "Olga", language_code="en")
    emu.create_user(ANNA, "Anna", language_code="en")
    wait_until(lambda: emu.stats(STAFF_BOT)["get_updates_calls"] > 0, 30, what="the staff bot to poll")
    staff_code = api.post("/horeca/cafe-1/staff-codes", {"horeca_name": "Bean There"}).json()["code"]
    emu.send(STAFF_BOT, OLGA, f"/start {staff_code}")
    code = api.issue_code()["code"]
    emu.send(CUSTOMER_BOT, ANNA, f"/start {code}")
    wait_until(lambda: api.post("/verification/", {"code": code}).status_code == 200, what="Anna linked")
    api.push(ANNA, "A-1", "preparing", expect=[202])

    # Olga creates the staff group from the page: the staff bot is in it as an admin that may manage topics.
    page.goto(f"{sandbox.emulator_url}/?user={OLGA}&bot={STAFF_BOT}")
    page.get_by_test_id("new-group").locator("summary").click()
    page.get_by_test_id("create-group").click()
    expect(page.get_by_test_id("group-pane")).to_be_visible()
    expect(page.get_by_test_id("group-sub")).to_contain_text("admin, can manage topics")

    # She types the group code the backend issued in the group's General topic.
    command = api.post("/horeca/cafe-1/group-codes", {}).json()["command"]
    page.get_by_test_id("group-input").fill(command)
    page.get_by_test_id("group-send").click()
    expect(page.get_by_test_id("group-message").filter(has_text="This group is linked to Bean There")).to_be_visible()

    # Anna writes to the cafe: her topic appears in the list, with her order in its header and her message.
    emu.send(CUSTOMER_BOT, ANNA, "Soy milk please")
    topic = page.get_by_test_id("topic").filter(has_text="Anna")
    expect(topic).to_be_visible()
    topic.click()
    messages = page.get_by_test_id("group-message")
    expect(messages.filter(has_text="#A-1 — preparing")).to_be_visible()
    expect(messages.filter(has_text="Soy milk please")).to_be_visible()

    # Her photo shows in her topic as a photo, with its caption.
    emu.send_media(CUSTOMER_BOT, ANNA, "photo", PNG, caption="the wrong cup")
    expect(messages.filter(has_text="the wrong cup").get_by_test_id("message-photo")).to_be_visible()

    # Olga answers in the topic; Anna gets it from the customer bot.
    page.get_by_test_id("group-input").fill("Sure, coming up")
    page.get_by_test_id("group-send").click()
    wait_until(
        lambda: any("Sure, coming up" in m["plain_text"] for m in emu.messages(CUSTOMER_BOT, ANNA)), 15, what="the reply to Anna"
    )
    screenshot(page, "sandbox-group.png")
