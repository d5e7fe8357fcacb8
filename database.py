"""Engine and connection plumbing, and the two ways a service holds a transaction.

Kept apart from `models.py` (which only describes tables): SQLite's locking (WAL, `BEGIN IMMEDIATE` for
writes, deferred `BEGIN` for reads), dropping PostgreSQL connections the server closed without a round trip,
and `single_statement`, the API's fast path on a thread's own autocommit connection. The event listeners
register when this module is imported; `webapp.create_app` imports it, so every process has them.
"""

from __future__ import annotations

import select
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any

import psycopg
from flask_sqlalchemy.session import Session
from sqlalchemy import event
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import scoped_session
from sqlalchemy.pool import ConnectionPoolEntry, Pool, PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.expression import Executable

from models import db


@contextmanager
def transaction() -> Iterator[scoped_session[Session]]:
    """The session's transaction for a write: committed when the block ends, rolled back if it raises.

    A `return` inside the block commits too (what was written so far is the outcome).
    """
    try:
        yield db.session
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


@contextmanager
def reading() -> Iterator[scoped_session[Session]]:
    """The session's transaction for a read: never commits; on SQLite it takes no write lock."""
    with read_only():
        try:
            yield db.session
        finally:
            db.session.rollback()


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection: DBAPIConnection, connection_record: ConnectionPoolEntry) -> None:
    """WAL and a busy timeout, and let SQLAlchemy's `begin` event issue BEGIN itself."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    dbapi_connection.isolation_level = None  # we emit BEGIN IMMEDIATE ourselves below
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def server_closed(connection: psycopg.Connection, poller: select.poll | None = None) -> bool:
    """Whether PostgreSQL has closed this idle connection, found without a round trip.

    A server that closes a connection (restart, pg_terminate_backend, idle timeout) sends its goodbye and
    EOF, so the socket of a dead idle connection is readable and that of a live idle one is not (we never
    LISTEN). A connection lost silently (no EOF) fails its first statement instead; the API answers 503.
    """
    if connection.closed or connection.broken:
        return True
    return bool((poller or _socket_poller(connection)).poll(0))


def _socket_poller(connection: psycopg.Connection) -> select.poll:
    """A poll object watching the connection's socket for data, an error or a hang-up."""
    poller = select.poll()
    poller.register(connection.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    return poller


@event.listens_for(Pool, "checkout")
def _drop_closed_connection(
    dbapi_connection: DBAPIConnection, connection_record: ConnectionPoolEntry, connection_proxy: PoolProxiedConnection
) -> None:
    """Hand out no PostgreSQL connection the server has closed: the pool drops it and checks out another.

    Instead of `pool_pre_ping`, which sends a query each time a request takes a connection (a quarter of a
    subscribe-status request's cost).
    """
    if isinstance(dbapi_connection, psycopg.Connection) and server_closed(dbapi_connection):
        raise DisconnectionError("the server closed the connection")


_read_only: ContextVar[bool] = ContextVar("read_only_transaction", default=False)


@contextmanager
def read_only() -> Iterator[None]:
    """Mark the transactions begun inside as reads: on SQLite they take no write lock (WAL readers never wait).

    Use it (also as a decorator) only around code that ends its transaction before leaving and writes nothing.
    """
    token = _read_only.set(True)
    try:
        yield
    finally:
        _read_only.reset(token)


def single_statement(engine: Engine, statement: Executable, params: dict[str, Any]) -> Any:
    """Run one statement in a transaction of its own, outside the session; its first row (a tuple) or None.

    For the API's two hottest statements. PostgreSQL: one round trip on the calling thread's own
    connection (`_ThreadConnection`), in autocommit, straight through psycopg (a server-side prepared
    statement): none of SQLAlchemy's per-execution work nor the pool's checkout and checkin, which under
    load cost as much CPU as the rest of subscribe-status's read. Errors come out as SQLAlchemy's, as from
    any other query. SQLite: read statements only, in a deferred read transaction (no write lock).
    """
    if engine.dialect.name != "postgresql":
        with read_only(), engine.connect() as conn:
            row = conn.execute(statement, params).first()
            conn.rollback()
            return row
    sql = _psycopg_sql(statement)
    try:
        cursor = _ThreadConnection.cursor_for(engine)
        return cursor.execute(sql, params, prepare=True).fetchone()
    except psycopg.Error as exc:  # cannot connect, or the statement failed
        current = _thread_connection.__dict__.get("current")
        if current is not None and exc.sqlstate == READ_ONLY_SQL_TRANSACTION:
            current.connection.close()  # a session opened read-only stays so: the next call opens a new one
        raise DBAPIError.instance(
            sql.decode(),
            None,
            exc,
            psycopg.Error,
            hide_parameters=True,
            connection_invalidated=current is not None and current.closed,
        ) from None


READ_ONLY_SQL_TRANSACTION = "25006"  # a standby, or default_transaction_read_only (services/storage.py)


@cache
def _psycopg_sql(statement: Executable) -> bytes:
    """The statement as psycopg takes it (named `%(name)s` parameters), compiled and encoded once."""
    assert isinstance(statement, ClauseElement)
    return str(statement.compile(dialect=psycopg_dialect())).encode()  # type: ignore[no-untyped-call]


class _ThreadConnection:
    """A thread's own PostgreSQL connection for `single_statement`: autocommit, one reusable cursor.

    Opened through the engine (same URL and options) on first use, detached from its pool; replaced when
    the server has closed it (`server_closed`) or the thread moves to another engine (tests); closed when
    the thread ends. A Gunicorn worker thread keeps one for its lifetime, next to the pool's.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = weakref.ref(engine)
        self.opened = time.time()  # compared with the pool's invalidation time, as the pool does for its own
        fairy = engine.raw_connection()
        connection = fairy.driver_connection
        assert isinstance(connection, psycopg.Connection)
        self.connection: psycopg.Connection[Any] = connection
        fairy.detach()  # ours now: the pool neither counts, resets nor closes it
        self.connection.autocommit = True
        self.cursor = self.connection.cursor()
        self.poller = _socket_poller(self.connection)  # for server_closed, made once

    @property
    def closed(self) -> bool:
        return self.connection.closed

    def __del__(self) -> None:
        if hasattr(self, "connection"):  # not when __init__ could not connect
            self.connection.close()

    @classmethod
    def cursor_for(cls, engine: Engine) -> psycopg.Cursor:
        current = _thread_connection.__dict__.get("current")
        if (
            current is None
            or current.engine() is not engine
            # The pool's connections were all invalidated since (a disconnect, read-only storage): so is this one.
            or current.opened < engine.pool._invalidate_time
            or server_closed(current.connection, current.poller)
        ):
            _thread_connection.current = None  # close the old one before opening its replacement
            _thread_connection.current = current = cls(engine)
        return current.cursor


_thread_connection = threading.local()


@event.listens_for(Engine, "begin")
def _sqlite_on_begin(conn: Connection) -> None:
    """Take the write lock up front so two processes writing the same file wait instead of failing."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN" if _read_only.get() else "BEGIN IMMEDIATE")
