"""Storage that refuses writes, and a database never migrated: each fault is told apart, over HTTP and in /healthz.

The causes are real ones. SQLite: its own small filesystem (a tmpfs, which needs root to mount; skipped
otherwise), remounted read-only, or filled up; PostgreSQL: `default_transaction_read_only` on the test
database. Each story ends with the cause fixed and the same app serving again, without a restart.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from config import normalize_database_url
from models import db
from tests.conftest import ApiClient
from tests.support import databases
from tests.support.openapi import check_response
from tests.support.story import link
from webapp import create_app

STATUS = {"user_id": 1001, "order_id": "A-1", "horeca_id": "cafe-1", "status": "created"}


def serve(url: str) -> ApiClient:
    return ApiClient(create_app(databases.test_config(url)).test_client())


@contextlib.contextmanager
def disposed(api: ApiClient) -> Iterator[None]:
    yield
    with api.raw.application.app_context():
        db.engine.dispose()


@pytest.fixture
def spec(api):
    return api.get("/openapi.json").get_json()


def assert_refused(spec, api: ApiClient, path: str, method: str, response, error: str, words: str) -> None:
    """A 503 with `error`, a message saying `words`, a Retry-After that asks for a pause, as documented."""
    assert response.status_code == 503, response.get_json()
    body = response.get_json()
    assert body["error"] == error and words in body["message"], body
    assert response.headers["Retry-After"] == "30"
    check_response(spec, path, method, response)


def health(api: ApiClient, spec) -> tuple[int, dict]:
    """/healthz with its details (the token)."""
    response = api.get("/healthz")
    check_response(spec, "/healthz", "get", response)
    return response.status_code, response.get_json()


# --- SQLite on a small filesystem of its own ----------------------------------------------------------------


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs with a migrated database on it (`app.db`)."""
    where = tmp_path / "fs"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a small tmpfs needs root: {mounted.stderr.strip()}")
    try:
        databases.migrate(f"sqlite:///{where / 'app.db'}")
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=True)


def remount(where: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], check=True, capture_output=True)


def test_a_read_only_filesystem_refuses_with_storage_unavailable_until_it_is_writable_again(small_filesystem, spec, caplog):
    api = serve(f"sqlite:///{small_filesystem / 'app.db'}")
    with disposed(api):
        assert api.post("/verification-codes").status_code == 201
        with api.raw.application.app_context():
            db.engine.dispose()  # a filesystem with files open for writing cannot be remounted read-only
        remount(small_filesystem, "ro")

        response = api.post("/verification-codes")
        assert_refused(spec, api, "/verification-codes", "post", response, "storage_unavailable", "read-only")
        assert "storage unavailable: the database is read_only" in caplog.text
        assert f"{small_filesystem / 'app.db'} is on a read-only filesystem" in caplog.text
        # A WAL database cannot even be read there (SQLite needs to create its -shm file): reads say the same.
        response = api.get("/subscribe-status?user_id=1001")
        assert_refused(spec, api, "/subscribe-status", "get", response, "storage_unavailable", "read-only")
        assert health(api, spec) == (503, {"status": "error", "database": "read_only"})

        remount(small_filesystem, "rw")
        assert health(api, spec)[0] == 200
        assert api.post("/verification-codes").status_code == 201


def scoped_key(api) -> dict[str, str]:
    """The header of a new API key scoped to cafe-1 (issue 11)."""
    created = api.post("/api-keys", json={"name": "cafe-1", "horeca_ids": ["cafe-1"]})
    assert created.status_code == 201
    return {"Authorization": f"Bearer {created.get_json()['key']}"}


def fill(path: Path) -> None:
    """Write `path` until the filesystem has no byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == 28  # ENOSPC
    finally:
        os.close(fd)


def test_a_full_filesystem_refuses_with_storage_unavailable_until_space_is_freed(small_filesystem, spec, caplog):
    api = serve(f"sqlite:///{small_filesystem / 'app.db'}")
    with disposed(api):
        assert api.post("/verification-codes").status_code == 201
        key = scoped_key(api)
        fill(small_filesystem / "filler")

        # The write-ahead log may still have room for a few transactions: write until it has none.
        for _ in range(500):
            response = api.post("/verification-codes")
            if response.status_code != 201:
                break
        assert_refused(spec, api, "/verification-codes", "post", response, "storage_unavailable", "full")
        assert "database or disk is full" in caplog.text
        assert api.get("/subscribe-status?user_id=1001").status_code == 200  # reads go on
        assert api.get("/subscribe-status?user_id=1001", headers=key).status_code == 200  # with a scoped key too
        assert health(api, spec) == (503, {"status": "error", "database": "full"})

        (small_filesystem / "filler").unlink()
        assert health(api, spec)[0] == 200
        assert api.post("/verification-codes").status_code == 201


# --- PostgreSQL: default_transaction_read_only (what a standby also says) ------------------------------------


def test_a_read_only_postgresql_database_refuses_writes_until_it_is_writable_again(app, api, database_url, spec, caplog):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    link(api)
    key = scoped_key(api)  # never used: its first use tries to record last_used_at
    admin = create_engine(normalize_database_url(os.environ["TEST_DATABASE_URL"]), isolation_level="AUTOCOMMIT")
    name = make_url(database_url).database

    def read_only(on: bool) -> None:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {"on" if on else "off"}'))

    try:
        read_only(True)
        reader = serve(database_url)  # new connections see the setting
        with disposed(reader):
            response = reader.post("/verification-codes")
            assert_refused(spec, reader, "/verification-codes", "post", response, "storage_unavailable", "read-only")
            assert "read_only_sql_transaction (SQLSTATE 25006)" in caplog.text
            # The statement on the thread's own connection (database.single_statement) too.
            response = reader.post("/provide_message_to_user/", json=STATUS)
            assert_refused(spec, reader, "/provide_message_to_user/", "post", response, "storage_unavailable", "read-only")
            assert reader.get("/subscribe-status?user_id=1001").get_json()["known"] is True  # reads go on
            # A scoped key's reads too: recording its last use is refused, the request is not.
            assert reader.get("/subscribe-status?user_id=1001", headers=key).get_json()["known"] is True
            assert health(reader, spec) == (503, {"status": "error", "database": "read_only"})

            read_only(False)
            # Its connections were opened read-only, and a session keeps that: the app drops them by itself.
            assert health(reader, spec)[0] == 200
            assert reader.post("/provide_message_to_user/", json=STATUS).status_code == 202
            assert reader.post("/verification-codes").status_code == 201
    finally:
        read_only(False)
        admin.dispose()


# --- a database never migrated ----------------------------------------------------------------------------------


@pytest.fixture
def empty_database(database_url, tmp_path) -> Iterator[str]:
    """A database of the same backend without any table."""
    with databases.empty_database("postgresql" if database_url.startswith("postgresql") else "sqlite", tmp_path) as url:
        yield url


def test_a_database_never_migrated_says_which_command_to_run(empty_database, spec, caplog):
    api = serve(empty_database)
    with disposed(api):
        for path, method, response in (
            ("/verification-codes", "post", api.post("/verification-codes")),
            ("/subscribe-status", "get", api.get("/subscribe-status?user_id=1001")),
            ("/provide_message_to_user/", "post", api.post("/provide_message_to_user/", json=STATUS)),
        ):
            assert_refused(spec, api, path, method, response, "database_not_migrated", "`flask --app wsgi db upgrade`")
        assert "database not migrated" in caplog.text
        for path in ("/healthz", "/healthz/bot"):
            response = api.get(path)
            assert response.status_code == 503
            check_response(spec, path, "get", response)
            assert response.get_json() == {"status": "error", "database": "not_migrated"}
        assert api.raw.get("/healthz").get_json() == {"status": "error"}  # the load balancer's view, without a token
