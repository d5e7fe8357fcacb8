"""Both processes refuse to start in one line, whatever starts them: a DATABASE_URL they cannot use, a
database never migrated, a database that does not answer.

Real processes: `run_bot.py`, `gunicorn wsgi:app` (and `-c gunicorn.conf.py`, as systemd runs it), the
migration systemd runs first (`flask --app wsgi db upgrade`) and `make run`'s launcher (`devtools/launch.py`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import databases
from tests.support.e2e import free_port

ROOT = Path(__file__).resolve().parents[1]
SECRET = "S3cretPassw0rd"
BOT_TOKEN = "123:abcdefghijklmnopqrstuvwxyz0123456789"
UPGRADE = "`flask --app wsgi db upgrade`"

ENTRY_POINTS = {
    "run_bot.py": [sys.executable, "run_bot.py"],
    "gunicorn wsgi:app": [sys.executable, "-m", "gunicorn", "wsgi:app"],
    "gunicorn -c gunicorn.conf.py wsgi:app": [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
    "flask --app wsgi db upgrade": [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
    "make run (devtools/launch.py)": [sys.executable, "-m", "devtools.launch"],
}


def start(args: list[str], **env: str) -> tuple[int, str]:
    """Run a process to its end: its exit code and its stderr (stdout must stay empty of errors too)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "HORECA_", "BACKEND_WEBHOOK", "GUNICORN_"))}
    base.update(
        API_TOKEN="test-api-token",
        TELEGRAM_BOT_TOKEN=BOT_TOKEN,  # `make run` without one would start the sandbox's emulator first
        TELEGRAM_API_URL=f"http://127.0.0.1:{free_port()}",  # nothing there: the database must be checked first
        GUNICORN_BIND=f"127.0.0.1:{free_port()}",
        WEB_PORT=str(free_port()),
        **env,
    )
    done = subprocess.run(args, cwd=ROOT, env=base, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done.returncode, done.stderr.strip()


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"mysql://shop:{SECRET}@127.0.0.1/shop", "starts with mysql://, which is not supported"),
        (f"postgress://shop:{SECRET}@127.0.0.1/shop", "starts with postgress://, which is not supported"),
        (f"postgresql://shop:{SECRET}@127.0.0.1:five/shop", "is not a database URL"),
        ("instance/app.db", "is not a database URL"),
    ],
    ids=["mysql", "typo", "malformed port", "a path"],
)
def test_a_database_url_that_cannot_work_is_one_line_naming_the_supported_schemes(entry, url, says):
    code, stderr = start(ENTRY_POINTS[entry], DATABASE_URL=url)
    assert code != 0
    (line,) = stderr.splitlines()
    assert says in line and "DATABASE_URL" in line, line
    assert "sqlite:///" in line and "postgresql://" in line, line
    assert SECRET not in line


def test_run_bot_on_a_database_never_migrated_says_which_command_to_run(database_url, tmp_path):
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    with databases.empty_database(backend, tmp_path) as url:
        code, stderr = start(ENTRY_POINTS["run_bot.py"], DATABASE_URL=url)
    assert code == 2
    assert stderr == f"run_bot.py: the database has no schema (or an older one): run {UPGRADE}"


@pytest.mark.parametrize("entry", ["run_bot.py", "make run (devtools/launch.py)"])
def test_a_database_that_does_not_answer_is_one_line(entry):
    code, stderr = start(ENTRY_POINTS[entry], DATABASE_URL=f"postgresql://shop:{SECRET}@127.0.0.1:{free_port()}/shop")
    assert code == 1
    (line,) = stderr.splitlines()
    assert "Connection refused" in line or "unreachable" in line, line
    assert SECRET not in line
