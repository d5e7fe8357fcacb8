"""End-to-end fixtures: the Telegram emulator, gunicorn and run_bot.py as real subprocesses, on every backend.

The emulator runs once per session, gunicorn once per backend (on the session's migrated database),
and run_bot.py once per test (tests kill it). Before each test the database is emptied and the
emulator forgets its users and messages. Every bot log is checked for the bot token at teardown.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.tg_emulator import EmulatorClient
from tests.conftest import API_TOKEN
from tests.support.databases import clean, test_config
from tests.support.e2e import Api, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
BOT_USERNAME = "E2ECafeBot"

# Fast settings for tests; the defaults are for production (see docs/bot.md).
BOT_ENV = {
    "DELIVERY_INTERVAL_SECONDS": "0.2",
    "TELEGRAM_GLOBAL_RATE": "0",
    "TELEGRAM_PER_CHAT_RATE": "0",
    "DELIVERY_RETRY_DEADLINE_SECONDS": "30",
    "DELIVERY_BACKOFF_BASE_SECONDS": "0.2",
    "DELIVERY_BACKOFF_MAX_SECONDS": "1",
    "CLAIM_TIMEOUT_SECONDS": "3",
    "TELEGRAM_REQUEST_TIMEOUT_SECONDS": "2",
    "POLL_TIMEOUT_SECONDS": "5",
    "LOG_LEVEL": "DEBUG",  # the most talkative level: the token must not show up even here
}


class Proc:
    """A subprocess of ours, its output in a file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> float:
        """Send `sig` and wait for the exit; returns the seconds it took."""
        started = time.monotonic()
        if self.alive():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()
        return time.monotonic() - started

    def kill9(self) -> None:
        """SIGKILL: no cleanup of any kind."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(5)
        self._log.close()


def base_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "HORECA_", "BACKEND_WEBHOOK", "DELIVERY_"))}
    env.update(
        DATABASE_URL=database_url,
        API_TOKEN=API_TOKEN,
        BOT_USERNAME=BOT_USERNAME,
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.fixture(scope="session")
def bot_token() -> str:
    return f"{secrets.randbelow(9 * 10**9) + 10**9}:{secrets.token_urlsafe(32)}"


@pytest.fixture(scope="session")
def emulator(bot_token: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorClient]:
    port = free_port()
    env = {**os.environ, "TG_EMULATOR_BOTS": f"{BOT_USERNAME}={bot_token}", "PYTHONPATH": str(ROOT)}
    log_dir = tmp_path_factory.mktemp("emulator")
    proc = Proc("emulator", [PY, "-m", "devtools.tg_emulator", "--port", str(port)], env, log_dir / "emulator.log")
    client = EmulatorClient(f"http://127.0.0.1:{port}")
    try:
        client.wait_ready(15)
        yield client
    finally:
        client.close()
        proc.stop()


@pytest.fixture(scope="session")
def web(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    port = free_port()
    env = base_env(database_url)
    env.update(GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="2", GUNICORN_ACCESS_LOG="", LOG_LEVEL="WARNING")
    log_dir = tmp_path_factory.mktemp("web")
    proc = Proc("gunicorn", [PY, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], env, log_dir / "gunicorn.log")
    api = Api(f"http://127.0.0.1:{port}")

    def up() -> bool:
        try:
            return api.session.get(api.base_url + "/healthz/", timeout=1).status_code == 200
        except requests.RequestException:
            assert proc.alive(), proc.output()[-3000:]
            return False

    try:
        wait_until(up, 30, 0.1, "gunicorn to answer /healthz")
        yield api
    finally:
        proc.stop()


class Stack:
    """The three processes of one test, and the helpers a test talks through."""

    def __init__(self, emu: EmulatorClient, api: Api, database_url: str, token: str, log_dir: Path) -> None:
        self.emu = emu
        self.api = api
        self.database_url = database_url
        self.token = token
        self.log_dir = log_dir
        self.bots: list[Proc] = []
        self.app = None

    # --- run_bot.py ------------------------------------------------------------------------------

    def bot_env(self, **overrides: str) -> dict[str, str]:
        env = base_env(self.database_url)
        env.update(BOT_ENV)
        env.update(TELEGRAM_BOT_TOKEN=self.token, TELEGRAM_API_URL=self.emu.base_url)
        env.update(overrides)
        return env

    def start_bot(self, wait: bool = True, **overrides: str) -> Proc:
        """Start run_bot.py; with `wait`, return once it polls the emulator."""
        before = self.emu.stats(BOT_USERNAME)["get_updates_calls"]
        n = len(self.bots) + 1
        proc = Proc(f"run_bot#{n}", [PY, "run_bot.py"], self.bot_env(**overrides), self.log_dir / f"run_bot-{n}.log")
        self.bots.append(proc)
        if wait:

            def polling() -> bool:
                assert proc.alive(), f"run_bot.py exited:\n{proc.output()[-3000:]}"
                return self.emu.stats(BOT_USERNAME)["get_updates_calls"] > before

            wait_until(polling, 30, 0.05, "run_bot.py to poll the emulator")
        return proc

    @property
    def bot(self) -> Proc:
        return self.bots[-1]

    def bot_logs(self) -> str:
        return "\n".join(p.output() for p in self.bots)

    # --- the person in Telegram ------------------------------------------------------------------

    def user(self, user_id: int, language_code: str | None = "en", first_name: str = "Anna") -> int:
        self.emu.create_user(user_id, first_name, language_code=language_code)
        return user_id

    def say(self, user_id: int, text: str, replies: int = 1, timeout: float = 10.0) -> list[dict]:
        """The user writes `text`; returns the bot's next `replies` messages."""
        since = self.last_message_id(user_id)
        self.emu.send(BOT_USERNAME, user_id, text)
        return self.emu.wait_for_messages(BOT_USERNAME, user_id, replies, timeout=timeout, since_message_id=since)

    def last_message_id(self, user_id: int) -> int:
        return max((m["message_id"] for m in self.emu.chat(BOT_USERNAME, user_id)), default=0)

    def messages(self, user_id: int) -> list[dict]:
        return self.emu.messages(BOT_USERNAME, user_id)

    def message(self, user_id: int, message_id: int) -> dict:
        return next(m for m in self.messages(user_id) if m["message_id"] == message_id)

    def press(self, user_id: int, message_id: int, timeout: float = 10.0, **kw: Any) -> dict:
        """Press a button (by callback_data or button_text); returns the bot's answer to the callback query."""
        query = self.emu.press(BOT_USERNAME, user_id, message_id, **kw)["callback_query_id"]
        answers = wait_until(lambda: self.emu.callback_answers(BOT_USERNAME, query), timeout, what=f"an answer to the press {kw}")
        assert len(answers) == 1
        return answers[0]

    def status_messages(self, user_id: int, order_id: str) -> list[dict]:
        heads = (f"Order {order_id} ", f"Заказ {order_id} ")
        return [m for m in self.messages(user_id) if m["plain_text"].startswith(heads)]

    def wait_status_messages(self, user_id: int, order_id: str, count: int, timeout: float = 10.0) -> list[dict]:
        return wait_until(
            lambda: (lambda ms: ms if len(ms) >= count else None)(self.status_messages(user_id, order_id)),
            timeout,
            what=f"{count} messages about order {order_id}",
        )

    # --- the database, read directly ---------------------------------------------------------------

    def db(self):
        """An app context on the test database (for reading outbox rows)."""
        if self.app is None:
            from webapp import create_app

            self.app = create_app(test_config(self.database_url), web=False)
        return self.app.app_context()

    def outbox_states(self) -> dict[int, str]:
        from sqlalchemy import select

        from models import OutboxMessage, db

        with self.db():
            rows = db.session.execute(select(OutboxMessage.id, OutboxMessage.state)).all()
            return {r.id: r.state for r in rows}

    def close(self) -> None:
        for proc in self.bots:
            if proc.alive():
                proc.stop(signal.SIGKILL)
        if self.app is not None:
            from models import db

            with self.app.app_context():
                db.engine.dispose()


@pytest.fixture
def stack(emulator: EmulatorClient, web: Api, database_url: str, bot_token: str, tmp_path: Path) -> Iterator[Stack]:
    from webapp import create_app

    app = create_app(test_config(database_url), web=False)
    clean(app)
    with app.app_context():
        from models import db

        db.engine.dispose()
    emulator.reset()
    s = Stack(emulator, web, database_url, bot_token, tmp_path)
    try:
        yield s
        logs = s.bot_logs()
        secret = bot_token.partition(":")[2]
        assert secret not in logs, "the bot token appeared in run_bot.py's output"
    finally:
        s.close()
