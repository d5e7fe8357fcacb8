"""Which bot process polls a bot: one per token, chosen through the database.

PostgreSQL: each process tries, every `RETRY_EVERY` seconds, to take a session-level advisory lock (its
key a hash of the token, which is never logged) on a connection of its own. The process holding it polls;
the others only deliver. A process that dies (kill -9 included) closes its connection and the server
frees the lock at once; a machine cut off from the network is noticed by TCP keepalives, which this
connection asks of the server too (`SERVER_KEEPALIVES`), so the lock is free within about 6 s. The holder
checks its connection every `CHECK_EVERY` seconds and stops handling updates as soon as it has not
heard from the server for `LEASE` seconds, shorter than that, so two processes never both handle updates.

SQLite: one bot process per database file; a second one finds the lock file next to the database held
(`sqlite_lock`) and refuses to start. The kernel frees the lock when the holder exits, however it exits.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

RETRY_EVERY = 2.0  # seconds between attempts at the lock by a process that does not hold it
CHECK_EVERY = 1.0  # seconds between checks of the holder's connection
LEASE = 3.0  # the holder stops handling updates this long after its last good check
# The client side of the connection: keepalives, and unacknowledged data fails the connection after 4 s.
CLIENT_OPTIONS: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 2,
    "keepalives_interval": 1,
    "keepalives_count": 2,
    "tcp_user_timeout": 4000,
    "connect_timeout": 3,
}
# The server side: it closes a silent connection (and frees the lock) after 2 + 3·1 s, or 5 s of unacked data.
SERVER_KEEPALIVES = (
    "SET tcp_keepalives_idle = 2; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 3; SET tcp_user_timeout = 5000"
)


def this_process() -> str:
    """hostname:pid, as /healthz shows the poller."""
    return f"{socket.gethostname()}:{os.getpid()}"


def lock_key(token: str) -> int:
    """The advisory lock's key for a bot token: 64 bits of its hash (the token itself never leaves the process)."""
    digest = hashlib.sha256(b"customer-bot poller\0" + token.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PollerElection:
    """Holds, or keeps trying to take, the right to poll one bot; `leading()` says whether this process polls."""

    def __init__(
        self,
        database_url: str,
        name: str,
        token: str,
        stop: threading.Event,
        on_lead: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.stop = stop
        self.on_lead = on_lead
        self._conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._key = lock_key(token)
        self._conn: psycopg.Connection[Any] | None = None
        self._confirmed = 0.0  # monotonic time of the last good check while holding the lock; 0 = not holding
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"elect-{name}", daemon=True)

    def start(self) -> None:
        """Try for the lock now and keep at it in the background."""
        self._attempt()
        self.thread.start()

    def leading(self) -> bool:
        """This process holds the lock and heard from the server within LEASE seconds."""
        with self._lock:
            return self._confirmed > 0 and time.monotonic() - self._confirmed < LEASE

    def _run(self) -> None:
        while not self.stop.wait(CHECK_EVERY if self._confirmed else RETRY_EVERY):
            self._attempt()

    def _attempt(self) -> None:
        """Check the lock held, or try to take it."""
        holding = self._confirmed > 0
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._conninfo, autocommit=True, **CLIENT_OPTIONS)
                self._conn.execute(SERVER_KEEPALIVES)
            if holding:
                self._conn.execute("SELECT 1")
                with self._lock:
                    self._confirmed = time.monotonic()
                return
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        except psycopg.Error as exc:
            self._drop(f"the database connection failed ({type(exc).__name__})" if holding else None)
            if not holding:
                log.warning("bot %s: cannot reach the database to elect a poller: %s", self.name, type(exc).__name__)
            return
        if row is not None and row[0]:
            with self._lock:
                self._confirmed = time.monotonic()
            log.info("bot %s: this process (%s) polls now", self.name, this_process())
            if self.on_lead is not None:
                try:
                    self.on_lead()
                except Exception as exc:  # noqa: BLE001 - /healthz shows the poller at its first getUpdates instead
                    log.warning("bot %s: recording the poller failed: %s", self.name, type(exc).__name__)

    def _drop(self, why: str | None) -> None:
        with self._lock:
            self._confirmed = 0.0
        if why is not None:
            log.warning("bot %s: %s: this process stops polling; another takes over", self.name, why)
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None

    def close(self) -> None:
        """Give the lock up (call after the poller stopped): another process polls within RETRY_EVERY."""
        if self.thread.is_alive():
            self.thread.join(RETRY_EVERY + 5)  # `stop` is set: it ends after the attempt in hand
        self._drop(None)


# --- SQLite: one bot process per database ---------------------------------------------------------------

_held: list[IO[str]] = []  # the open lock file, kept for the life of the process


def sqlite_lock(database_url: str) -> str | None:
    """Take the SQLite database's bot lock; None when taken (or nothing to lock), else why this process cannot run."""
    database = make_url(database_url).database
    if not database or database == ":memory:":
        return None
    path = Path(database).with_name(Path(database).name + ".bot-lock")
    handle = open(path, "a+")  # noqa: SIM115 - held open for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        return (
            f"another bot process ({holder}) already runs on the SQLite database {database}: SQLite takes one bot "
            "process; stop that one, or use PostgreSQL to run several (docs/deploy.md)"
        )
    handle.seek(0)
    handle.truncate()
    handle.write(f"{this_process()}\n")
    handle.flush()
    _held.append(handle)
    return None
