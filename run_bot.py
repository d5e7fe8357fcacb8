"""The bot process: `python run_bot.py`.

Long-polls Telegram for each configured bot (handlers run in the polling thread, one update at a
time) and runs a BackgroundScheduler whose jobs (`bot/workers/`, all registered in `schedule_jobs`) deliver
the outbox, the backend's webhook events (if BACKEND_WEBHOOK_URL is set) and the staff delivery summaries
(if the staff bot runs). SIGTERM or SIGINT stops it cleanly within 10 seconds.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING

from flask import Flask
from telebot import TeleBot
from telebot.apihelper import ApiTelegramException
from telebot.types import BotCommand

from bot.telegram import describe, install_redaction, register_secret
from config import Config, ConfigError

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from bot.election import PollerElection
    from bot.polling import Poller
    from bot.settings import BotSettings
    from bot.workers.telegram import Delivery

log = logging.getLogger("run_bot")

TOKEN_SHAPE = re.compile(r"\d+:[A-Za-z0-9_-]+")
SHUTDOWN_GRACE = 9.0  # seconds after SIGTERM before the process exits no matter what
POLLER_CLOSE_WAIT = 4.0  # seconds to wait for the update being handled


@dataclass(frozen=True)
class BotSpec:
    """A bot this process can run: its name in the outbox (`OutboxMessage.bot`), settings and wiring."""

    name: str
    token_setting: str  # the Config attribute holding the token
    username_setting: str  # the Config attribute holding the username the API's deep links use
    register: Callable[[TeleBot, Flask], None]
    commands: Callable[[], dict[str | None, list[BotCommand]]]
    required: bool = False  # refuse to start without its token


def bot_specs() -> list[BotSpec]:
    """Every bot of the product; an optional one whose token is not set is skipped."""
    from bot import handlers
    from bot.staff import handlers as staff_handlers
    from models import BotName

    return [
        BotSpec(
            BotName.CUSTOMER, "TELEGRAM_BOT_TOKEN", "BOT_USERNAME", handlers.register_handlers, handlers.commands, required=True
        ),
        BotSpec(
            BotName.HORECA,
            "HORECA_BOT_TOKEN",
            "HORECA_BOT_USERNAME",
            staff_handlers.register_staff_handlers,
            staff_handlers.commands,
        ),
    ]


@dataclass
class RunningBot:
    spec: BotSpec
    bot: TeleBot
    username: str


def main() -> int:
    """Start, run until SIGTERM/SIGINT, stop cleanly; the exit code says how it went."""
    install_redaction()
    try:
        config = Config()
    except ConfigError as exc:
        print(f"run_bot.py: {exc}", file=sys.stderr)
        return 2
    specs = bot_specs()
    for spec in specs:
        register_secret(getattr(config, spec.token_setting, ""))
    _register_other_secrets(config)
    for spec in specs:
        if spec.required and not getattr(config, spec.token_setting, ""):
            print(
                f"run_bot.py: {spec.token_setting} is not set: set it to the token @BotFather gave the bot "
                "(or run `make run` for a local sandbox with an emulated Telegram)",
                file=sys.stderr,
            )
            return 2
        token = getattr(config, spec.token_setting, "")
        if token and not TOKEN_SHAPE.fullmatch(token):
            print(f"run_bot.py: {spec.token_setting} does not look like a bot token (<digits>:<secret>)", file=sys.stderr)
            return 2
    try:
        return run(config, specs)
    except ConfigError as exc:
        print(f"run_bot.py: {exc}", file=sys.stderr)
        return 2


def run(config: Config, specs: list[BotSpec]) -> int:
    """Build the app and the bots, start polling and the scheduler, wait for a signal."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from bot.polling import Poller
    from bot.settings import BotSettings
    from bot.telegram import build_bot, configure_api
    from bot.workers import webhooks
    from bot.workers.telegram import Delivery
    from models import BotName
    from services import heartbeat, storage
    from webapp import create_app

    app = create_app(config, web=False)
    settings = BotSettings.from_config(app.config)
    webhooks.check_config(app.config)
    configure_api(config.TELEGRAM_API_URL, settings.request_timeout)
    _quiet_libraries(config.LOG_LEVEL)
    with app.app_context():
        fault = storage.probe()  # a database that cannot serve is one line here, not a traceback later
    if fault is not None:
        print(f"run_bot.py: {storage.advice(fault)}", file=sys.stderr)
        return 2 if fault.fault == storage.Fault.NOT_MIGRATED else 1
    refusal = _single_on_sqlite(config)
    if refusal is not None:
        print(f"run_bot.py: {refusal}", file=sys.stderr)
        return 1

    stop = threading.Event()
    exit_code = [0]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():
            log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def on_fatal(name: str) -> None:
        exit_code[0] = 1
        stop.set()

    running: list[RunningBot] = []
    for spec in specs:
        token = getattr(config, spec.token_setting, "")
        if not token:
            log.info("%s is not set: the %s bot is not started", spec.token_setting, spec.name)
            continue
        bot = build_bot(token)
        username = _identify(bot, spec, stop)
        if username is None:
            return 0 if stop.is_set() and not exit_code[0] else 1
        expected = (getattr(config, spec.username_setting, "") or "").lstrip("@")
        if expected and expected.lower() != username.lower():
            log.warning(
                "%s=%s but Telegram says this bot is @%s: the API's deep links point to another bot",
                spec.username_setting,
                expected,
                username,
            )
        spec.register(bot, app)
        _prepare(bot, spec)
        with app.app_context():
            heartbeat.beat(spec.name, username, started=True)
        running.append(RunningBot(spec, bot, username))
        log.info("bot %s (@%s) ready", spec.name, username)

    engine = Delivery(app, {r.spec.name: r.bot for r in running}, settings, stop, {r.spec.name: r.username for r in running})
    scheduler = BackgroundScheduler(timezone=UTC)
    schedule_jobs(scheduler, app, engine, settings, stop, staff_bot=any(r.spec.name == BotName.HORECA for r in running))
    scheduler.start()

    pollers: list[Poller] = []
    elections = _elections(config, app, running, stop)
    for r in running:
        election = elections.get(r.spec.name)
        poller = Poller(
            r.spec.name,
            r.bot,
            stop,
            settings.poll_timeout,
            on_ok=_beater(app, r),
            on_fatal=on_fatal,
            leading=election.leading if election else None,
        )
        poller.start()
        pollers.append(poller)
    log.info(
        "bot process running (pid %d): %s; delivery every %.2g s",
        os.getpid(),
        ", ".join(f"{r.spec.name} @{r.username}" for r in running),
        settings.delivery_interval,
    )

    while not stop.wait(0.5):  # a timed wait keeps the main thread ready for signals
        pass
    _shutdown(pollers, scheduler, engine, list(elections.values()))
    return exit_code[0]


def schedule_jobs(
    scheduler: BackgroundScheduler,
    app: Flask,
    engine: Delivery,
    settings: BotSettings,
    stop: threading.Event,
    *,
    staff_bot: bool,
) -> None:
    """Every job of the bot process (`bot/workers/`): one run at a time each, a late run is not caught up on."""
    from bot.workers.group_headers import group_header_job
    from bot.workers.retention import EVERY as RETENTION_EVERY
    from bot.workers.retention import FIRST as RETENTION_FIRST
    from bot.workers.retention import retention_job
    from bot.workers.summaries import summary_job
    from bot.workers.webhooks import webhook_job
    from models import BotName

    every = settings.delivery_interval
    jobs: list[tuple[str, str, Callable[[], int], float, bool]] = [
        # id, name, the job, seconds between runs, whether the first run is at start
        ("delivery", "outbox delivery", engine.tick, every, True),
    ]
    if app.config.get("BACKEND_WEBHOOK_URL"):  # the backend's webhook events, from this process too
        jobs.append(("webhooks", "webhook delivery", webhook_job(app, stop), max(every, 1.0), False))
    if staff_bot:  # a summary to a staff member once their batch is delivered
        jobs.append(("staff_summaries", "staff delivery summaries", summary_job(app), every, False))
    horeca_bot = engine.bots.get(BotName.HORECA)
    if staff_bot and horeca_bot is not None:  # the header of a customer's topic in the staff group follows their orders
        headers = group_header_job(app, horeca_bot, stop)
        jobs.append(("group_headers", "staff group topic headers", headers, max(every, 2.0), False))
    if float(app.config.get("RETENTION_DAYS", 0)) > 0:  # finished history past the window, in small batches
        jobs.append(("retention", "history retention", retention_job(app, stop), RETENTION_EVERY, False))
    for job_id, name, run, seconds, at_start in jobs:
        scheduler.add_job(
            run,
            "interval",
            seconds=seconds,
            id=job_id,
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            **({"next_run_time": datetime.now(UTC)} if at_start else {}),
        )
    if scheduler.get_job("retention") is not None:
        # Not at start (a start often drains a backlog, its first seconds the most timing-sensitive), nor an hour later.
        scheduler.modify_job("retention", next_run_time=datetime.now(UTC) + timedelta(seconds=RETENTION_FIRST))


def _identify(bot: TeleBot, spec: BotSpec, stop: threading.Event) -> str | None:
    """getMe until Telegram answers: the bot's username, or None (token refused, or asked to stop)."""
    wait = 1.0
    while not stop.is_set():
        try:
            return bot.get_me().username
        except ApiTelegramException as exc:
            if exc.error_code in (401, 404):
                log.critical("Telegram refuses %s (%s): check the token", spec.token_setting, describe(exc))
                return None
            log.warning("getMe for the %s bot failed: %s; retrying in %.0f s", spec.name, describe(exc), wait)
        except Exception as exc:  # noqa: BLE001 - Telegram unreachable: keep trying until told to stop
            log.warning("Telegram is unreachable for the %s bot: %s; retrying in %.0f s", spec.name, describe(exc), wait)
        stop.wait(wait)
        wait = min(wait * 2, 30.0)
    return None


def _prepare(bot: TeleBot, spec: BotSpec) -> None:
    """Long polling needs no webhook; the command menu is set for each language."""
    bot.delete_webhook(drop_pending_updates=False)
    for language, commands in spec.commands().items():
        try:
            bot.set_my_commands(commands, language_code=language)
        except Exception as exc:  # noqa: BLE001 - a missing menu is cosmetic
            log.warning("setMyCommands (%s) failed for the %s bot: %s", language or "default", spec.name, describe(exc))


def _beater(app: Flask, running: RunningBot) -> Callable[[], None]:
    from services import heartbeat

    def beat() -> None:
        with app.app_context():
            heartbeat.beat(running.spec.name, running.username, get_updates_ok=True)

    return beat


def _single_on_sqlite(config: Config) -> str | None:
    """On SQLite, why this process cannot run (another bot process runs on the file), or None."""
    from bot.election import sqlite_lock

    return sqlite_lock(config.DATABASE_URL) if config.DATABASE_URL.startswith("sqlite") else None


def _elections(config: Config, app: Flask, running: list[RunningBot], stop: threading.Event) -> dict[str, PollerElection]:
    """On PostgreSQL, one election per bot: of all bot processes on the database, one polls each token."""
    from bot.election import PollerElection
    from services import heartbeat

    if not config.DATABASE_URL.startswith("postgresql"):
        return {}  # SQLite: this is the only bot process (`_single_on_sqlite`)

    def recorder(r: RunningBot) -> Callable[[], None]:
        def record() -> None:
            with app.app_context():
                heartbeat.beat(r.spec.name, r.username, polls=True)

        return record

    elections = {}
    for r in running:
        election = PollerElection(config.DATABASE_URL, r.spec.name, getattr(config, r.spec.token_setting), stop, recorder(r))
        election.start()
        elections[r.spec.name] = election
    return elections


class _SkipBusyRuns(logging.Filter):
    """The delivery tick runs as long as rows are due; the scheduler's "skipped: already running" is expected."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


def _register_other_secrets(config: Config) -> None:
    """The process's other secrets are masked in its logs too, should an error ever quote one."""
    from bot.workers import webhooks

    for value in (config.API_TOKEN, config.METRICS_TOKEN, *webhooks.secret_values(config)):
        register_secret(value)


def _quiet_libraries(level: str) -> None:
    """The scheduler's lines per job run only at DEBUG (urllib3 and requests: `webapp.configure_logging`)."""
    scheduler_log = logging.getLogger("apscheduler")
    if level != "DEBUG":
        scheduler_log.setLevel(logging.WARNING)  # not a line per run of a job that runs every second
    logging.getLogger("apscheduler.scheduler").addFilter(_SkipBusyRuns())


def _shutdown(
    pollers: list[Poller], scheduler: BackgroundScheduler, engine: Delivery, elections: list[PollerElection] | None = None
) -> None:
    """Stop polling after the update in hand, let the delivery tick finish its sends, exit."""
    timer = threading.Timer(SHUTDOWN_GRACE, _give_up)
    timer.daemon = True
    timer.start()
    for poller in pollers:
        poller.close(POLLER_CLOSE_WAIT)
    for election in elections or []:
        election.close()  # after the pollers confirmed what they handled: the next poller starts from there
    scheduler.shutdown(wait=True)
    engine.close()
    timer.cancel()
    log.info("stopped")


def _give_up() -> None:
    log.error("shutdown took longer than %.0f s: exiting now (claimed messages are taken over later)", SHUTDOWN_GRACE)
    logging.shutdown()
    os._exit(1)


if __name__ == "__main__":
    sys.exit(main())
