"""The staff group story through the real processes: gunicorn, run_bot.py with both bots, the emulator.

A manager adds the staff bot to the cafe's supergroup and a barista sends the group code there. A customer
writes: a topic named after them opens with their order in its header, the message lands in it; the barista
answers in the topic and the customer gets it; a stranger in the group cannot answer (the group is told once);
the backend's dialog API and the cabinet show the same conversation; a deleted topic is opened again; taking
the bot's admin rights is said in the group and in /healthz, giving them back is too.
"""

from __future__ import annotations

import secrets

import pytest

from tests.e2e.conftest import Stack, wait_until
from tests.e2e.test_staff_story import Staff, customer, wait_customer_message

pytestmark = pytest.mark.e2e

OWNER, BARISTA, STRANGER = 7101, 7102, 7109
ANNA = 1101


@pytest.fixture(scope="module")
def staff_token() -> str:
    return f"{secrets.randbelow(9 * 10**9) + 10**9}:{secrets.token_urlsafe(32)}"


class Group:
    """The staff supergroup as its members see it in the emulator."""

    def __init__(self, stack: Stack, staff: Staff) -> None:
        self.emu = stack.emu
        self.staff = staff
        for user_id, name in ((OWNER, "Maria"), (STRANGER, "Nobody")):
            self.emu.create_user(user_id, name, language_code="en")
        self.chat_id = self.emu.create_group(OWNER, "Bean There staff")["chat_id"]
        for member in (BARISTA, STRANGER):
            self.emu.set_member(self.chat_id, member_id=member)

    def bot_rights(self, status: str, manage: bool = False) -> None:
        self.emu.set_member(self.chat_id, bot=self.staff.bot, status=status, can_manage_topics=manage)

    def said(self, thread: int | None = None) -> list[str]:
        state = self.emu.group(self.chat_id)
        return [
            m["plain_text"]
            for m in state["messages"]
            if m["from"] == "bot" and not m["service"] and not m["deleted"] and m["message_thread_id"] == thread
        ]

    def wait_said(self, fragment: str, thread: int | None = None) -> str:
        return wait_until(
            lambda: next((s for s in self.said(thread) if fragment in s), None), 15, what=f"{fragment!r} in the group"
        )

    def topics(self) -> list[dict]:
        return [t for t in self.emu.group(self.chat_id)["topics"] if not t["deleted"]]


def test_a_staff_group_with_a_topic_per_customer(stack: Stack, staff_token: str):
    staff = Staff(stack, staff_token)
    staff.start()
    customer(stack, ANNA, "Anna", "A-1")
    staff.join(BARISTA, "Olga")
    group = Group(stack, staff)
    group.bot_rights("administrator", manage=True)

    issued = stack.api.post("/horeca/cafe-1/group-codes", {}).json()
    assert issued["deep_link"] == f"https://t.me/{staff.username}?startgroup={issued['code']}&admin=manage_topics"
    stack.emu.group_send(group.chat_id, BARISTA, issued["command"])
    group.wait_said("This group is linked to Bean There")

    # Anna writes to the cafe: her topic opens with her order in its header, her message lands in it.
    stack.emu.send("E2ECafeBot", ANNA, "Soy milk please")
    topic = wait_until(lambda: (group.topics() or [None])[0], 15, what="Anna's topic")
    assert topic["name"] == "Anna"
    thread = topic["message_thread_id"]
    group.wait_said("Soy milk please", thread)
    assert group.said(thread)[0] == "👤 Anna\nActive orders:\n• #A-1 — preparing"
    staff.wait_for(BARISTA, "Soy milk please")  # the cabinet's notice still comes too

    # The barista answers in the topic: Anna gets it from the customer bot.
    stack.emu.group_send(group.chat_id, BARISTA, "Sure, coming up", message_thread_id=thread)
    assert "Bean There" in wait_customer_message(stack, ANNA, "Sure, coming up")["plain_text"]

    # A stranger in the group cannot answer; the group is told who can, once.
    for text in ("I'll answer", "Me again"):
        stack.emu.group_send(group.chat_id, STRANGER, text, message_thread_id=thread)
    told = group.wait_said("only staff of Bean There", thread)
    assert told == "Nobody, only staff of Bean There can answer customers: Olga. Your messages do not reach the customer."

    # The backend's dialog API holds the same conversation, with who answered.
    dialog = wait_until(
        lambda: (d := stack.api.get(f"/horeca/cafe-1/dialogs/{ANNA}").json())["messages"][-1]["delivery"] == "sent" and d,
        what="the topic reply delivered",
    )
    assert [(m["direction"], m["text"], (m["staff"] or {}).get("name")) for m in dialog["messages"]] == [
        ("in", "Soy milk please", None),
        ("out", "Sure, coming up", "Olga"),
    ]
    assert not [m for m in stack.messages(ANNA) if "answer" in m["plain_text"] or "Me again" in m["plain_text"]]
    assert sum("only staff" in s for s in group.said(thread)) == 1

    # The topic's header follows Anna's order.
    stack.api.push(ANNA, "A-1", "ready")
    wait_until(lambda: group.said(thread)[0].endswith("#A-1 — ready"), 15, what="the header redrawn")

    # A deleted topic is opened again with the next message.
    stack.emu.topic(group.chat_id, OWNER, "delete", message_thread_id=thread)
    stack.emu.send("E2ECafeBot", ANNA, "Is it ready?")
    new = wait_until(lambda: next((t for t in group.topics() if t["message_thread_id"] != thread), None), 15, what="a new topic")
    group.wait_said("Is it ready?", new["message_thread_id"])

    # The bot loses its admin rights: one line in the group, and /healthz says which group and why.
    group.bot_rights("member")
    group.wait_said("make the bot an admin")
    problems = wait_until(lambda: stack.api.get("/healthz").json()["staff_groups"]["problems"], what="the problem in /healthz")
    assert [(p["horeca_id"], p["chat_id"], p["problem"]) for p in problems] == [("cafe-1", group.chat_id, "not_admin")]
    group.bot_rights("administrator", manage=True)
    group.wait_said("Rights are fine")
    wait_until(lambda: not stack.api.get("/healthz").json()["staff_groups"]["problems"], what="/healthz clear again")
