"""Helpers the benchmarks share: free ports, fresh databases, migrations, gunicorn and other child processes.

Everything listens on 127.0.0.1. Child processes run in their own session (a Ctrl-C in the terminal reaches
only the benchmark, which then stops them by pid) and are always stopped by the context that started them.
"""

from __future__ import annotations

import http.client
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent
if str(BASE) not in sys.path:
    sys.path.insert(0, str(BASE))

from config import normalize_database_url  # noqa: E402

HOST = "127.0.0.1"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def admin_database_url() -> str:
    """Where PostgreSQL databases for a run are created: BENCH_DATABASE_URL, else TEST_DATABASE_URL, else the local default."""
    return os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or DEFAULT_ADMIN_URL


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def migrate(database_url: str) -> None:
    """`flask --app wsgi db upgrade` on `database_url`."""
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=BASE,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextmanager
def postgres_database(admin_url: str, prefix: str = "bench") -> Iterator[tuple[str, str]]:
    """A database of its own for this run, dropped afterwards: (its URL, the server's version)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = normalize_database_url(admin_url)
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        version = "PostgreSQL " + conn.execute(text("SHOW server_version")).scalar()
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False), version
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def sqlite_database(directory: Path, name: str = "bench.db") -> Iterator[tuple[str, str]]:
    """A fresh SQLite file for this run: (its URL, the library's version)."""
    path = directory / name
    for leftover in (path, path.with_name(name + "-wal"), path.with_name(name + "-shm")):
        leftover.unlink(missing_ok=True)
    yield f"sqlite:///{path}", f"SQLite {sqlite3.sqlite_version}"


class Child:
    """A child process of the benchmark, its output in a log file, stopped by its pid."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(args, cwd=BASE, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check(self) -> None:
        """Raise if it exited (with the tail of its log)."""
        if not self.alive():
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; {self.log}:\n{tail}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit within `timeout` seconds."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@contextmanager
def child(name: str, args: list[str], env: dict[str, str], log: Path) -> Iterator[Child]:
    """A Child for the duration of the block; stopped however the block ends."""
    proc = Child(name, args, env, log)
    try:
        yield proc
    finally:
        proc.stop()


@contextmanager
def gunicorn(app: str, env: dict[str, str], log: Path) -> Iterator[int]:
    """`gunicorn -c gunicorn.conf.py <app>` until the block ends; waits until it answers. Yields its port."""
    port = int(env["GUNICORN_BIND"].rpartition(":")[2])
    with child("gunicorn", [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app], env, log) as proc:
        deadline = time.monotonic() + 30
        while True:
            proc.check()
            try:
                conn = http.client.HTTPConnection(HOST, port, timeout=2)
                conn.request("GET", "/bare" if "bare" in app else "/healthz")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer within 30 s; see {log}")
            time.sleep(0.2)
        yield port


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BASE, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def machine() -> dict:
    """The CPU, cores, load, Python and commit a run was made on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": git_commit(),
    }


def interrupt_on_signals() -> None:
    """SIGTERM, and SIGINT even when inherited as ignored (a background job of a script), unwind the benchmark
    like Ctrl-C, so every child is stopped and every database dropped."""

    def raise_interrupt(signum, frame):  # noqa: ANN001, ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
