"""The web app's Gunicorn worker (webapp/gunicorn_worker.py): a worker with no free thread takes no new connection.

Two workers of one thread each. A client opens a connection and sends half a request: the worker that
accepted it has its only thread waiting for the rest. Connections opened meanwhile must all go to the
other worker and be answered at once; with the stock gthread worker each had an even chance of landing
behind the stalled one and waiting for it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.e2e import free_port, wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def gunicorn(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "PROMETHEUS_"))}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path}/app.db",
        API_TOKEN="worker-test-token",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="2",
        GUNICORN_THREADS="1",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # Both workers booted (each says so), and the app answers.
        wait_until(lambda: len(re.findall(r"Booting worker", log.read_text())) >= 2, timeout=30, what="two workers")
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok, timeout=30, what="/healthz")
        yield port, log
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_worker_with_no_free_thread_leaves_new_connections_to_the_others(gunicorn):
    port, log = gunicorn
    stalled = socket.create_connection(("127.0.0.1", port))
    try:
        stalled.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # half a request: its worker's thread waits
        time.sleep(0.5)
        for _ in range(8):
            started = time.monotonic()
            with requests.Session() as session:  # a new connection each time
                assert session.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
            assert time.monotonic() - started < 5, "a new connection waited behind the stalled one"  # it would wait for good
        stalled.sendall(b"\r\n")  # the rest of it: answered too
        assert stalled.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        stalled.close()
    # The stalled request's worker logs its answer just after sending it: wait for that line.
    wait_until(lambda: len(set(re.findall(r"pid=<?(\d+)", log.read_text()))) == 2, timeout=10, what="both workers served")
