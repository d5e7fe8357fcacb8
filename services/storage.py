"""What is wrong with the database, told apart: the API's 503s, /healthz and the bot process's start use it.

Four faults need four different reactions, so they must not share one answer:

- `unreachable`: no connection, a dropped one, a lock held too long. The same request a moment later may
  succeed (the API says `database_unavailable`, `Retry-After: 1`).
- `read_only`, `full`: the storage refuses writes (a read-only file or filesystem, a PostgreSQL standby or
  `default_transaction_read_only`, a full disk). Retrying soon never helps; a person must act
  (`storage_unavailable`, `Retry-After: 30`).
- `not_migrated`: the schema is missing or older than the code (`database_not_migrated`: run UPGRADE_COMMAND).

Nothing here is remembered: every answer comes from the error in hand or from a fresh look at the database,
so everything recovers by itself once the cause is fixed. The one piece of state that could stick, a
connection opened while the storage was read-only (SQLite keeps such a connection read-only for good, a
PostgreSQL session keeps the `default_transaction_read_only` it started with), is dropped by the listener
below together with the rest of its pool.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass
from enum import StrEnum

import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from database import reading

log = logging.getLogger(__name__)

UPGRADE_COMMAND = "flask --app wsgi db upgrade"
# SQLite: /healthz reports the storage full below this much free space (a write needs a few 4 KiB pages).
FULL_BELOW_BYTES = 64 * 1024


class Fault(StrEnum):
    UNREACHABLE = "unreachable"
    READ_ONLY = "read_only"
    FULL = "full"
    NOT_MIGRATED = "not_migrated"


@dataclass(frozen=True)
class Diagnosis:
    """A fault and its cause in the database's own words (for the log: no statement, no parameters)."""

    fault: Fault
    cause: str

    @property
    def storage(self) -> bool:
        """The storage refuses writes: read-only or full."""
        return self.fault in (Fault.READ_ONLY, Fault.FULL)


# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
_PG_FAULTS = {
    "25006": (Fault.READ_ONLY, "read_only_sql_transaction"),  # a standby, or default_transaction_read_only
    "53100": (Fault.FULL, "disk_full"),
    "42P01": (Fault.NOT_MIGRATED, "undefined_table"),
    "42703": (Fault.NOT_MIGRATED, "undefined_column"),
}
_SQLITE_MISSING_SCHEMA = ("no such table", "no such column")


def diagnose(exc: BaseException, sqlite_path: str | None = None) -> Diagnosis | None:
    """The fault behind a database error, or None for an error that is a bug (bad SQL, a broken constraint).

    `sqlite_path`, the database file, tells a read-only file that SQLite cannot open from a missing one.
    """
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, sqlite3.Error):
        found = _diagnose_sqlite(orig, sqlite_path)
        if found is not None:
            return found
    if isinstance(orig, psycopg.Error) and orig.sqlstate in _PG_FAULTS:
        fault, name = _PG_FAULTS[orig.sqlstate]
        return Diagnosis(fault, f"{name} (SQLSTATE {orig.sqlstate}): {orig.diag.message_primary or ''}".rstrip(": "))
    unreachable = isinstance(exc, OperationalError | PoolTimeout) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)
    if unreachable or isinstance(orig, sqlite3.OperationalError | psycopg.OperationalError):
        return Diagnosis(Fault.UNREACHABLE, type(orig).__name__)
    return None


def _diagnose_sqlite(orig: sqlite3.Error, path: str | None) -> Diagnosis | None:
    code = getattr(orig, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
    words = f"{orig} ({getattr(orig, 'sqlite_errorname', 'SQLITE_ERROR')})"
    if code == sqlite3.SQLITE_READONLY:  # "attempt to write a readonly database"
        return Diagnosis(Fault.READ_ONLY, words)
    if code == sqlite3.SQLITE_FULL:  # "database or disk is full"
        return Diagnosis(Fault.FULL, words)
    if code == sqlite3.SQLITE_CANTOPEN and path and os.path.exists(path):
        # A WAL database on a read-only file or filesystem cannot even be read: it needs its -shm file.
        why = unwritable(path)
        if why is not None:
            return Diagnosis(Fault.READ_ONLY, f"{words}: {why}")
    if str(orig).startswith(_SQLITE_MISSING_SCHEMA):
        return Diagnosis(Fault.NOT_MIGRATED, str(orig))
    return None


def unwritable(path: str) -> str | None:
    """Why this process may not write the SQLite file `path` (or create its WAL files beside it), or None."""
    if os.statvfs(path).f_flag & os.ST_RDONLY:
        return f"{path} is on a read-only filesystem"
    if not os.access(path, os.W_OK):
        return f"{path} is not writable by this process (permissions, or an immutable file)"
    directory = os.path.dirname(path) or "."
    if not os.path.exists(path + "-wal") and not os.access(directory, os.W_OK):
        return f"{directory} is not writable by this process: SQLite cannot create {os.path.basename(path)}-wal"
    return None


def sqlite_path(engine: Engine) -> str | None:
    """The file of a SQLite engine (None for PostgreSQL or an in-memory database)."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    return os.path.abspath(engine.url.database)


def probe() -> Diagnosis | None:
    """A fresh look, for /healthz and the bot process's start: None when the database answers, carries the
    schema and takes writes.

    Takes no lock a writer holds (a health check must not wait for one). On PostgreSQL a write that changes
    nothing (`DELETE ... WHERE false`, rolled back) meets a read-only session; a pooled connection opened
    while the storage was read-only fails it and is dropped with its pool (the listener below), so the probe
    asks once more (on a fresh connection) before it reports read_only. On SQLite it looks at the file instead.
    """
    found = _probe()
    if found is not None and found.fault == Fault.READ_ONLY:
        found = _probe()
    return found


def _probe() -> Diagnosis | None:
    path = None
    try:
        with reading() as session:
            engine = session.get_bind()
            assert isinstance(engine, Engine)
            path = sqlite_path(engine)
            if session.execute(text("SELECT version_num FROM alembic_version")).first() is None:
                return Diagnosis(Fault.NOT_MIGRATED, "alembic_version is empty")
            if engine.dialect.name == "postgresql":
                session.execute(text("DELETE FROM alembic_version WHERE false"))
        if path is not None:
            why = unwritable(path)
            if why is not None:
                return Diagnosis(Fault.READ_ONLY, why)
            stat = os.statvfs(path)
            if stat.f_bavail * stat.f_frsize < FULL_BELOW_BYTES:
                return Diagnosis(Fault.FULL, f"{path}: {stat.f_bavail * stat.f_frsize} bytes free on its filesystem")
    except Exception as exc:  # noqa: BLE001 - any failure is a fault to report, never an exception to raise
        return diagnose(exc, path) or Diagnosis(Fault.UNREACHABLE, type(getattr(exc, "orig", None) or exc).__name__)
    return None


def advice(diagnosis: Diagnosis) -> str:
    """One line for a person: what is wrong and what to do."""
    if diagnosis.fault == Fault.NOT_MIGRATED:
        return f"the database has no schema (or an older one): run `{UPGRADE_COMMAND}`"
    if diagnosis.fault == Fault.READ_ONLY:
        return f"the database's storage is read-only ({diagnosis.cause}): make it writable"
    if diagnosis.fault == Fault.FULL:
        return f"the database's storage is full ({diagnosis.cause}): free some space"
    return f"the database is unreachable ({diagnosis.cause}): check DATABASE_URL and that the database runs"


@event.listens_for(Engine, "handle_error")
def _reconnect_after_read_only(context: ExceptionContext) -> None:
    """A connection that met read-only storage is dropped, and the rest of its pool with it: they were opened
    under the same conditions, and new ones see the storage as it is now (a fixed file, a new primary)."""
    engine = context.engine
    found = diagnose(context.original_exception, sqlite_path(engine) if engine is not None else None)
    if found is not None and found.fault == Fault.READ_ONLY:
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = True
