"""The staff bot's story through the real processes: gunicorn, run_bot.py with two tokens, the emulator.

A barista joins by a staff code, writes to two waiting customers at once, gets a reply with a Reply
button and answers it; a removed colleague gets nothing, a stranger sees nothing, and the selection
survives a restart of the bot process.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from devtools.tg_emulator import EmulatorClient
from tests.e2e.conftest import BOT_USERNAME, Stack, wait_until

pytestmark = pytest.mark.e2e

buttons = EmulatorClient.buttons

BARISTA, COLLEAGUE, STRANGER = 7001, 7002, 7009
ANNA, BORIS = 1001, 1002


@pytest.fixture(scope="module")
def staff_token() -> str:
    return f"{secrets.randbelow(9 * 10**9) + 10**9}:{secrets.token_urlsafe(32)}"


class Staff:
    """The staff bot as its users see it in the emulator (the bot is addressed by its token)."""

    def __init__(self, stack: Stack, token: str) -> None:
        self.stack = stack
        self.emu = stack.emu
        self.bot = token
        self.username = f"emu_{token.partition(':')[0]}_bot"  # what the emulator calls a bot it was not told about

    def start(self, **env: str) -> None:
        """Start run_bot.py with both tokens and wait until the staff bot polls too."""
        before = self.emu.stats(self.bot)["get_updates_calls"]
        self.stack.start_bot(HORECA_BOT_TOKEN=self.bot, **env)
        wait_until(lambda: self.emu.stats(self.bot)["get_updates_calls"] > before, 30, what="the staff bot to poll")

    def last_id(self, user_id: int) -> int:
        return max((m["message_id"] for m in self.emu.chat(self.bot, user_id)), default=0)

    def say(self, user_id: int, text: str, replies: int = 1, timeout: float = 10.0) -> list[dict]:
        since = self.last_id(user_id)
        self.emu.send(self.bot, user_id, text)
        return self.emu.wait_for_messages(self.bot, user_id, replies, timeout=timeout, since_message_id=since)

    def press(self, user_id: int, message: dict, starts: str, replies: int = 0, timeout: float = 10.0) -> list[dict]:
        """Press the first button whose text starts with `starts`; waits for the answer and `replies` new messages."""
        data = next(d for t, d in buttons(self.message(user_id, message["message_id"])) if t.startswith(starts))
        since = self.last_id(user_id)
        query = self.emu.press(self.bot, user_id, message["message_id"], callback_data=data)["callback_query_id"]
        wait_until(lambda: self.emu.callback_answers(self.bot, query), timeout, what=f"an answer to {starts!r}")
        if not replies:
            return []
        return self.emu.wait_for_messages(self.bot, user_id, replies, timeout=timeout, since_message_id=since)

    def answer(self) -> str:
        """The text of the bot's latest answer to a button press."""
        return self.emu.callback_answers(self.bot)[-1]["text"] or ""

    def messages(self, user_id: int) -> list[dict]:
        return self.emu.messages(self.bot, user_id)

    def message(self, user_id: int, message_id: int) -> dict:
        return next(m for m in self.messages(user_id) if m["message_id"] == message_id)

    def wait_for(self, user_id: int, fragment: str, timeout: float = 10.0) -> dict:
        """The first staff-bot message to `user_id` containing `fragment`, waiting for it."""

        def found() -> dict | None:
            return next((m for m in self.messages(user_id) if fragment in m["plain_text"]), None)

        return wait_until(found, timeout, what=f"{fragment!r} in the staff chat of {user_id}")

    def join(self, user_id: int, first_name: str, horeca_name: str = "Bean There") -> list[dict]:
        """The backend issues a staff code; the employee opens its deep link in the staff bot."""
        self.emu.create_user(user_id, first_name, language_code="en")
        response = self.stack.api.post("/horeca/cafe-1/staff-codes", {"horeca_name": horeca_name})
        assert response.status_code == 201, response.text
        issued = response.json()
        # The web app learned the staff bot's username from the running bot's heartbeat.
        assert issued["deep_link"] == f"https://t.me/{self.username}?start={issued['code']}"
        return self.say(user_id, f"/start {issued['code']}", replies=2)


def customer(stack: Stack, user_id: int, name: str, order_id: str) -> None:
    """A customer who linked the bot by the website's deep link, with an order being prepared (status received)."""
    stack.user(user_id, first_name=name)
    code = stack.api.issue_code()["code"]
    stack.say(user_id, f"/start {code}")
    stack.api.push(user_id, order_id, "preparing")
    stack.wait_status_messages(user_id, order_id, 1)


def customer_messages(stack: Stack, user_id: int, fragment: str) -> list[dict]:
    return [m for m in stack.messages(user_id) if fragment in m["plain_text"]]


def wait_customer_message(stack: Stack, user_id: int, fragment: str, timeout: float = 10.0) -> dict:
    return wait_until(
        lambda: (customer_messages(stack, user_id, fragment) or [None])[0],
        timeout,
        what=f"{fragment!r} in the customer chat of {user_id}",
    )


def cabinet(staff: Staff, user_id: int) -> dict[str, Any]:
    (listing,) = staff.say(user_id, "/dialogs")
    return listing


def test_staff_write_to_many_reply_and_remove(stack: Stack, staff_token: str):
    staff = Staff(stack, staff_token)
    staff.start()
    customer(stack, ANNA, "Anna", "A-1")
    customer(stack, BORIS, "Boris", "B-1")

    welcome, listing = staff.join(BARISTA, "Olga")
    assert "You are now staff of Bean There" in welcome["plain_text"]
    assert [t for t, _ in buttons(listing)][:4] == ["☐ Boris · #B-1 preparing", "💬", "☐ Anna · #A-1 preparing", "💬"]
    assert stack.api.get("/horeca/cafe-1/staff").json()["staff"][0]["telegram_user_id"] == BARISTA

    # Select both, write once: both customers get it through the customer bot, the barista a summary.
    staff.press(BARISTA, listing, "Select all")
    assert "Selected: 2" in staff.message(BARISTA, listing["message_id"])["plain_text"]
    (prompt,) = staff.press(BARISTA, listing, "✏️ Write to selected (2)", replies=1)
    assert "Write your message to 2" in prompt["plain_text"]
    (ack,) = staff.say(BARISTA, "The machine is down, ten more minutes")
    assert "Sending to 2 customers" in ack["plain_text"]
    for user_id in (ANNA, BORIS):
        got = wait_customer_message(stack, user_id, "The machine is down, ten more minutes")
        assert "Bean There" in got["plain_text"]
    staff.wait_for(BARISTA, "Delivered to all 2")
    # The sent prompt's old ✖️ says it was sent (not "Cancelled"), and the prompt loses its buttons.
    sent_prompt = prompt
    staff.press(BARISTA, sent_prompt, "✖️ Cancel")
    assert staff.answer() == "Already sent."
    closed = wait_until(
        lambda: (lambda m: m if not buttons(m) else None)(staff.message(BARISTA, sent_prompt["message_id"])),
        what="the sent prompt without its buttons",
    )
    assert closed["plain_text"].endswith("✅ Sent.") and "Cancelled" not in closed["plain_text"]
    # The customers' status messages name the cafe as the staff messages do.
    stack.api.push(ANNA, "A-1", "ready")
    assert "Bean There" in stack.wait_status_messages(ANNA, "A-1", 2)[-1]["plain_text"]

    # Anna answers in the customer bot; every staff member gets it with a Reply button.
    since = stack.last_message_id(ANNA)
    stack.emu.send(BOT_USERNAME, ANNA, "Soy milk is fine")
    (receipt,) = stack.emu.wait_for_messages(BOT_USERNAME, ANNA, 1, since_message_id=since)
    assert "Bean There" in receipt["plain_text"]
    notice = staff.wait_for(BARISTA, "Soy milk is fine")
    assert notice["plain_text"] == "💬 Anna (order #A-1):\nSoy milk is fine"
    assert [t for t, _ in buttons(notice)] == ["↩️ Reply"]
    (prompt,) = staff.press(BARISTA, notice, "↩️ Reply", replies=1)
    assert "Reply to Anna (order #A-1)" in prompt["plain_text"]
    staff.say(BARISTA, "Soy latte coming up!")
    wait_customer_message(stack, ANNA, "Soy latte coming up!")
    assert not customer_messages(stack, BORIS, "Soy latte")  # only the selected dialog
    # The list drawn for two selected re-draws itself (Reply made Anna the selection) instead of writing to one.
    staff.press(BARISTA, listing, "✏️ Write to selected (2)")
    assert staff.answer().startswith("The list has changed")
    redrawn = staff.message(BARISTA, listing["message_id"])
    assert "Selected: 1" in redrawn["plain_text"] and "✏️ Write to selected (1)" in [t for t, _ in buttons(redrawn)]
    conversation = stack.api.get(f"/horeca/cafe-1/dialogs/{ANNA}").json()
    assert [(m["direction"], m["text"]) for m in conversation["messages"]] == [
        ("out", "The machine is down, ten more minutes"),
        ("in", "Soy milk is fine"),
        ("out", "Soy latte coming up!"),
    ]
    wait_until(
        lambda: stack.api.get(f"/horeca/cafe-1/dialogs/{ANNA}").json()["messages"][-1]["delivery"] == "sent",
        what="the reply recorded as sent",
    )

    # A colleague joins, is removed by the backend, and gets nothing more.
    staff.join(COLLEAGUE, "Ivan")
    removed = stack.api.session.delete(f"{stack.api.base_url}/horeca/cafe-1/staff/{COLLEAGUE}", timeout=10)
    assert removed.status_code == 200, removed.text
    staff.wait_for(COLLEAGUE, "You were removed from the staff of Bean There")
    stack.emu.send(BOT_USERNAME, BORIS, "Is mine ready yet?")
    staff.wait_for(BARISTA, "Is mine ready yet?")
    assert not [m for m in staff.messages(COLLEAGUE) if "Is mine ready yet?" in m["plain_text"]]
    (refused,) = staff.say(COLLEAGUE, "/dialogs")
    assert "staff code" in refused["plain_text"] and not buttons(refused)

    # A stranger in the staff bot sees only how to join.
    stack.emu.create_user(STRANGER, "Nobody", language_code="en")
    for text in ("/start", "/dialogs", "hello"):
        (reply,) = staff.say(STRANGER, text)
        assert "staff code" in reply["plain_text"] and "Anna" not in reply["plain_text"] and not buttons(reply)
    assert all("Is mine ready" not in m["plain_text"] for m in staff.messages(STRANGER))


def test_selection_survives_a_restart_of_the_bot(stack: Stack, staff_token: str):
    staff = Staff(stack, staff_token)
    staff.start()
    customer(stack, ANNA, "Anna", "A-1")
    customer(stack, BORIS, "Boris", "B-1")
    _, listing = staff.join(BARISTA, "Olga")
    staff.press(BARISTA, listing, "☐ Anna")
    assert any(t.startswith("☑ Anna") for t, _ in buttons(staff.message(BARISTA, listing["message_id"])))

    stack.bot.kill9()
    staff.start()

    listing = cabinet(staff, BARISTA)
    labels = [t for t, _ in buttons(listing)]
    assert any(t.startswith("☑ Anna") for t in labels) and any(t.startswith("☐ Boris") for t in labels)
    (prompt,) = staff.press(BARISTA, listing, "✏️ Write to selected (1)", replies=1)
    assert "Reply to Anna" in prompt["plain_text"] or "to 1" in prompt["plain_text"]
    staff.say(BARISTA, "Still here after the restart")
    wait_customer_message(stack, ANNA, "Still here after the restart")
    assert not customer_messages(stack, BORIS, "Still here")
