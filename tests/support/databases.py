"""Test databases: a migrated SQLite file, and a PostgreSQL database of its own per test session.

PostgreSQL is used when TEST_DATABASE_URL is set (an admin URL such as
postgresql://postgres@127.0.0.1:5432/test); each session creates and drops its own database in it,
so parallel runs do not see each other. An unreachable server fails the run: it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from config import Config, normalize_database_url


def backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get("TEST_DATABASE_URL") else ["sqlite"]


@contextmanager
def postgres_database() -> Iterator[str]:
    """Create a fresh PostgreSQL database for this session; drop it afterwards."""
    admin_url = normalize_database_url(os.environ["TEST_DATABASE_URL"])
    name = f"cbtest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        raise RuntimeError(f"TEST_DATABASE_URL is set but PostgreSQL cannot be used: {type(exc).__name__}: {exc}") from exc
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database(backend: str, tmp_dir: Path) -> Iterator[str]:
    """A migrated, empty database of the given backend; yields its URL."""
    if backend == "postgresql":
        with postgres_database() as url:
            migrate(url)
            yield url
    else:
        url = f"sqlite:///{tmp_dir / f'test-{uuid.uuid4().hex[:8]}.db'}"
        migrate(url)
        yield url


@contextmanager
def empty_database(backend: str, tmp_dir: Path) -> Iterator[str]:
    """A database of the given backend without any table (never migrated); yields its URL."""
    if backend == "postgresql":
        with postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_dir / f'empty-{uuid.uuid4().hex[:8]}.db'}"


def test_config(url: str, **overrides) -> Config:
    values = dict(DATABASE_URL=url, API_TOKEN="test-api-token", BOT_USERNAME="TestCafeBot", LOG_LEVEL="WARNING")
    values.update(overrides)
    return Config(**values)


def migrate(url: str) -> None:
    """Bring the schema to head with the project's migrations (as `flask db upgrade` does)."""
    from flask_migrate import upgrade

    from webapp import create_app

    app = create_app(test_config(url), web=False)
    with app.app_context():
        upgrade()
        from models import db

        db.engine.dispose()


def clean(app) -> None:
    """Delete every row, keeping the schema."""
    from models import db

    with app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
