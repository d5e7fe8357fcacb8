"""The staff bot's handlers, offline: a real TeleBot against the in-process emulator, updates processed one by one."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import telebot
from sqlalchemy import select
from telebot import apihelper

from bot.staff import handlers as staff_handlers
from bot.staff.handlers import register_staff_handlers
from bot.staff.notices import render_notice
from bot.workers.summaries import summary_job
from devtools.tg_emulator import EmulatorClient, EmulatorServer
from models import OutboxMessage, db
from services import linking, orders, outreach, relay, staff
from services.cabinet import list_dialogs
from services.customers import Profile
from services.delivery import Job

CUSTOMER_TOKEN = "7100000001:" + "customer".ljust(35, "x")
STAFF_TOKEN = "7100000002:" + "staff".ljust(35, "y")
BOT = "staff_bot"
BARISTA = 9001
STRANGER = 9009


@pytest.fixture(scope="module")
def server():
    srv = EmulatorServer(bots={"cafe_bot": CUSTOMER_TOKEN, BOT: STAFF_TOKEN}).start()
    yield srv
    srv.stop()


class StaffBot:
    """The staff bot wired to the app, and the emulator playing the staff member."""

    def __init__(self, app, server, emu: EmulatorClient) -> None:
        self.app = app
        self.emu = emu
        self.bot = telebot.TeleBot(STAFF_TOKEN, threaded=False)
        register_staff_handlers(self.bot, app)
        self.offset = 0

    def process(self) -> None:
        """Handle every update the emulator has for the bot."""
        while True:
            updates = self.bot.get_updates(offset=self.offset, timeout=5, long_polling_timeout=0.05)
            if not updates:
                return
            self.offset = updates[-1].update_id + 1
            self.bot.process_new_updates(updates)

    def say(self, user_id: int, text: str) -> list[dict]:
        """The user writes; returns what the bot sent back."""
        before = self._last_id(user_id)
        self.emu.send(BOT, user_id, text)
        self.process()
        return self.emu.messages(BOT, user_id, since_message_id=before)

    def press(self, user_id: int, message: dict, data: str) -> list[dict]:
        """The user presses a button; returns what the bot sent back (new messages)."""
        before = self._last_id(user_id)
        self.emu.press(BOT, user_id, message["message_id"], callback_data=data)
        self.process()
        return self.emu.messages(BOT, user_id, since_message_id=before)

    def message(self, user_id: int, message_id: int) -> dict:
        return next(m for m in self.emu.messages(BOT, user_id) if m["message_id"] == message_id)

    def answers(self) -> list[dict]:
        return self.emu.callback_answers(BOT)

    def deliver_notices(self) -> list[dict]:
        """Play the delivery job for the staff bot: render and send every pending staff notice."""
        with self.app.app_context():
            rows = db.session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.bot == "horeca", OutboxMessage.state == "pending")
                .order_by(OutboxMessage.id)
            ).all()
            sent = []
            for row in rows:
                rendered = render_notice(job(row))
                sent.append(self.bot.send_message(row.chat_id, rendered.text, parse_mode="HTML", reply_markup=rendered.markup))
                row.state = "sent"
            db.session.commit()
        return [self.message(m.chat.id, m.message_id) for m in sent]

    def _last_id(self, user_id: int) -> int:
        messages = self.emu.messages(BOT, user_id)
        return messages[-1]["message_id"] if messages else 0


def job(row: OutboxMessage) -> Job:
    return Job(
        id=row.id,
        bot=row.bot,
        kind=row.kind,
        chat_id=row.chat_id,
        order_pk=row.order_pk,
        status=row.status,
        text=row.text,
        payload=row.payload,
        attempts=1,
        first_attempt_at=datetime.now(UTC).replace(tzinfo=None),
    )


@pytest.fixture
def sb(app, server, monkeypatch):
    monkeypatch.setattr(apihelper, "API_URL", server.api_url)
    emu = EmulatorClient(server.url)
    emu.reset()
    for user_id, name in ((BARISTA, "Olga"), (9002, "Ivan"), (STRANGER, "Nobody")):
        emu.create_user(user_id, name, language_code="en")
    staff_bot = StaffBot(app, server, emu)
    yield staff_bot
    emu.close()


def buttons(message: dict) -> list[tuple[str, str | None]]:
    return EmulatorClient.buttons(message)


def button(message: dict, starts: str) -> str:
    """The callback data of the first button whose text starts with `starts`."""
    return next(data for text, data in buttons(message) if text.startswith(starts))


def staff_code(app, horeca_id: str = "cafe-1", name: str | None = "Bean There") -> str:
    with app.app_context():
        return staff.issue_code(horeca_id, name).code


def customer(app, user_id: int, first_name: str, horeca_id: str = "cafe-1", order_id: str | None = None) -> int:
    with app.app_context():
        code = linking.issue().code
        linking.claim(code, user_id, chat_id=user_id, profile=Profile(first_name=first_name))
        orders.record_status(user_id, horeca_id, order_id or f"{first_name}-1", "preparing")
        from services import customers

        row = customers.find(user_id)
        db.session.rollback()
        return row.id


def customer_messages(app) -> list[tuple[int, str]]:
    with app.app_context():
        rows = db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.bot == "customer", OutboxMessage.kind == "message")
            .order_by(OutboxMessage.id)
        ).all()
        return [(r.chat_id, r.text) for r in rows]


def joined(sb, user_id: int = BARISTA, horeca_id: str = "cafe-1") -> list[dict]:
    return sb.say(user_id, f"/start {staff_code(sb.app, horeca_id)}")


# --- joining and strangers -------------------------------------------------------------------------


def test_a_stranger_is_told_how_to_join_and_sees_nothing_else(sb):
    customer(sb.app, 501, "Anna")
    for text in ("/start", "/dialogs", "hello", "💬 Dialogs", "/replies", "/horeca"):
        (reply,) = sb.say(STRANGER, text)
        assert "staff code" in reply["plain_text"], (text, reply["plain_text"])
        assert "Anna" not in reply["plain_text"] and not buttons(reply)
    (reply,) = sb.say(STRANGER, "/start")
    sb.emu.press(BOT, STRANGER, reply["message_id"], callback_data="st:1:0", force=True)  # a forged button
    sb.process()
    assert sb.answers()[-1]["show_alert"] is True
    with sb.app.app_context():
        assert relay.has_dialog(501) is False  # nobody is staff: nothing was relayed or selected


def test_start_with_a_staff_code_joins_and_shows_the_cabinet(sb):
    customer(sb.app, 501, "Anna", order_id="123")
    replies = joined(sb)
    assert "You are now staff of Bean There" in replies[0]["plain_text"]
    assert replies[0]["reply_markup"]["keyboard"][0][0]["text"] == "💬 Dialogs"  # the persistent menu
    cabinet = replies[1]
    assert "Bean There — dialogs" in cabinet["plain_text"]
    assert buttons(cabinet)[0][0] == "☐ Anna · #123 preparing"


def test_a_typed_code_joins_too_and_wrong_codes_are_limited(sb):
    code = staff_code(sb.app)
    assert "You are now staff" in sb.say(BARISTA, code.lower())[0]["plain_text"]
    for _ in range(linking.MAX_WRONG_CODES):
        assert "unknown or has expired" in sb.say(STRANGER, "WRONGCODE1")[0]["plain_text"]
    assert "Too many wrong codes" in sb.say(STRANGER, staff_code(sb.app))[0]["plain_text"]


def test_wrong_codes_across_users_refuse_a_right_staff_code_for_a_minute(sb):
    sb.app.config["WRONG_CODES_PER_MINUTE"] = 3
    for guesser in (9101, 9102, 9103):  # whichever bot they type in: wrong codes count together
        sb.emu.create_user(guesser, "Guesser", language_code="ru")
        assert "Такой код не найден" in sb.say(guesser, "WRONGCODE1")[0]["plain_text"]
    (refused,) = sb.say(9101, "WRONGCODE2")
    assert refused["plain_text"] == "⏳ Сейчас слишком много попыток ввести код. Попробуйте ещё раз через минуту."
    (reply,) = sb.say(BARISTA, staff_code(sb.app))
    assert reply["plain_text"] == "⏳ Too many code attempts right now. Please try again in a minute."
    with sb.app.app_context():
        assert not staff.is_staff(BARISTA)  # the code was not even looked at


def test_a_customer_code_does_not_make_anyone_staff(sb):
    with sb.app.app_context():
        code = linking.issue().code
    assert "unknown or has expired" in sb.say(STRANGER, f"/start {code}")[0]["plain_text"]


def test_a_removed_member_is_refused(sb):
    joined(sb)
    with sb.app.app_context():
        staff.remove("cafe-1", BARISTA)
    (reply,) = sb.say(BARISTA, "/dialogs")
    assert "staff code" in reply["plain_text"]
    (removed,) = sb.deliver_notices()
    assert "You were removed from the staff of Bean There" in removed["plain_text"]


# --- the cabinet -----------------------------------------------------------------------------------


def test_select_two_write_and_both_get_the_message(sb):
    customer(sb.app, 501, "Anna")
    customer(sb.app, 502, "Boris")
    customer(sb.app, 503, "Carl")
    cabinet = joined(sb)[1]
    sb.press(BARISTA, cabinet, button(cabinet, "☐ Anna"))
    cabinet = sb.message(BARISTA, cabinet["message_id"])  # edited in place
    assert any(text.startswith("☑ Anna") for text, _ in buttons(cabinet))
    sb.press(BARISTA, cabinet, button(cabinet, "☐ Boris"))
    cabinet = sb.message(BARISTA, cabinet["message_id"])
    assert "Selected: 2" in cabinet["plain_text"]

    (prompt,) = sb.press(BARISTA, cabinet, button(cabinet, "✏️ Write to selected (2)"))
    assert "Write your message to 2" in prompt["plain_text"] and "Anna" in prompt["plain_text"]
    (ack,) = sb.say(BARISTA, "The machine is down, ten more minutes")
    assert "Sending to 2 customers" in ack["plain_text"]
    text = "The machine is down, ten more minutes"
    assert customer_messages(sb.app) == [(501, text), (502, text)]
    # Back to idle: the next text is not sent anywhere.
    assert "To write to customers" in sb.say(BARISTA, "oops")[0]["plain_text"]
    assert len(customer_messages(sb.app)) == 2


def test_select_all_clear_and_pages(sb, app):
    app.config["DIALOGS_PAGE_SIZE"] = 3
    for n in range(7):
        customer(sb.app, 600 + n, f"C{n}")
    cabinet = joined(sb)[1]
    assert "1–3 of 7" in cabinet["plain_text"]
    assert [t for t, _ in buttons(cabinet) if "/" in t] == ["1/3"]
    sb.press(BARISTA, cabinet, button(cabinet, "Next »"))
    cabinet = sb.message(BARISTA, cabinet["message_id"])
    assert "4–6 of 7" in cabinet["plain_text"]
    sb.press(BARISTA, cabinet, button(cabinet, "Select all"))
    cabinet = sb.message(BARISTA, cabinet["message_id"])
    assert "Selected: 7" in cabinet["plain_text"] and button(cabinet, "✏️ Write to selected (7)")
    sb.press(BARISTA, cabinet, button(cabinet, "Clear"))
    cabinet = sb.message(BARISTA, cabinet["message_id"])
    assert "Selected: 0" in cabinet["plain_text"]
    assert not any(text.startswith("✏️") for text, _ in buttons(cabinet))


def test_a_customer_message_arrives_with_a_reply_button_and_the_reply_goes_back(sb):
    customer(sb.app, 501, "Anna", order_id="123")
    customer(sb.app, 502, "Boris")
    joined(sb)
    with sb.app.app_context():
        relay.relay_from_customer(501, "Can I have it without sugar?")
    (notice,) = sb.deliver_notices()
    assert notice["plain_text"] == "💬 Anna (order #123):\nCan I have it without sugar?"
    (prompt,) = sb.press(BARISTA, notice, button(notice, "↩️ Reply"))
    assert "Reply to Anna (order #123)" in prompt["plain_text"]
    assert "Sending to 1 customer…" in sb.say(BARISTA, "Sure, no sugar!")[0]["plain_text"]
    assert customer_messages(sb.app) == [(501, "Sure, no sugar!")]


def test_a_colleague_answer_is_noted_in_the_prompt(sb):
    customer(sb.app, 501, "Anna")
    joined(sb, BARISTA)
    joined(sb, 9002)
    with sb.app.app_context():
        relayed = relay.relay_from_customer(501, "hello?")
        outreach.reply_to_message(9002, relayed.dialog_message_id)
        outreach.send_to_selected(9002, "Hi Anna!")
    notice = next(m for m in sb.deliver_notices() if m["chat_id"] == BARISTA)
    (prompt,) = sb.press(BARISTA, notice, button(notice, "↩️ Reply"))
    assert "Ivan answered Anna less than a minute ago" in prompt["plain_text"]


def test_open_a_dialog_shows_the_conversation(sb):
    customer(sb.app, 501, "Anna", order_id="123")
    cabinet = joined(sb)[1]
    with sb.app.app_context():
        relay.relay_from_customer(501, "<b>hi</b> & bye")
    (view,) = sb.press(BARISTA, cabinet, button(cabinet, "💬"))
    assert "Order #123: preparing" in view["plain_text"]
    assert "👤 <b>hi</b> & bye" in view["plain_text"]  # escaped: shown as typed
    (prompt,) = sb.press(BARISTA, view, button(view, "↩️ Reply"))
    assert "Reply to Anna" in prompt["plain_text"]


def test_cancel_composing_sends_nothing(sb):
    customer(sb.app, 501, "Anna")
    cabinet = joined(sb)[1]
    sb.press(BARISTA, cabinet, button(cabinet, "☐ Anna"))
    cabinet = sb.message(BARISTA, cabinet["message_id"])
    (prompt,) = sb.press(BARISTA, cabinet, button(cabinet, "✏️"))
    sb.press(BARISTA, prompt, button(prompt, "✖️ Cancel"))
    assert "Cancelled" in sb.message(BARISTA, prompt["message_id"])["plain_text"]
    sb.say(BARISTA, "not for customers")
    assert customer_messages(sb.app) == []


def test_write_with_nothing_selected_is_refused(sb):
    customer(sb.app, 501, "Anna")
    cabinet = joined(sb)[1]
    with sb.app.app_context():
        stamp = list_dialogs(BARISTA).stamp  # the list's own stamp: a forged button, not a stale one
    sb.emu.press(BOT, BARISTA, cabinet["message_id"], callback_data=f"sw:0:{stamp}", force=True)
    sb.process()
    assert sb.answers()[-1]["text"] == "Tick at least one dialog first."


def test_forged_callback_data_changes_nothing(sb):
    other = customer(sb.app, 701, "Elsewhere", horeca_id="cafe-2")
    cabinet = joined(sb)[1]
    for data in (f"st:{other}:0", "st:abc", "qs:999", "sr:999999", "sh:000000000000", "junk"):
        sb.emu.press(BOT, BARISTA, cabinet["message_id"], callback_data=data, force=True)
        sb.process()
        assert sb.answers()[-1]["show_alert"] is True, data
    with sb.app.app_context():
        assert list_dialogs(BARISTA).selected == 0


# --- quick replies and horecas ---------------------------------------------------------------------


def test_quick_replies_add_send_delete(sb):
    customer(sb.app, 501, "Anna")
    cabinet = joined(sb)[1]
    (listing,) = sb.say(BARISTA, "⚡ Quick replies")
    assert "None yet" in listing["plain_text"]
    (prompt,) = sb.press(BARISTA, listing, button(listing, "➕ Add"))
    assert "Send the text of the quick reply" in prompt["plain_text"]
    saved, listing = sb.say(BARISTA, "Your order is ready at the counter")
    assert saved["plain_text"] == "✅ Saved."
    assert "1. Your order is ready at the counter" in listing["plain_text"]

    sb.press(BARISTA, listing, button(listing, "➤"))
    assert sb.answers()[-1]["text"] == "Tick at least one dialog first."
    sb.press(BARISTA, cabinet, button(cabinet, "☐ Anna"))
    (ack,) = sb.press(BARISTA, listing, button(listing, "➤"))
    assert "Sending to 1" in ack["plain_text"]
    assert customer_messages(sb.app) == [(501, "Your order is ready at the counter")]

    # The compose prompt offers the quick reply as a button.
    cabinet = sb.message(BARISTA, cabinet["message_id"])
    (prompt,) = sb.press(BARISTA, cabinet, button(cabinet, "✏️"))
    assert button(prompt, "⚡ Your order is ready")

    sb.press(BARISTA, listing, button(listing, "🗑"))
    assert "None yet" in sb.message(BARISTA, listing["message_id"])["plain_text"]


def test_switch_horeca(sb):
    customer(sb.app, 501, "Anna", horeca_id="cafe-1")
    customer(sb.app, 502, "Boris", horeca_id="cafe-2")
    joined(sb, BARISTA, "cafe-1")
    replies = joined(sb, BARISTA, "cafe-2")
    assert [b["text"] for b in replies[0]["reply_markup"]["keyboard"][0]] == ["💬 Dialogs", "⚡ Quick replies", "🏠 Cafe"]
    assert buttons(replies[1])[0][0].startswith("☐ Boris")
    (choice,) = sb.say(BARISTA, "/horeca")
    assert [t for t, _ in buttons(choice)] == ["Bean There", "✓ Bean There"]
    (cabinet,) = sb.press(BARISTA, choice, buttons(choice)[0][1])
    assert buttons(cabinet)[0][0].startswith("☐ Anna")
    assert "working for" in sb.message(BARISTA, choice["message_id"])["plain_text"]


def test_a_failing_handler_apologizes_and_the_bot_keeps_going(sb, monkeypatch):
    joined(sb)

    def boom(*args, **kwargs):
        raise RuntimeError("database on fire")

    with monkeypatch.context() as patched:
        patched.setattr("services.cabinet.list_dialogs", boom)
        assert "Sorry, something went wrong" in sb.say(BARISTA, "/dialogs")[0]["plain_text"]
    assert "dialogs" in sb.say(BARISTA, "/dialogs")[0]["plain_text"]


# --- rendering notices -----------------------------------------------------------------------------


def notice_job(payload: dict) -> Job:
    return Job(
        id=1,
        bot="horeca",
        kind="staff_notice",
        chat_id=1,
        order_pk=None,
        status=None,
        text=None,
        payload=json.dumps(payload),
        attempts=1,
        first_attempt_at=datetime.now(UTC).replace(tzinfo=None),
    )


def test_delivery_summaries_read_naturally():
    summary = {
        "type": "delivery_summary",
        "total": 5,
        "sent": 4,
        "blocked": 1,
        "failed": 0,
        "blocked_names": ["Eve"],
        "lang": "en",
    }
    assert render_notice(notice_job(summary)).text == "📬 Delivered to 4 of 5.\n🚫 1 blocked the bot: Eve."
    all_sent = {**summary, "sent": 5, "blocked": 0, "blocked_names": []}
    assert render_notice(notice_job(all_sent)).text == "✅ Delivered to all 5."
    assert render_notice(notice_job({**all_sent, "lang": "ru"})).text == "✅ Доставлено всем: 5."


def test_customer_messages_are_escaped_and_carry_the_reply_button():
    payload = {
        "type": "customer_message",
        "dialog_message_id": 42,
        "customer": "<Anna>",
        "order_id": "1&2",
        "horeca": "Cafe",
        "show_horeca": True,
        "text": "<script>",
        "lang": "en",
    }
    rendered = render_notice(notice_job(payload))
    assert rendered.text == "💬 <b>&lt;Anna&gt;</b> (order #1&amp;2) · Cafe:\n&lt;script&gt;"
    assert rendered.markup.keyboard[0][0].callback_data == "sr:42"


def test_the_summary_job_tells_the_sender_once_everything_is_delivered(sb):
    customer(sb.app, 501, "Anna")
    customer(sb.app, 502, "Boris")
    cabinet = joined(sb)[1]
    sb.press(BARISTA, cabinet, button(cabinet, "Select all"))
    cabinet = sb.message(BARISTA, cabinet["message_id"])
    sb.press(BARISTA, cabinet, button(cabinet, "✏️"))
    sb.say(BARISTA, "Ten more minutes")
    job_run = summary_job(sb.app)
    assert job_run() == 0  # still pending
    with sb.app.app_context():
        rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "message")).all()
        for row, state in zip(sorted(rows, key=lambda r: r.chat_id), ("sent", "blocked"), strict=True):
            row.state = state
        db.session.commit()
    assert job_run() == 1
    (summary,) = sb.deliver_notices()
    assert summary["plain_text"] == "📬 Delivered to 1 of 2.\n🚫 1 blocked the bot: Boris."
    assert job_run() == 0


def test_the_command_menu_in_both_languages():
    menu = staff_handlers.commands()
    assert [c.command for c in menu[None]] == ["dialogs", "replies", "horeca", "cancel", "help"]
    assert menu["en"][0].description == "Dialogs with customers"


def test_a_single_reply_is_summarized_by_name():
    summary = {
        "type": "delivery_summary",
        "total": 1,
        "sent": 1,
        "blocked": 0,
        "failed": 0,
        "sent_names": ["<Anna>"],
        "lang": "en",
    }
    assert render_notice(notice_job(summary)).text == "✅ Delivered to &lt;Anna&gt;."


@pytest.mark.parametrize(("seconds", "en", "ru"), [(5, "now", "сейчас"), (125, "2 min", "2 мин"), (7300, "2 h", "2 ч")])
def test_how_long_ago_is_said_in_each_language(seconds, en, ru):
    from bot.staff import texts as staff_texts

    assert (staff_texts.EN.ago(seconds), staff_texts.RU.ago(seconds)) == (en, ru)
    assert set(staff_texts.CATALOGS) == {"ru", "en"}


def test_forged_buttons_of_every_action_are_answered_and_change_nothing(sb):
    """Every action in the table, pressed with ids that are not the presser's, is answered with an alert."""
    other = customer(sb.app, 701, "Elsewhere", horeca_id="cafe-2")
    cabinet = joined(sb)[1]
    for data in (f"so:{other}", f"sy:{other}", "qs:999", "sr:999", f"st:{other}:0", "sp:99999999999999999999"):
        sb.emu.press(BOT, BARISTA, cabinet["message_id"], callback_data=data, force=True)
        sb.process()
        assert sb.answers()[-1]["show_alert"] is True, data
    sb.emu.press(BOT, BARISTA, cabinet["message_id"], callback_data="qd:999", force=True)  # deleting nothing: a toast
    sb.process()
    assert sb.answers()[-1]["text"] == "This reply no longer exists."
    with sb.app.app_context():
        assert list_dialogs(BARISTA).selected == 0
        assert staff.cabinet(BARISTA).mode == "idle"
    assert customer_messages(sb.app) == []


# --- stale buttons (issue 14) ----------------------------------------------------------------------


def cabinet_with(sb, *names: str) -> dict:
    """A joined barista's cabinet with these customers ticked."""
    cabinet = joined(sb)[1]
    for name in names:
        sb.press(BARISTA, cabinet, button(cabinet, f"☐ {name}"))
        cabinet = sb.message(BARISTA, cabinet["message_id"])
    return cabinet


def test_an_old_cancel_under_a_sent_prompt_says_it_was_sent(sb, server):
    customer(sb.app, 501, "Anna")
    customer(sb.app, 502, "Boris")
    cabinet = cabinet_with(sb, "Anna", "Boris")
    (prompt,) = sb.press(BARISTA, cabinet, button(cabinet, "✏️ Write to selected (2)"))
    sb.say(BARISTA, "Ten more minutes")
    # The bot restarts (a new TeleBot, nothing in memory) and the old ✖️ is pressed, on another device say.
    restarted = StaffBot(sb.app, server, sb.emu)
    restarted.offset = sb.offset
    assert restarted.press(BARISTA, prompt, button(prompt, "✖️ Cancel")) == []
    assert sb.answers()[-1]["text"] == "Already sent."
    closed = sb.message(BARISTA, prompt["message_id"])
    assert closed["plain_text"].startswith("✏️ Write your message to 2: Anna, Boris.")
    assert closed["plain_text"].endswith("\n\n✅ Sent.") and not buttons(closed)
    assert "Cancelled" not in closed["plain_text"]
    assert len(customer_messages(sb.app)) == 2


def test_a_quick_reply_under_the_prompt_sends_once_and_closes_the_prompt(sb):
    from services import canned

    customer(sb.app, 501, "Anna")
    cabinet = cabinet_with(sb, "Anna")
    with sb.app.app_context():
        canned.add_reply(BARISTA, "Your order is ready")
    (prompt,) = sb.press(BARISTA, cabinet, button(cabinet, "✏️"))
    quick = button(prompt, "⚡ Your order is ready")
    (ack,) = sb.press(BARISTA, prompt, quick)
    assert ack["plain_text"] == "📤 Sending to 1 customer…"
    closed = sb.message(BARISTA, prompt["message_id"])
    assert closed["plain_text"].endswith("✅ Sent.") and not buttons(closed)
    # A second tap that was already on its way (or a press from an older copy of the prompt).
    sb.emu.press(BOT, BARISTA, prompt["message_id"], callback_data=quick, force=True)
    sb.process()
    assert sb.answers()[-1]["text"] == "Already sent."
    assert customer_messages(sb.app) == [(501, "Your order is ready")]


def test_a_replaced_prompt_is_closed_and_the_new_one_stays_open(sb):
    customer(sb.app, 501, "Anna")
    cabinet = cabinet_with(sb, "Anna")
    (first,) = sb.press(BARISTA, cabinet, button(cabinet, "✏️"))
    (second,) = sb.press(BARISTA, cabinet, button(cabinet, "✏️"))
    sb.press(BARISTA, first, button(first, "✖️ Cancel"))
    assert sb.answers()[-1]["text"] == "This prompt is closed."
    assert sb.message(BARISTA, first["message_id"])["plain_text"].endswith("⏹ Closed.")
    assert "Sending to 1 customer" in sb.say(BARISTA, "Still composing")[0]["plain_text"]
    sb.press(BARISTA, second, button(second, "✖️ Cancel"))
    assert sb.answers()[-1]["text"] == "Already sent."


def test_an_old_write_button_redraws_the_list_instead_of_writing(sb):
    customer(sb.app, 501, "Anna")
    customer(sb.app, 502, "Boris")
    cabinet = cabinet_with(sb, "Anna", "Boris")
    with sb.app.app_context():
        relay.relay_from_customer(501, "Is it ready?")
    (notice,) = sb.deliver_notices()
    (reply_prompt,) = sb.press(BARISTA, notice, button(notice, "↩️ Reply"))  # the selection is Anna alone now
    sb.press(BARISTA, reply_prompt, button(reply_prompt, "✖️ Cancel"))
    assert sb.press(BARISTA, cabinet, button(cabinet, "✏️ Write to selected (2)")) == []  # no prompt
    assert sb.answers()[-1]["text"] == "The list has changed: here it is again. Check it and press once more."
    cabinet = sb.message(BARISTA, cabinet["message_id"])
    assert "Selected: 1" in cabinet["plain_text"] and button(cabinet, "✏️ Write to selected (1)")
    assert [t for t, _ in buttons(cabinet) if t.startswith("☑")] == ["☑ Anna · #Anna-1 preparing"]
    (prompt,) = sb.press(BARISTA, cabinet, button(cabinet, "✏️ Write to selected (1)"))
    assert "Reply to Anna" in prompt["plain_text"]


def test_an_old_list_redraws_before_a_toggle_acts(sb):
    customer(sb.app, 501, "Anna")
    customer(sb.app, 502, "Boris")
    old = joined(sb)[1]
    (new,) = sb.say(BARISTA, "/dialogs")
    sb.press(BARISTA, new, button(new, "☐ Anna"))
    assert "Selected: 0" in sb.message(BARISTA, old["message_id"])["plain_text"]  # drawn before: still says 0
    sb.press(BARISTA, old, button(old, "☐ Boris"))
    assert sb.answers()[-1]["text"].startswith("The list has changed")
    old = sb.message(BARISTA, old["message_id"])
    assert "Selected: 1" in old["plain_text"] and any(t.startswith("☑ Anna") for t, _ in buttons(old))
    with sb.app.app_context():
        assert list_dialogs(BARISTA).selected == 1  # Boris was not ticked
    sb.press(BARISTA, old, button(old, "☐ Boris"))  # the re-drawn list acts
    assert sb.answers()[-1]["text"] == "Selected"
    new = sb.message(BARISTA, new["message_id"])
    assert "Selected: 1" in new["plain_text"]  # drawn when one was selected; two are now
    sb.press(BARISTA, new, button(new, "Clear"))
    assert sb.answers()[-1]["text"].startswith("The list has changed")
    with sb.app.app_context():
        assert list_dialogs(BARISTA).selected == 2
    new = sb.message(BARISTA, new["message_id"])
    assert "Selected: 2" in new["plain_text"]
    sb.press(BARISTA, new, button(new, "Clear"))
    assert sb.answers()[-1]["text"] == "Selection cleared"


def test_buttons_drawn_before_stamps_still_parse_and_never_act():
    from bot.staff import keyboards as kb

    assert kb.parse("sw") == kb.Press(kb.WRITE)
    assert kb.parse("st:5:0") == kb.Press(kb.TOGGLE, number=5)
    assert kb.parse("sx") == kb.Press(kb.CANCEL, prompt=0)
    assert kb.parse("st:5:0:0a1b2c3d") == kb.Press(kb.TOGGLE, number=5, stamp="0a1b2c3d")
    assert kb.parse("qp:7:3") == kb.Press(kb.PROMPT_CANNED, number=7, prompt=3)
    for forged in ("st:5", "st:5:0:XYZ", "sw:0:0a1b2c3d:1", "qp:7", "sx:-1", "sp:1:2", "st::0", "sn:1"):
        assert kb.parse(forged) is None, forged


# --- counts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "ru", "en"),
    [
        (1, "📤 Отправляю 1 гостю…", "📤 Sending to 1 customer…"),
        (2, "📤 Отправляю 2 гостям…", "📤 Sending to 2 customers…"),
        (5, "📤 Отправляю 5 гостям…", "📤 Sending to 5 customers…"),
        (21, "📤 Отправляю 21 гостю…", "📤 Sending to 21 customers…"),
    ],
)
def test_counts_take_the_form_of_each_language(n, ru, en):
    from bot.staff import texts as staff_texts

    assert (staff_texts.RU.count(staff_texts.RU.sending, n), staff_texts.EN.count(staff_texts.EN.sending, n)) == (ru, en)


def test_russian_plural_forms():
    from bot.staff.texts import russian_form

    forms = {n: russian_form(n) for n in (0, 1, 2, 4, 5, 11, 12, 14, 21, 22, 25, 101, 111, 112, 122)}
    assert forms == {
        0: "many", 1: "one", 2: "few", 4: "few", 5: "many", 11: "many", 12: "many", 14: "many",
        21: "one", 22: "few", 25: "many", 101: "one", 111: "many", 112: "many", 122: "few",
    }  # fmt: skip


def test_summaries_agree_with_their_counts():
    one_blocked = {"type": "delivery_summary", "total": 3, "sent": 2, "blocked": 1, "blocked_names": ["Eve"]}
    assert render_notice(notice_job({**one_blocked, "lang": "ru"})).text == (
        "📬 Доставлено 2 из 3.\n🚫 1 гость заблокировал бота: Eve."
    )
    three_failed = {"type": "delivery_summary", "total": 3, "sent": 0, "failed": 3, "failed_names": ["A", "B", "C"]}
    assert render_notice(notice_job({**three_failed, "lang": "ru"})).text.endswith("Не удалось доставить 3 гостям: A, B, C.")
    assert render_notice(notice_job({**three_failed, "lang": "en"})).text.endswith("Could not deliver to 3 customers: A, B, C.")


# --- the cafe's profile (issue 11) -------------------------------------------------------------------


def test_the_name_of_the_cafes_profile_heads_the_cabinet(sb):
    from services import cafes

    with sb.app.app_context():
        cafes.put_profile("cafe-1", "Зерно & Co")
    customer(sb.app, 501, "Anna", order_id="123")
    replies = sb.say(BARISTA, f"/start {staff_code(sb.app, name=None)}")
    assert "You are now staff of Зерно & Co" in replies[0]["plain_text"]
    assert "Зерно & Co — dialogs" in replies[1]["plain_text"]
