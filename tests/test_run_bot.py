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
