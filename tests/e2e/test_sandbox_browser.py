"""The sandbox in a browser: the emulator's page played with headless Chromium (Debian's package, driven by Playwright).

`test_customer_story_in_the_sandbox` runs what the README tells a newcomer to run (`python -m devtools.launch`,
i.e. `make run`: the emulator, gunicorn and run_bot.py) and clicks through the customer's story as they would;
`test_page_against_the_emulator_alone` checks the page itself (safe rendering, buttons, alerts, edits, the block
switch, the staff tab) with the test playing the bot. A screenshot goes to tests/artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.tg_emulator import EmulatorClient, EmulatorServer
from tests.support.e2e import Api, free_port, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (requirements-dev.txt)")
expect = sync_api.expect

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
PY = sys.executable
# Debian's Chromium, as the sandbox's users have it; Playwright must not download a browser of its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CUSTOMER_BOT = "SandboxCafeBot"  # the usernames devtools/launch.py gives the sandbox's bots
STAFF_BOT = "SandboxCafeStaffBot"
DEV_TOKEN = "dev-token"
TIMEOUT_MS = 15_000


# ---------------------------------------------------------------------------------------------- helpers


def find_chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def has_emoji_font() -> bool:
    """Debian's fonts-noto-color-emoji: without it the bots' emoji are boxes in the screenshots."""
    return any(Path("/usr/share/fonts").glob("**/NotoColorEmoji*.ttf"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # A test never installs anything: what is missing is a skip that says how to install it.
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium for the browser test: run `make browser` (Debian's chromium and fonts-noto-color-emoji)")
    if not has_emoji_font():
        pytest.skip("no emoji font for the browser test's screenshots: run `make browser` (fonts-noto-color-emoji)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    """A fresh browser tab at 1280×800; a JavaScript error on the page fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def bot_messages(page, text: str | None = None):
    messages = page.locator('[data-testid="message"][data-from="bot"]')
    return messages.filter(has_text=text) if text else messages


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


# ---------------------------------------------------------------------------------------------- the sandbox


class Sandbox:
    """`python -m devtools.launch` on free ports and a temporary SQLite database, as `make run` starts it."""

    def __init__(self, tmp_path: Path) -> None:
        self.web_url = f"http://127.0.0.1:{free_port()}"
        self.emulator_url = f"http://127.0.0.1:{free_port()}"
        self.log_path = tmp_path / "launch.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TELEGRAM_", "HORECA_", "BACKEND_WEBHOOK", "DELIVERY_", "GUNICORN_", "PROMETHEUS_"))
            and k not in ("API_TOKEN", "BOT_USERNAME", "DEV_MODE", "DATABASE_URL")
        }
        env.update(
            WEB_PORT=self.web_url.rsplit(":", 1)[1],
            EMULATOR_PORT=self.emulator_url.rsplit(":", 1)[1],
            DATABASE_URL=f"sqlite:///{tmp_path / 'sandbox.db'}",
            GUNICORN_WORKERS="2",
            PYTHONUNBUFFERED="1",
        )
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        # A session of its own: if launch.py ever hangs, its whole group (and only it) can be killed.
        self.proc = subprocess.Popen(
            [PY, "-m", "devtools.launch"], cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.api = Api(self.web_url, DEV_TOKEN)
        self.emu = EmulatorClient(self.emulator_url)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 40.0) -> None:
        """Until launch.py printed its banner and run_bot.py polls the emulator for the customer bot."""

        def ready() -> bool:
            assert self.proc.poll() is None, f"devtools.launch exited:\n{self.output()[-4000:]}"
            output = self.output()
            if "Sandbox is running" not in output:
                return False
            assert f"API token: {DEV_TOKEN}" in output, "launch.py no longer prints the development API token"
            return self.emu.stats(CUSTOMER_BOT)["get_updates_calls"] > 0

        try:
            wait_until(ready, timeout, what="the sandbox to start (launch.py banner, run_bot.py polling)")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.output()[-4000:]}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # launch.py stops its children, newest first
            try:
                self.proc.wait(25)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.emu.close()
        self.api.close()
        self._log.close()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path)
    try:
        sandbox.wait_ready()
        yield sandbox
    finally:
        sandbox.stop()


# ---------------------------------------------------------------------------------------------- the story


def test_customer_story_in_the_sandbox(sandbox: Sandbox, page):
    """README's walkthrough: code from the API, sent in the page; statuses; Cancel appears, is used, vanishes."""
    ann = 5012345678
    page.goto(sandbox.emulator_url + "/")
    expect(page.get_by_test_id("connection")).to_have_text("connected")

    # Ann opens Telegram: a user of her own, in English.
    page.get_by_test_id("new-user-id").fill(str(ann))
    page.get_by_test_id("new-user-name").fill("Ann")
    page.get_by_test_id("new-user-lang").select_option("en")
    page.get_by_test_id("create-user").click()
    expect(page.get_by_test_id("chat-title")).to_have_text(f"@{CUSTOMER_BOT}")
    expect(page.get_by_test_id("bot-tab")).to_have_count(2)

    # The website issues a code; Ann pastes its deep link into the chat, which Telegram sends as /start CODE.
    issued = sandbox.api.post("/verification-codes", {}).json()
    code = issued["code"]
    assert issued["deep_link"] == f"https://t.me/{CUSTOMER_BOT}?start={code}"
    page.get_by_test_id("composer-input").fill(issued["deep_link"])
    page.get_by_test_id("composer-input").press("Enter")
    expect(page.locator('[data-testid="message"][data-from="user"]')).to_have_text([re.compile(f"/start {code}")])
    expect(bot_messages(page)).to_have_count(1)
    wait_until(lambda: sandbox.api.post("/verification/", {"code": code}).status_code == 200, what="the code to be claimed")
    assert sandbox.api.post("/verification/", {"code": code}).json() == {"code": code, "user_id": ann}

    # Statuses from the website: the Cancel button sits on the newest message of the order, only there.
    sandbox.api.push(ann, "A-1", "created", expect=[202])
    sandbox.api.push(ann, "A-1", "accepted", expect=[202])
    about_a1 = bot_messages(page, "Order A-1")
    expect(about_a1).to_have_count(2)
    expect(about_a1.last.get_by_test_id("inline-button")).to_have_text(["Cancel order"])
    expect(about_a1.first.get_by_test_id("inline-button")).to_have_count(0)
    expect(page.get_by_test_id("inline-button")).to_have_count(1)

    # Cancel asks first; "Yes, cancel" requests the cancellation and the button goes.
    about_a1.last.get_by_role("button", name="Cancel order").click()
    expect(about_a1.last.get_by_role("button", name="Yes, cancel")).to_be_visible()
    assert sandbox.api.order("A-1")["cancel_requested"] is False
    about_a1.last.get_by_role("button", name="Yes, cancel").click()
    expect(page.get_by_test_id("toast")).to_be_visible()
    expect(page.get_by_test_id("inline-button")).to_have_count(0)
    expect(about_a1.last).to_contain_text("Cancellation requested")
    order = wait_until(
        lambda: (o := sandbox.api.order("A-1"))["cancel_requested"] and o, what="GET /orders to show the cancel request"
    )
    assert order["cancellable"] is False and order["cancel_requested_at"]

    # Another order: Cancel while it is being made, gone once it is ready.
    sandbox.api.push(ann, "B-2", "created", expect=[202])
    expect(bot_messages(page, "Order B-2").last.get_by_role("button", name="Cancel order")).to_be_visible()
    sandbox.api.push(ann, "B-2", "ready", expect=[202])
    expect(bot_messages(page, "Order B-2")).to_have_count(2)
    expect(page.get_by_test_id("inline-button")).to_have_count(0)
    expect(page.get_by_test_id("toast")).to_be_hidden()

    # The sandbox's cafe has a profile (devtools/launch.py): its name, its own words, the ETA in the browser's time.
    assert sandbox.api.get("/horeca/cafe-1").json()["name"] == "Bean There"
    ready = {"status": "ready", "pickup_code": "K-42", "eta": "2030-06-01T12:30:00+03:00", "items": [{"name": "Latte", "qty": 2}]}
    sent = sandbox.api.post("/provide_message_to_user/", {"user_id": ann, "horeca_id": "cafe-1", "order_id": "C-3", **ready})
    assert sent.status_code == 202, sent.text
    about_c3 = bot_messages(page, "Order C-3")
    expect(about_c3).to_contain_text(["Order C-3 · Bean There"])
    expect(about_c3).to_contain_text(["☕ Bean There: order C-3 is ready! Pickup code K-42"])
    expect(about_c3).to_contain_text(["• Latte × 2"])
    expect(about_c3.locator("time")).to_have_attribute("datetime", "2030-06-01T09:30:00.000Z")
    shot = screenshot(page, "sandbox.png")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(bot_messages(page, "Order B-2").last).to_be_in_viewport(ratio=1)  # the chat stays scrolled to the bottom
    screenshot(page, "sandbox-phone.png")
    page.set_viewport_size({"width": 1280, "height": 800})

    # Ann blocks the bot: the API can tell; she restarts it and can be reached again.
    page.get_by_test_id("block-toggle").click()
    expect(page.get_by_test_id("blocked-banner")).to_be_visible()
    expect(page.get_by_test_id("composer-input")).to_be_hidden()
    wait_until(lambda: sandbox.api.subscribe_status(ann)["is_bot_blocked"], what="subscribe-status to say blocked")
    page.get_by_test_id("restart-bot").click()
    expect(page.get_by_test_id("blocked-banner")).to_be_hidden()
    expect(page.get_by_test_id("block-toggle")).to_have_text("Block bot")
    wait_until(lambda: sandbox.api.subscribe_status(ann)["subscribed"], what="subscribe-status to say subscribed again")

    # The staff bot has a chat of its own.
    page.locator(f'[data-testid="bot-tab"][data-bot="{STAFF_BOT}"]').click()
    expect(page.get_by_test_id("chat-title")).to_have_text(f"@{STAFF_BOT}")
    expect(bot_messages(page)).to_have_count(0)
    assert shot.stat().st_size > 10_000


# ---------------------------------------------------------------------------------------------- the page alone

CUSTOMER_TOKEN = "7000000001:" + "BrowserTestCustomer".ljust(35, "x")
STAFF_TOKEN = "7000000002:" + "BrowserTestStaff".ljust(35, "x")


class FakeBot:
    """The bot's side, by hand: Bot API calls to the emulator."""

    def __init__(self, base_url: str, token: str) -> None:
        self.url = f"{base_url}/bot{token}/"
        self.offset = 0

    def call(self, method: str, **params: Any) -> Any:
        body = requests.post(self.url + method, json=params, timeout=10).json()
        assert body["ok"], body
        return body["result"]

    def try_call(self, method: str, **params: Any) -> dict[str, Any]:
        return requests.post(self.url + method, json=params, timeout=10).json()

    def updates(self) -> list[dict[str, Any]]:
        """Updates since the last call (confirming them)."""
        result = self.call("getUpdates", offset=self.offset, timeout=0)
        if result:
            self.offset = result[-1]["update_id"] + 1
        return result

    def next_update(self, kind: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = []
        wait_until(lambda: found.extend(u[kind] for u in self.updates() if kind in u) or found, what=f"a {kind} update")
        return found[0]


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer("127.0.0.1", 0, bots={CUSTOMER_BOT: CUSTOMER_TOKEN, STAFF_BOT: STAFF_TOKEN}) as server:
        yield server


def test_page_against_the_emulator_alone(emulator: EmulatorServer, page):
    """Formatting is rendered safely, buttons press, answers show, edits apply, the switches work."""
    emu = EmulatorClient(emulator.url)
    emu.create_user(601, "Ann", language_code="en")
    bot, staff = FakeBot(emulator.url, CUSTOMER_TOKEN), FakeBot(emulator.url, STAFF_TOKEN)
    page.goto(f"{emulator.url}/?user=601&bot={CUSTOMER_BOT}")

    # Telegram's HTML: allowed tags become markup, everything else stays text; no unsafe link opens.
    text = (
        '<b>bold <i>both</i></b> <u>u</u> <s>s</s> <code>A-1</code> <pre>pre</pre> <a href="https://example.com/x">ok</a> '
        '<a href="javascript:alert(1)">js</a> &lt;img src=x onerror=alert(1)&gt; <blockquote>quote</blockquote>'
    )
    keyboard = {
        "inline_keyboard": [
            [{"text": "Yes", "callback_data": "y"}, {"text": "No", "callback_data": "n"}],
            [{"text": "Site", "url": "https://example.com/"}],
        ]
    }
    sent = bot.call("sendMessage", chat_id=601, text=text, parse_mode="HTML", reply_markup=keyboard)
    message = page.get_by_test_id("message").filter(has_text="bold")
    body = message.get_by_test_id("message-text")
    expect(body).to_contain_text("<img src=x onerror=alert(1)>")
    tags = body.evaluate("e => [...e.querySelectorAll('*')].map(n => n.tagName.toLowerCase())")
    assert tags == ["b", "i", "u", "s", "code", "pre", "a", "a"]
    assert body.locator("b i").inner_text() == "both"
    assert body.locator("a").nth(0).get_attribute("href") == "https://example.com/x"
    assert body.locator("a").nth(1).get_attribute("href") is None
    expect(message.get_by_test_id("inline-button")).to_have_text(["Yes", "No", re.compile("^Site")])

    # A press reaches the bot as a callback query; its answer with show_alert is an alert.
    message.get_by_role("button", name="Yes").click()
    query = bot.next_update("callback_query")
    assert (query["data"], query["message"]["message_id"], query["from"]["id"]) == ("y", sent["message_id"], 601)
    bot.call("answerCallbackQuery", callback_query_id=query["id"], text="Too late to cancel", show_alert=True)
    expect(page.get_by_test_id("alert-dialog")).to_be_visible()
    expect(page.get_by_test_id("alert-text")).to_have_text("Too late to cancel")
    page.get_by_test_id("alert-ok").click()
    expect(page.get_by_test_id("alert-dialog")).to_be_hidden()

    # Without show_alert it is a toast; an edit without reply_markup takes the keyboard away.
    message.get_by_role("button", name="No").click()
    query = bot.next_update("callback_query")
    bot.call("answerCallbackQuery", callback_query_id=query["id"], text="Kept")
    expect(page.get_by_test_id("toast")).to_have_text("Kept")
    bot.call("editMessageText", chat_id=601, message_id=sent["message_id"], text="<b>Edited</b>", parse_mode="HTML")
    edited = page.locator(f'[data-testid="message"][data-message-id="{sent["message_id"]}"]')
    expect(edited.get_by_test_id("message-text")).to_have_text("Edited")
    expect(edited).to_contain_text("edited")
    expect(edited.get_by_test_id("inline-button")).to_have_count(0)

    # A press on a button the bot removed a moment ago (the page had not heard yet) still reaches the bot, as
    # in Telegram, so the bot can refuse it itself. The page is kept stale by holding back its polls.
    late = bot.call(
        "sendMessage", chat_id=601, text="Late", reply_markup={"inline_keyboard": [[{"text": "Go", "callback_data": "g"}]]}
    )
    expect(page.get_by_role("button", name="Go")).to_be_visible()
    page.route("**/control/chat?*", lambda route: route.abort())
    bot.call("editMessageReplyMarkup", chat_id=601, message_id=late["message_id"])
    page.get_by_role("button", name="Go").click()
    assert bot.next_update("callback_query")["data"] == "g"
    page.unroute("**/control/chat?*")
    expect(page.get_by_role("button", name="Go")).to_have_count(0)

    # Typing sends a message update.
    page.get_by_test_id("composer-input").fill("hello bot")
    page.get_by_test_id("composer-send").click()
    assert bot.next_update("message")["text"] == "hello bot"
    expect(page.locator('[data-testid="message"][data-from="user"]')).to_have_text([re.compile("hello bot")])

    # Block: the bot gets my_chat_member and 403 on sending; Restart unblocks and sends /start.
    page.get_by_test_id("block-toggle").click()
    expect(page.get_by_test_id("blocked-banner")).to_be_visible()
    assert bot.next_update("my_chat_member")["new_chat_member"]["status"] == "kicked"
    assert bot.try_call("sendMessage", chat_id=601, text="hi")["error_code"] == 403
    page.get_by_test_id("restart-bot").click()
    expect(page.get_by_test_id("blocked-banner")).to_be_hidden()
    assert bot.next_update("message")["text"] == "/start"
    expect(page.get_by_test_id("composer-input")).to_be_enabled()

    # The staff bot writes meanwhile: a badge on its tab, its own chat when opened.
    staff.call("sendMessage", chat_id=601, text="Staff cabinet")
    staff_tab = page.locator(f'[data-testid="bot-tab"][data-bot="{STAFF_BOT}"]')
    expect(staff_tab.get_by_test_id("unread-badge")).to_have_text("1")
    staff_tab.click()
    expect(page.get_by_test_id("chat-title")).to_have_text(f"@{STAFF_BOT}")
    expect(page.get_by_test_id("message")).to_have_text([re.compile("Staff cabinet")])
    expect(staff_tab.get_by_test_id("unread-badge")).to_have_count(0)


def test_reply_keyboards_deep_links_unread_and_reset(emulator: EmulatorServer, page):
    """What the staff welcome needs (its menu), links to the other bot, badges across users, and a reset."""
    emu = EmulatorClient(emulator.url)
    emu.create_user(601, "Ann", language_code="en")
    emu.create_user(602, "Olga", language_code="en")
    bot, staff = FakeBot(emulator.url, CUSTOMER_TOKEN), FakeBot(emulator.url, STAFF_TOKEN)
    page.goto(f"{emulator.url}/?user=602&bot={STAFF_BOT}")
    expect(page.get_by_test_id("chat-title")).to_have_text(f"@{STAFF_BOT}")

    # The staff welcome says to open 💬 Dialogs: the menu is there under the chat, and a press sends its text.
    menu = {"keyboard": [[{"text": "💬 Dialogs"}, {"text": "⚙️ Settings"}]], "resize_keyboard": True}
    staff.call("sendMessage", chat_id=602, text="Welcome! Open 💬 Dialogs below.", reply_markup=menu)
    expect(page.get_by_test_id("reply-button")).to_have_text(["💬 Dialogs", "⚙️ Settings"])
    page.get_by_role("button", name="💬 Dialogs").click()
    assert staff.next_update("message")["text"] == "💬 Dialogs"
    expect(page.locator('[data-testid="message"][data-from="user"]')).to_have_text([re.compile("💬 Dialogs")])
    expect(page.get_by_test_id("reply-keyboard")).to_be_visible()  # it stays, as in Telegram
    screenshot(page, "sandbox-reply-keyboard.png")
    staff.call("sendMessage", chat_id=602, text="Menu closed", reply_markup={"remove_keyboard": True})
    expect(page.get_by_test_id("reply-keyboard")).to_be_hidden()

    # A staff deep link pasted in the customer bot's chat goes to the staff bot, whose chat opens.
    page.locator(f'[data-testid="bot-tab"][data-bot="{CUSTOMER_BOT}"]').click()
    expect(page.get_by_test_id("chat-title")).to_have_text(f"@{CUSTOMER_BOT}")
    page.get_by_test_id("composer-input").fill(f"https://t.me/{STAFF_BOT}?start=Q8M3ZK7TRA")
    page.get_by_test_id("composer-input").press("Enter")
    assert staff.next_update("message")["text"] == "/start Q8M3ZK7TRA"
    expect(page.get_by_test_id("chat-title")).to_have_text(f"@{STAFF_BOT}")
    assert bot.updates() == []
    # ... and so does one clicked in a bot's message.
    page.locator(f'[data-testid="bot-tab"][data-bot="{CUSTOMER_BOT}"]').click()
    bot.call("sendMessage", chat_id=602, text=f"Staff? Open t.me/{STAFF_BOT}?start=ABCDEFGH12 to join.")
    page.get_by_role("link", name=f"t.me/{STAFF_BOT}?start=ABCDEFGH12").click()
    assert staff.next_update("message")["text"] == "/start ABCDEFGH12"
    expect(page.get_by_test_id("chat-title")).to_have_text(f"@{STAFF_BOT}")
    assert bot.updates() == []

    # Unread badges belong to the user: they survive playing someone else for a while.
    page.locator(f'[data-testid="bot-tab"][data-bot="{CUSTOMER_BOT}"]').click()
    staff_tab = page.locator(f'[data-testid="bot-tab"][data-bot="{STAFF_BOT}"]')
    staff.call("sendMessage", chat_id=602, text="New dialog from Ann")
    expect(staff_tab.get_by_test_id("unread-badge")).to_have_text("1")
    staff.call("sendMessage", chat_id=601, text="Your order is ready")  # to Ann, while we play Olga
    page.get_by_test_id("user-select").select_option("601")
    expect(page.get_by_test_id("chat-sub")).to_contain_text("you are Ann")
    expect(staff_tab.get_by_test_id("unread-badge")).to_have_text("1")
    page.get_by_test_id("user-select").select_option("602")
    expect(page.get_by_test_id("chat-sub")).to_contain_text("you are Olga")
    expect(staff_tab.get_by_test_id("unread-badge")).to_have_text("1")
    staff_tab.click()
    expect(staff_tab.get_by_test_id("unread-badge")).to_have_count(0)

    # After a reset nobody is left to play: the page asks for a user instead of suggesting /start CODE.
    emu.reset()
    expect(page.get_by_test_id("chat")).to_have_text("Create or pick a user to start chatting.")
    expect(page.get_by_test_id("user-select")).to_have_value("")
    expect(page.get_by_test_id("new-user-name")).to_be_visible()
    expect(page.get_by_test_id("composer-input")).to_be_disabled()
