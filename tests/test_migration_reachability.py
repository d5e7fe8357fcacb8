"""Migration 0006 on every configured database: customers.reachable_at, kept true for those linked before it."""

from __future__ import annotations

import uuid

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from tests.support import databases
from tests.support.databases import backends, postgres_database
from webapp import create_app


@pytest.fixture(params=backends())
def empty_url(request, tmp_path):
    if request.param == "postgresql":
        with postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / f'm-{uuid.uuid4().hex[:8]}.db'}"


def test_0006_adds_reachable_at_and_keeps_linked_customers_reachable(empty_url):
    app = create_app(databases.test_config(empty_url), web=False)
    with app.app_context():
        from models import db
        from services import customers

        upgrade(revision="0005")
        with db.engine.begin() as conn:
            for user_id, linked in ((1, "2026-11-01 10:00:00"), (2, None)):
                conn.execute(
                    text(
                        "INSERT INTO customers (id, telegram_user_id, chat_id, linked_at, is_blocked, is_deactivated, created_at)"
                        " VALUES (:id, :id, :id, :linked, :no, :no, CURRENT_TIMESTAMP)"
                    ),
                    {"id": user_id, "linked": linked, "no": False},
                )
        upgrade()
        assert "reachable_at" in {c["name"] for c in inspect(db.engine).get_columns("customers")}
        assert "ix_code_attempts_time" in {i["name"] for i in inspect(db.engine).get_indexes("code_attempts")}
        with db.engine.connect() as conn:
            reachable = dict(conn.execute(text("SELECT telegram_user_id, reachable_at FROM customers")).tuples().all())
        assert str(reachable[1]).startswith("2026-11-01 10:00:00") and reachable[2] is None
        # Subscribed before the upgrade, subscribed after it (until Telegram says otherwise).
        assert customers.subscribe_status(1).reachable is True
        db.engine.dispose()

        downgrade(revision="0005")
        assert "reachable_at" not in {c["name"] for c in inspect(db.engine).get_columns("customers")}
        assert "ix_code_attempts_time" not in {i["name"] for i in inspect(db.engine).get_indexes("code_attempts")}
        db.engine.dispose()
