"""Several bot processes on one database (issue 10): the poller election, the shared send budget, the SQLite
refusal, and recording a sent message across a dropped PostgreSQL connection.

The PostgreSQL-only tests skip on the SQLite run of the session and run (and fail when the server is down)
whenever TEST_DATABASE_URL is set, like every other database test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, select, text

from bot.election import PollerElection, lock_key
from config import normalize_database_url
from models import Customer, OutboxMessage, OutboxState, db, utcnow
from services import delivery, send_budget
from services.delivery import Sent
from tests.support.e2e import wait_until

ROOT = Path(__file__).resolve().parents[1]
GAP = 1 / (30 * 0.95)
CHAT_GAP = 1 / 0.95


def postgresql_only(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: several bot processes need PostgreSQL")


# --- SQLite: one bot process per database file -------------------------------------------------------------


def run_bot(database_url: str, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "HORECA_", "BACKEND_WEBHOOK"))}
    env.update(
        DATABASE_URL=database_url,
        TELEGRAM_BOT_TOKEN="123456:abcdefghijklmnopqrstuvwxyz",
        TELEGRAM_API_URL="http://127.0.0.1:9",  # nothing listens: the process keeps asking getMe, holding its place
        PYTHONPATH=str(ROOT),
        LOG_LEVEL="WARNING",
    )
    with open(tmp_path / f"{name}.log", "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "run_bot.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def test_a_second_bot_process_on_one_sqlite_database_refuses_in_one_line(database_url, tmp_path):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite only")
    first = run_bot(database_url, tmp_path, "first")
    try:
        lock = Path(database_url.removeprefix("sqlite:///") + ".bot-lock")
        wait_until(lambda: lock.exists() and f":{first.pid}" in lock.read_text(), 20, 0.1, "the first process to take the lock")

        second = subprocess.run(
            [sys.executable, "run_bot.py"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": database_url, "TELEGRAM_BOT_TOKEN": "123456:abcdefghijklmnopqrstuvwxyz"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert lines[0].startswith("run_bot.py: another bot process (")
        assert f":{first.pid})" in lines[0] and "use PostgreSQL to run several" in lines[0]
        assert "abcdefghijklmnopqrstuvwxyz" not in second.stderr

        # kill -9 frees the place: the next process starts (and keeps asking Telegram, which is not there).
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        third = run_bot(database_url, tmp_path, "third")
        try:
            wait_until(lambda: f":{third.pid}" in lock.read_text(), 20, 0.1, "the next process to take the lock")
            assert third.poll() is None
        finally:
            third.send_signal(signal.SIGKILL)
            third.wait(10)
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGKILL)
            first.wait(10)


# --- PostgreSQL: the poller election -------------------------------------------------------------------------


def test_one_process_polls_a_token_and_another_takes_over_when_its_connection_dies(database_url):
    postgresql_only(database_url)
    stop = threading.Event()
    token = "4242:poller-election-test-token"
    first = PollerElection(database_url, "customer", token, stop)
    second = PollerElection(database_url, "customer", token, stop)
    other_bot = PollerElection(database_url, "horeca", "4343:another-token", stop)
    try:
        first.start()
        second.start()
        other_bot.start()
        assert first.leading() and not second.leading()
        assert other_bot.leading(), "each token has its own lock"
        time.sleep(2.5)
        assert first.leading() and not second.leading(), "the holder keeps the lock"

        # The holder's connection is cut by the server (as a network loss ends): it stops polling, the other takes over.
        admin = create_engine(normalize_database_url(database_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            terminated = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND objid::text::bigint = :low "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"low": lock_key(token) & 0xFFFFFFFF},
            ).all()
        admin.dispose()
        assert terminated == [(True,)]
        cut = time.monotonic()
        wait_until(lambda: not first.leading(), 5, 0.05, "the old holder to stop")
        wait_until(second.leading, 10, 0.05, "the other process to take over")
        assert time.monotonic() - cut < 10
        assert not first.leading()
    finally:
        stop.set()
        for election in (first, second, other_bot):
            election.close()


def test_the_lock_key_depends_on_the_token_only():
    assert lock_key("1:a") == lock_key("1:a") != lock_key("1:b")
    assert -(2**63) <= lock_key("1:a") < 2**63


# --- PostgreSQL: the shared send budget ----------------------------------------------------------------------


def test_slots_are_spaced_for_every_caller_and_a_chat_waits_its_turn(app, database_url):
    postgresql_only(database_url)
    with app.app_context():
        first = send_budget.reserve("customer", [1, 2, None], GAP, CHAT_GAP, 1.0)
        second = send_budget.reserve("customer", [3, 1], GAP, CHAT_GAP, 1.0)  # another process, say
    assert [g.wait for g in first] == pytest.approx([0, GAP, 2 * GAP], abs=0.01)
    assert second[0].wait is not None and 3 * GAP - 0.1 < second[0].wait <= 3 * GAP + 0.001
    assert second[1].wait is None, "chat 1 had a message less than a second ago"
    assert 0.5 < second[1].earliest <= CHAT_GAP + 0.1


def test_a_429_seen_by_one_process_holds_back_every_process(app, database_url):
    postgresql_only(database_url)
    with app.app_context():
        send_budget.pause("customer", 5)
        refused = send_budget.reserve("customer", [7], GAP, CHAT_GAP, 1.0)
        staff = send_budget.reserve("horeca", [7], GAP, CHAT_GAP, 1.0)
    assert refused[0].wait is None and 4 < refused[0].earliest <= 5 and 4 < refused[0].paused_for <= 5
    assert staff[0].wait == pytest.approx(0, abs=0.05), "the pause is the customer bot's only"


def test_nothing_is_reserved_beyond_max_wait(app, database_url):
    postgresql_only(database_url)
    with app.app_context():
        many = send_budget.reserve("customer", list(range(100, 140)), GAP, CHAT_GAP, 1.0)  # 1.4 s of slots
        late = send_budget.reserve("customer", [200], GAP, CHAT_GAP, 1.0)
        again = send_budget.reserve("customer", [200], GAP, CHAT_GAP, 2.0)
    assert all(g.wait is not None for g in many), "one request takes its slots from the first free one"
    assert late[0].wait is None and late[0].earliest > 1.0
    assert again[0].wait is not None and again[0].wait == pytest.approx(late[0].earliest, abs=0.1)


# --- PostgreSQL: recording survives a dropped connection -----------------------------------------------------


def test_record_sent_retries_on_a_fresh_connection_when_the_backend_is_terminated(app, database_url):
    postgresql_only(database_url)
    with app.app_context():
        customer = Customer(telegram_user_id=555001, chat_id=555001, first_name="Anna", linked_at=utcnow())
        row = OutboxMessage(bot="customer", kind="message", chat_id=555001, text="hello", state=OutboxState.SENDING)
        db.session.add_all([customer, row])
        db.session.commit()
        row_id = row.id
        engine = db.engine
        admin = create_engine(normalize_database_url(database_url), isolation_level="AUTOCOMMIT")
        terminated: list[int] = []

        def terminate_once(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
            if not terminated and statement.lstrip().upper().startswith("UPDATE OUTBOX"):
                pid = conn.connection.driver_connection.info.backend_pid
                with admin.connect() as other:
                    other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                terminated.append(pid)

        event.listen(engine, "before_cursor_execute", terminate_once)
        try:
            delivery.record_sent([Sent(row_id, 321, has_button=False)])
        finally:
            event.remove(engine, "before_cursor_execute", terminate_once)
            admin.dispose()
        assert len(terminated) == 1, "the connection was really cut in the middle of recording"
        db.session.remove()
        recorded = db.session.execute(select(OutboxMessage.state, OutboxMessage.telegram_message_id)).one()
        assert tuple(recorded) == (OutboxState.SENT, 321)


def test_sending_threads_asking_together_get_distinct_spaced_slots(app, database_url):
    postgresql_only(database_url)
    from bot.shared_budget import SharedRateLimiter

    limiter = SharedRateLimiter(app, "customer", 30, 1)
    other_process = SharedRateLimiter(app, "customer", 30, 1)
    for running in (limiter, other_process):  # processes that have been running a while know the server's clock
        for chat in range(3):
            running.reserve(8000 + chat, 5.0)
    start = threading.Barrier(16)
    slots: list[float] = []
    lock = threading.Lock()

    def send(limiter: SharedRateLimiter, chat: int) -> None:
        start.wait()
        wait = limiter.reserve(chat, 5.0)
        assert wait is not None
        with lock:
            slots.append(time.monotonic() + wait)

    threads = [threading.Thread(target=send, args=(limiter if i % 2 else other_process, 9000 + i)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    slots.sort()
    assert len(slots) == 16
    gaps = [b - a for a, b in zip(slots, slots[1:], strict=False)]
    assert min(gaps) > GAP * 0.8, gaps  # 35 ms apart, give or take the threads' own timing
    assert slots[-1] - slots[0] < GAP * 15 + 0.5


def test_a_429_one_process_hears_pauses_the_sends_of_another(app, database_url):
    postgresql_only(database_url)
    from bot.shared_budget import SharedRateLimiter

    hears_429, other = SharedRateLimiter(app, "customer", 30, 1), SharedRateLimiter(app, "customer", 30, 1)
    assert other.reserve(601, 1.0) == pytest.approx(0, abs=0.05)
    hears_429.pause(4)
    assert other.reserve(602, 1.0) is None, "no slot while Telegram asks the bot to wait"
    assert 3 < other.paused_for() <= 4 and 3 < other.earliest(602) <= 4


def test_healthz_names_the_process_that_polls(app, api):
    import os
    import socket

    from services import heartbeat

    with app.app_context():
        heartbeat.beat("customer", "TestCafeBot", delivery_tick=True)
    assert api.get("/healthz").get_json()["bots"]["customer"]["poller"] is None, "delivering is not polling"
    with app.app_context():
        heartbeat.beat("customer", "TestCafeBot", polls=True)
    assert api.get("/healthz").get_json()["bots"]["customer"]["poller"] == f"{socket.gethostname()}:{os.getpid()}"


# --- the poller obeys the election (no database: the emulator in this process) ------------------------------


def test_a_process_that_is_not_elected_never_polls_and_one_that_loses_the_election_stops_at_once(monkeypatch):
    from telebot import apihelper

    from bot import telegram
    from bot.polling import Poller
    from devtools.tg_emulator import EmulatorClient, EmulatorServer

    name, token = "ElectionTestBot", "4545:electionPollerTestToken_abcdefghijklmnop"
    server = EmulatorServer(bots={name: token}).start()
    for setting in ("API_URL", "CUSTOM_REQUEST_SENDER", "CONNECT_TIMEOUT", "READ_TIMEOUT"):
        monkeypatch.setattr(apihelper, setting, getattr(apihelper, setting))
    telegram.configure_api(server.url, 2.0)
    emu = EmulatorClient(server.url)
    bot = telegram.build_bot(token)
    handled: list[str] = []
    bot.register_message_handler(lambda message: handled.append(message.text), func=lambda message: True)
    elected, stop = threading.Event(), threading.Event()
    poller = Poller("customer", bot, stop, poll_timeout=1, leading=elected.is_set)
    try:
        poller.start()
        emu.create_user(7001, "Anna")
        emu.send(name, 7001, "one")
        time.sleep(1.5)
        assert emu.stats(name)["get_updates_calls"] == 0 and handled == [], "another process polls: this one never asks"

        elected.set()
        wait_until(lambda: handled == ["one"], 10, 0.05, "the elected process to handle the update")
        wait_until(lambda: emu.pending_updates(name) == [], 10, 0.05, "its next getUpdates to confirm it")

        elected.clear()  # the lock's connection broke: stop polling
        time.sleep(1.5)  # a long poll already on its way ends (POLL_TIMEOUT 1 s here)
        calls = emu.stats(name)["get_updates_calls"]
        emu.send(name, 7001, "two")
        time.sleep(1.5)
        assert handled == ["one"] and emu.stats(name)["get_updates_calls"] == calls
        assert [u["message"]["text"] for u in emu.pending_updates(name)] == ["two"], "left for the next poller"
    finally:
        stop.set()
        poller.close(2)
        emu.close()
        server.stop()
