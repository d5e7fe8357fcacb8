"""The delivery job in-process against the emulator, its outbox service, the rate limiter, error sorting and redaction."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update
from telebot import apihelper
from telebot.apihelper import ApiTelegramException

from bot import telegram
from bot.ratelimit import SAFETY, RateLimiter
from bot.settings import BotSettings
from bot.workers.telegram import Delivery
from devtools.tg_emulator import EmulatorClient, EmulatorServer
from models import Customer, Order, OutboxMessage, db, utcnow
from services import customer_chat, customers, delivery, linking, orders

TOKEN = "4242424242:" + "T" * 35
BOT = "DeliveryTestBot"


@pytest.fixture
def emulator(monkeypatch):
    server = EmulatorServer(bots={BOT: TOKEN}).start()
    for name in ("API_URL", "CUSTOM_REQUEST_SENDER", "CONNECT_TIMEOUT", "READ_TIMEOUT"):
        monkeypatch.setattr(apihelper, name, getattr(apihelper, name))
    telegram.configure_api(server.url, 2.0)
    client = EmulatorClient(server.url)
    yield client
    client.close()
    server.stop()


def engine(app, **settings) -> Delivery:
    values = dict(
        global_rate=0,
        per_chat_rate=0,
        retry_deadline=30,
        backoff_base=0.05,
        backoff_max=0.1,
        request_timeout=2,
        claim_timeout=5,
        workers=4,
    )
    values.update(settings)
    return Delivery(app, {"customer": telegram.build_bot(TOKEN)}, BotSettings(**values), threading.Event())


def link(app, emu: EmulatorClient | None, user_id: int, language_code: str | None = "en") -> None:
    with app.app_context():
        linking.claim(linking.issue().code, user_id, user_id)
        db.session.execute(update(Customer).where(Customer.telegram_user_id == user_id).values(language_code=language_code))
        db.session.commit()
    if emu is not None:
        emu.create_user(user_id, "Anna", language_code=language_code)


def push(app, user_id: int, order_id: str, status: str) -> int:
    with app.app_context():
        return orders.record_status(user_id, "cafe-1", order_id, status).update_id


def rows(app) -> dict[int, OutboxMessage]:
    with app.app_context():
        result = {r.id: r for r in db.session.scalars(select(OutboxMessage))}
        db.session.expunge_all()
        return result


def run(eng: Delivery, ticks: int = 1) -> None:
    for _ in range(ticks):
        eng.tick()
    eng.close()


# --- claiming ---------------------------------------------------------------------------------------


def test_one_message_per_order_at_a_time_oldest_first(app):
    link(app, None, 601)
    first = push(app, 601, "A", "created")
    push(app, 601, "A", "accepted")
    other = push(app, 601, "B", "created")
    with app.app_context():
        assert [j.id for j in delivery.claim_due("w1", ["customer"], 10, 30)] == [first, other]
        assert delivery.claim_due("w2", ["customer"], 10, 30) == []  # the rest waits for its order's older row


def test_a_dead_processes_claim_is_taken_over_after_the_timeout(app):
    link(app, None, 602)
    row = push(app, 602, "A", "created")
    with app.app_context():
        (job,) = delivery.claim_due("dead", ["customer"], 10, 30)
        assert delivery.claim_due("alive", ["customer"], 10, 30) == []
        db.session.execute(update(OutboxMessage).values(claimed_at=utcnow() - timedelta(seconds=31)))
        db.session.commit()
        (again,) = delivery.claim_due("alive", ["customer"], 10, 30)
    assert again.id == row and again.attempts == 2 and again.first_attempt_at == job.first_attempt_at


def test_rows_of_a_blocked_user_are_marked_blocked_not_claimed(app):
    link(app, None, 603)
    row = push(app, 603, "A", "created")
    with app.app_context():
        db.session.execute(update(Customer).values(is_blocked=True))
        db.session.commit()
        assert delivery.claim_due("w", ["customer"], 10, 30) == []
    assert rows(app)[row].state == "blocked"


def test_only_the_bots_this_process_runs_are_claimed(app):
    link(app, None, 604)
    push(app, 604, "A", "created")
    with app.app_context():
        assert delivery.claim_due("w", ["horeca"], 10, 30) == []
        assert len(delivery.claim_due("w", ["customer"], 10, 30)) == 1


# --- the job against the emulator -------------------------------------------------------------------


def test_statuses_are_sent_and_the_button_moves_to_the_newest(app, emulator):
    link(app, emulator, 611)
    push(app, 611, "A-1", "created")
    run(engine(app))
    push(app, 611, "A-1", "accepted")
    run(engine(app))
    first, second = emulator.messages(BOT, 611)
    assert EmulatorClient.buttons(first) == []  # taken away when the newer message went out
    assert "cancel the order until it is ready" not in first["plain_text"]  # and the hint with it
    assert "Order placed" in first["plain_text"]
    assert [t for t, _ in EmulatorClient.buttons(second)] == ["Cancel order"]
    assert "cancel the order until it is ready" in second["plain_text"]
    assert {r.state for r in rows(app).values()} == {"sent"}
    assert [r.has_button for r in sorted(rows(app).values(), key=lambda r: r.id)] == [False, True]


def test_ready_sends_no_button_and_removes_the_old_one(app, emulator):
    link(app, emulator, 612)
    push(app, 612, "A-2", "preparing")
    run(engine(app))
    push(app, 612, "A-2", "ready")
    run(engine(app))
    assert all(EmulatorClient.buttons(m) == [] for m in emulator.messages(BOT, 612))
    assert not any("until it is ready" in m["plain_text"] for m in emulator.messages(BOT, 612))


CANCEL_HINT = "cancel the order until it is ready"


def order_of(app, order_id: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Order.id).where(Order.order_id == order_id))


def test_the_sweep_takes_the_keyboard_off_once_a_cancel_was_requested_elsewhere(app, emulator):
    link(app, emulator, 721)
    row = push(app, 721, "S-1", "created")
    run(engine(app))
    (message,) = emulator.messages(BOT, 721)
    assert emulator.buttons(message) and CANCEL_HINT in message["plain_text"]
    with app.app_context():
        assert orders.request_cancel(721, order_of(app, "S-1")).outcome == "requested"
    run(engine(app))  # a tick sweeps first
    (message,) = emulator.messages(BOT, 721)
    assert emulator.buttons(message) == [] and CANCEL_HINT not in message["plain_text"]
    assert "Order placed" in message["plain_text"]
    assert rows(app)[row].has_button is False


def test_a_rate_limited_strip_keeps_the_keyboard_recorded_until_it_is_gone(app, emulator):
    link(app, emulator, 722)
    first = push(app, 722, "S-2", "created")
    run(engine(app))
    push(app, 722, "S-2", "accepted")
    emulator.faults("429", bot=BOT, method="editMessageText", count=1, retry_after=1)
    eng = engine(app)
    eng.tick()  # sends the newer card; taking the older keyboard off is refused
    older, newer = emulator.messages(BOT, 722)
    assert emulator.buttons(older) and rows(app)[first].has_button is True
    assert eng.limiters["customer"].paused_for() > 0  # the 429 pauses the bot's sends and edits
    eng.close()
    run(engine(app))  # the sweep finds it: nothing was recorded
    older, newer = emulator.messages(BOT, 722)
    assert emulator.buttons(older) == [] and CANCEL_HINT not in older["plain_text"]
    assert [t for t, _ in emulator.buttons(newer)] == ["Cancel order"]
    assert rows(app)[first].has_button is False


def reach(app, user_id: int) -> tuple[bool, str | None]:
    with app.app_context():
        status = customers.subscribe_status(user_id)
    return status.reachable, status.reason


def test_chat_not_found_sets_the_statuses_aside_until_the_user_starts_the_bot(app, emulator):
    # Linked through the API by a user who never started the bot: the emulator (like Telegram) says
    # "400 chat not found". The status is not lost: it waits, with every other status to that chat.
    with app.app_context():
        linking.claim(linking.issue().code, 613)
    assert reach(app, 613) == (False, "never_started")
    first = push(app, 613, "A-3", "created")
    second = push(app, 613, "A-3", "accepted")
    other = push(app, 613, "B-3", "created")
    run(engine(app, workers=1))
    waiting = rows(app)
    assert {waiting[r].state for r in (first, second, other)} == {"blocked"}
    assert {waiting[r].last_error for r in (first, second, other)} == {customers.WAITING_ERROR}
    assert reach(app, 613) == (False, "never_started")
    calls = emulator.stats(BOT)["calls"]["sendMessage"]
    assert calls >= 2 and emulator.stats(BOT)["errors"] == {"400": calls}
    run(engine(app))  # nothing is due: nothing is tried again
    assert emulator.stats(BOT)["calls"]["sendMessage"] == calls

    # The user starts the bot (what /start does in the service layer): the statuses go, in order.
    emulator.create_user(613, "Anna", language_code="en")
    with app.app_context():
        assert customer_chat.greet(613, 613, customers.Profile(language_code="en")).linked
    assert reach(app, 613) == (True, None)
    assert {rows(app)[r].state for r in (first, second, other)} == {"pending"}
    run(engine(app, workers=1), ticks=3)
    assert {r.state for r in rows(app).values()} == {"sent"}
    texts = [m["plain_text"].splitlines()[0] for m in emulator.messages(BOT, 613)]
    assert sorted(texts) == sorted(["Order A-3 · cafe-1", "Order A-3 · cafe-1", "Order B-3 · cafe-1"])


def test_a_chat_not_found_that_crossed_the_users_start_is_not_believed(app):
    """The user started the bot while the status was on its way: Telegram's stale "chat not found" is retried."""
    with app.app_context():
        linking.claim(linking.issue().code, 618)
    row = push(app, 618, "A-8", "created")
    with app.app_context():
        (job,) = delivery.claim_due("w", ["customer"], 10, 30)
        customer_chat.greet(618, 618)  # /start, handled while the send was in flight
        delivery.record_chat_not_found(job.id, "w", job.kind, 618, "400 Bad Request: chat not found")
    assert rows(app)[row].state == "pending"
    assert reach(app, 618) == (True, None)


def test_a_newer_status_waits_behind_its_orders_waiting_one_even_once_the_chat_exists(app, emulator):
    """Telegram knows the chat again but the bot has no proof yet: order A's next status must not overtake
    the one set aside; order B's goes, proves the chat, and A's two follow in order."""
    with app.app_context():
        linking.claim(linking.issue().code, 619)
    first = push(app, 619, "A-9", "created")
    run(engine(app))
    assert rows(app)[first].last_error == customers.WAITING_ERROR
    emulator.create_user(619, "Anna")  # the user started the bot; the bot has not seen their /start yet
    push(app, 619, "A-9", "accepted")
    push(app, 619, "B-9", "created")
    run(engine(app, workers=1))
    assert {r.state for r in rows(app).values()} == {"sent"}
    assert reach(app, 619) == (True, None)
    heads = [m["plain_text"].split("\n")[:2] for m in emulator.messages(BOT, 619)]
    assert [h[0] for h in heads] == ["Заказ B-9 · cafe-1", "Заказ A-9 · cafe-1", "Заказ A-9 · cafe-1"]
    assert "принят" not in heads[1][1] and "приняло" in heads[2][1]  # created, then accepted


def test_a_message_that_goes_through_proves_the_chat(app, emulator):
    # Linked through the API by a user who had started the bot before: the first status proves it.
    emulator.create_user(616, "Anna", language_code="en")
    with app.app_context():
        linking.claim(linking.issue().code, 616)
    assert reach(app, 616) == (False, "never_started")
    push(app, 616, "A-6", "created")
    run(engine(app))
    assert reach(app, 616) == (True, None)


def test_a_staff_message_to_a_user_who_never_started_the_bot_fails(app, emulator):
    with app.app_context():
        linking.claim(linking.issue().code, 617)
        db.session.add(OutboxMessage(kind="message", bot="customer", chat_id=617, text="Hi", next_attempt_at=utcnow()))
        db.session.commit()
    run(engine(app))
    (row,) = rows(app).values()
    assert row.state == "failed" and row.last_error.startswith(delivery.NOT_STARTED_ERROR)
    assert reach(app, 617) == (False, "never_started")
    emulator.create_user(617, "Anna")
    with app.app_context():
        customer_chat.greet(617, 617)
    assert rows(app)[row.id].state == "failed"  # its batch summary already said "could not deliver"


def test_a_403_blocks_the_row_the_chats_pending_rows_and_the_user(app, emulator):
    link(app, emulator, 614)
    emulator.block(BOT, 614)
    first = push(app, 614, "A-4", "created")
    other = push(app, 614, "B-4", "created")
    run(engine(app, workers=1))
    assert rows(app)[first].state == rows(app)[other].state == "blocked"
    with app.app_context():
        assert db.session.scalar(select(Customer.is_blocked).where(Customer.telegram_user_id == 614)) is True


def test_5xx_is_retried_with_backoff_until_it_goes_through(app, emulator):
    link(app, emulator, 615)
    emulator.faults("500", bot=BOT, method="sendMessage", count=2)
    row = push(app, 615, "A-5", "created")
    eng = engine(app)
    eng.tick()
    assert rows(app)[row].state == "pending" and "500" in rows(app)[row].last_error
    deadline = time.monotonic() + 5
    while rows(app)[row].state != "sent" and time.monotonic() < deadline:
        eng.tick()
        time.sleep(0.05)
    eng.close()
    assert rows(app)[row].state == "sent" and rows(app)[row].attempts == 3


def test_the_backoff_doubles_with_jitter_up_to_its_maximum_and_the_last_wait_ends_at_the_deadline(app):
    eng = engine(app, backoff_base=1.0, backoff_max=60.0, retry_deadline=300)
    try:
        for attempts, ceiling in [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (1000, 60)]:
            waits = [eng._backoff(attempts) for _ in range(50)]
            assert all(ceiling / 2 <= w <= ceiling for w in waits), (attempts, waits)
        now = utcnow()
        assert eng.retry.delay(now - timedelta(seconds=10), now, 5.0) == 5.0
        assert eng.retry.delay(now - timedelta(seconds=290), now, 50.0) == pytest.approx(10.0)
        assert eng.retry.delay(now - timedelta(seconds=300), now, 1.0) is None
    finally:
        eng.close()


def test_retries_stop_at_the_deadline(app, emulator):
    link(app, emulator, 616)
    emulator.faults("502_html", bot=BOT, method="sendMessage", probability=1.0)
    row = push(app, 616, "A-6", "created")
    eng = engine(app, retry_deadline=0.3)
    deadline = time.monotonic() + 5
    while rows(app)[row].state == "pending" and time.monotonic() < deadline:
        eng.tick()
        time.sleep(0.05)
    eng.close()
    failed = rows(app)[row]
    assert failed.state == "failed" and failed.last_error.startswith("gave up after")


def test_a_429_reschedules_the_row_after_retry_after_and_pauses_the_bot(app, emulator):
    link(app, emulator, 617)
    emulator.faults("429", bot=BOT, method="sendMessage", count=1, retry_after=3)
    row = push(app, 617, "A-7", "created")
    eng = engine(app)
    before = utcnow()
    eng.tick()
    waiting = rows(app)[row]
    assert waiting.state == "pending" and waiting.next_attempt_at >= before + timedelta(seconds=2.9)
    assert eng.limiters["customer"].paused_for() > 2
    eng.close()


def test_a_stop_gives_claimed_rows_back_unsent(app, emulator):
    link(app, emulator, 618)
    row = push(app, 618, "A-8", "created")
    eng = engine(app)
    eng.stop.set()
    with app.app_context():
        (job,) = delivery.claim_due(eng.worker, ["customer"], 10, 30)
    assert eng._deliver(job) is None
    eng.close()
    back = rows(app)[row]
    assert back.state == "pending" and back.attempts == 0 and emulator.messages(BOT, 618) == []


def test_an_unknown_kind_waits_for_a_renderer(app, emulator):
    link(app, emulator, 619)
    with app.app_context():
        db.session.add(OutboxMessage(kind="future", bot="customer", chat_id=619, text="hi", next_attempt_at=utcnow()))
        db.session.commit()
    run(engine(app))
    (row,) = rows(app).values()
    assert row.state == "pending" and "no renderer" in row.last_error


def test_a_staff_message_to_a_customer_is_delivered(app, emulator):
    link(app, emulator, 620)
    with app.app_context():
        db.session.add(
            OutboxMessage(
                kind="message",
                bot="customer",
                chat_id=620,
                text="Your <table> is ready",
                payload='{"horeca": "Cafe & Co"}',
                next_attempt_at=utcnow(),
            )
        )
        db.session.commit()
    run(engine(app))
    (message,) = emulator.messages(BOT, 620)
    assert message["plain_text"] == "💬 Message from Cafe & Co:\nYour <table> is ready"


# --- the rate limiter -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_global_slots_are_evenly_spaced_a_little_under_the_rate():
    clock = Clock()
    limiter = RateLimiter(30, 0, clock)
    waits = [limiter.reserve(chat, 10) for chat in range(30)]
    gap = 1 / (30 * SAFETY)
    assert waits == pytest.approx([i * gap for i in range(30)])
    assert waits[-1] + gap > 1.0  # 30 sends never fit in one second


def test_per_chat_slots_and_the_longest_wait_we_accept():
    clock = Clock()
    limiter = RateLimiter(0, 1, clock)
    assert limiter.reserve(7, 1.0) == 0
    assert limiter.reserve(8, 1.0) == 0  # another chat is not held up
    assert limiter.reserve(7, 1.0) is None  # would have to wait more than a second: not reserved
    assert limiter.earliest(7) == pytest.approx(1 / SAFETY)
    clock.now += 1 / SAFETY
    assert limiter.reserve(7, 1.0) == 0


def test_a_429_pauses_everything():
    clock = Clock()
    limiter = RateLimiter(0, 0, clock)
    limiter.pause(5)
    assert limiter.reserve(1, 1.0) is None and limiter.paused_for() == 5
    clock.now += 5
    assert limiter.reserve(1, 1.0) == 0


def test_no_limits_when_the_rates_are_zero():
    limiter = RateLimiter(0, 0, Clock())
    assert all(limiter.reserve(1, 0) == 0 for _ in range(1000))


# --- sorting errors ---------------------------------------------------------------------------------


def api_error(code: int, description: str, **parameters) -> ApiTelegramException:
    body = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return ApiTelegramException("sendMessage", None, body)


@pytest.mark.parametrize(
    "exc,kind",
    [
        (api_error(429, "Too Many Requests: retry after 7", retry_after=7), telegram.RATE_LIMITED),
        (api_error(400, "Bad Request: message is not modified: specified new message content"), telegram.NOT_MODIFIED),
        (api_error(400, "Bad Request: chat not found"), telegram.FINAL),
        (api_error(400, "Bad Request: message text is empty"), telegram.FINAL),
        (api_error(403, "Forbidden: bot can't initiate conversation with a user"), telegram.FINAL),
        (api_error(403, "Forbidden: bot was blocked by the user"), telegram.BLOCKED),
        (api_error(500, "Internal Server Error"), telegram.RETRY),
        (api_error(502, "Bad Gateway"), telegram.RETRY),
        (api_error(401, "Unauthorized"), telegram.RETRY),
        (requests.ConnectionError("refused"), telegram.RETRY),
        (requests.ReadTimeout("slow"), telegram.RETRY),
    ],
)
def test_errors_are_sorted(exc, kind):
    assert telegram.classify(exc).kind == kind


def test_only_a_chat_the_user_never_started_is_not_started():
    assert telegram.classify(api_error(400, "Bad Request: chat not found")).not_started is True
    assert telegram.classify(api_error(403, "Forbidden: bot can't initiate conversation with a user")).not_started is True
    assert telegram.classify(api_error(400, "Bad Request: message text is empty")).not_started is False
    assert telegram.classify(api_error(403, "Forbidden: bot was blocked by the user")).not_started is False


def test_429_carries_retry_after_and_403_tells_deactivated():
    assert telegram.classify(api_error(429, "Too Many Requests", retry_after=7)).retry_after == 7
    assert telegram.classify(api_error(403, "Forbidden: user is deactivated")).deactivated is True


def test_tokens_are_masked_in_error_texts_and_log_records(caplog):
    token = "777000111:" + "S" * 40
    telegram.register_secret(token)
    telegram.install_redaction()
    error = requests.ConnectionError(f"Max retries exceeded with url: /bot{token}/sendMessage?chat_id=1&text=secret+text")
    text = telegram.describe(error)
    assert "S" * 40 not in text and "777000111:***" in text and "secret+text" not in text
    with caplog.at_level(logging.DEBUG, logger="bot.test"):
        logging.getLogger("bot.test").warning("calling %s", f"https://api.telegram.org/bot{token}/getMe")
        try:
            raise RuntimeError(f"boom {token}")
        except RuntimeError:
            logging.getLogger("bot.test").exception("failed")
    assert "S" * 40 not in caplog.text
    assert "bot777000111:***/getMe" in caplog.text and "boom 777000111:***" in caplog.text


def test_a_text_about_an_order_waits_like_a_status_for_a_user_who_never_started_the_bot(app, emulator):
    """The backend's text without a status (issue 11) is not lost on "chat not found": it waits, then goes."""
    with app.app_context():
        linking.claim(linking.issue().code, 618)
        note = orders.record_note(618, "cafe-1", "N-1", "We got your order").update_id
    run(engine(app, workers=1))
    assert (rows(app)[note].state, rows(app)[note].last_error) == ("blocked", customers.WAITING_ERROR)
    emulator.create_user(618, "Anna", language_code="en")
    with app.app_context():
        assert customer_chat.greet(618, 618, customers.Profile(language_code="en")).linked
    run(engine(app, workers=1), ticks=2)
    assert rows(app)[note].state == "sent"
    (sent,) = emulator.messages(BOT, 618)
    assert sent["plain_text"] == "Order N-1 · cafe-1\nWe got your order"
    assert not EmulatorClient.buttons(sent)
