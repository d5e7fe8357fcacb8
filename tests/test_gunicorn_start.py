"""`gunicorn wsgi:app` with a configuration error: one line naming what to set, a non-zero exit, no worker started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.e2e import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "args",
    [["wsgi:app"], ["-c", "gunicorn.conf.py", "wsgi:app"]],
    ids=["gunicorn wsgi:app (reads ./gunicorn.conf.py)", "gunicorn -c gunicorn.conf.py wsgi:app (systemd)"],
)
def test_without_api_token_gunicorn_says_so_in_one_line(args, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("API_TOKEN", "DEV_MODE") and not k.startswith("GUNICORN_")}
    env.update(GUNICORN_BIND=f"127.0.0.1:{free_port()}", DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}")
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 2, output
    assert len(output.splitlines()) == 1, output
    assert "API_TOKEN is not set" in output and "DEV_MODE=1" in output
    assert "Traceback" not in output and "Booting worker" not in output
