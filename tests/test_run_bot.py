"""run_bot.py refuses to start, in one clear line, when it cannot work (no database or Telegram needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "HORECA_", "BACKEND_WEBHOOK"))}
    base.update(DATABASE_URL=f"sqlite:///{tmp_path / 'never-created.db'}", **env)
    return subprocess.run([sys.executable, "run_bot.py"], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60)


def test_refuses_to_start_without_a_token(tmp_path):
    result = start(tmp_path, TELEGRAM_BOT_TOKEN="")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("run_bot.py: TELEGRAM_BOT_TOKEN is not set")
    assert not (tmp_path / "never-created.db").exists()


@pytest.mark.parametrize("token", ["not-a-token", "123456:has spaces", ":secret", "abc:def"])
def test_refuses_a_malformed_token_without_printing_it(tmp_path, token):
    result = start(tmp_path, TELEGRAM_BOT_TOKEN=token)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "TELEGRAM_BOT_TOKEN does not look like a bot token" in line
    assert token not in line


def test_refuses_an_unusable_setting(tmp_path):
    result = start(tmp_path, TELEGRAM_BOT_TOKEN="123:abcdefghijklmnopqrstuvwxyz0123456789", DELIVERY_WORKERS="0")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "DELIVERY_WORKERS" in line


@pytest.mark.parametrize(
    ("variable", "value"),
    [("DELIVERY_WORKERS", "eight"), ("POLL_TIMEOUT_SECONDS", "99"), ("TELEGRAM_REQUEST_TIMEOUT_SECONDS", "soon")],
)
def test_refuses_a_malformed_bot_setting_in_one_line_naming_it(tmp_path, variable, value):
    result = start(tmp_path, TELEGRAM_BOT_TOKEN="123:abcdefghijklmnopqrstuvwxyz0123456789", **{variable: value})
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("run_bot.py: ") and variable in line
    assert not (tmp_path / "never-created.db").exists()


@pytest.mark.parametrize(("webhooks", "staff_bot"), [(True, True), (False, False)])
def test_every_job_of_the_bot_process_is_registered_in_one_place(tmp_path, webhooks, staff_bot):
    """run_bot.schedule_jobs: delivery and retention always; webhooks when BACKEND_WEBHOOK_URL is set; summaries and
    the staff group's topic headers with the staff bot."""
    import threading

    from apscheduler.schedulers.background import BackgroundScheduler

    import run_bot
    from bot.settings import BotSettings
    from bot.workers.telegram import Delivery
    from config import Config
    from webapp import create_app

    hook = {"BACKEND_WEBHOOK_URL": "https://backend.example/hooks"} if webhooks else {}
    app = create_app(Config(DATABASE_URL=f"sqlite:///{tmp_path / 'jobs.db'}", LOG_LEVEL="WARNING", **hook), web=False)
    settings = BotSettings.from_config(app.config)
    import telebot

    bots = {"horeca": telebot.TeleBot("1:" + "x" * 35, threaded=False)} if staff_bot else {}
    engine = Delivery(app, bots, settings, threading.Event())
    scheduler = BackgroundScheduler()
    try:
        run_bot.schedule_jobs(scheduler, app, engine, settings, threading.Event(), staff_bot=staff_bot)
        jobs = {job.id: job for job in scheduler.get_jobs()}
    finally:
        engine.close()
    staff_jobs = {"staff_summaries", "group_headers"}
    expected = {"delivery", "retention"} | ({"webhooks"} if webhooks else set()) | (staff_jobs if staff_bot else set())
    assert set(jobs) == expected
    assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())
