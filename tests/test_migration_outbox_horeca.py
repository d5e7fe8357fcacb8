"""Migration 0004 on every configured database: outbox.horeca_id is added and filled for the rows still pending."""

from __future__ import annotations

import json
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


def _insert(conn, row_id: int, bot: str, kind: str, state: str, payload: dict | str | None) -> None:
    raw = json.dumps(payload, separators=(",", ":")) if isinstance(payload, dict) else payload
    conn.execute(
        text(
            "INSERT INTO outbox (id, kind, bot, chat_id, payload, state, attempts, next_attempt_at, created_at, has_button)"
            " VALUES (:id, :kind, :bot, 1, :payload, :state, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, :has_button)"
        ),
        {"id": row_id, "kind": kind, "bot": bot, "payload": raw, "state": state, "has_button": False},
    )


def test_0004_adds_horeca_id_and_backfills_pending_rows(empty_url):
    app = create_app(databases.test_config(empty_url), web=False)
    with app.app_context():
        from models import db

        upgrade(revision="0003")
        with db.engine.begin() as conn:
            notice = {"type": "customer_message", "horeca_id": "cafe-1", "text": "hi"}
            _insert(conn, 1, "horeca", "staff_notice", "pending", notice)
            _insert(conn, 2, "horeca", "staff_notice", "sent", notice)  # delivered: nothing to find any more
            _insert(conn, 3, "horeca", "staff_notice", "pending", {"type": "removed", "horeca": "Cafe"})
            _insert(conn, 4, "customer", "message", "pending", {"horeca_id": "cafe-2", "horeca": "Two"})
            _insert(conn, 5, "horeca", "staff_notice", "pending", "not json")
            _insert(conn, 6, "customer", "status", "pending", None)
        upgrade()
        assert "horeca_id" in {c["name"] for c in inspect(db.engine).get_columns("outbox")}
        assert "ix_outbox_horeca" in {i["name"] for i in inspect(db.engine).get_indexes("outbox")}
        with db.engine.connect() as conn:
            filled = dict(conn.execute(text("SELECT id, horeca_id FROM outbox ORDER BY id")).tuples().all())
        assert filled == {1: "cafe-1", 2: None, 3: None, 4: "cafe-2", 5: None, 6: None}

        downgrade(revision="0003")
        assert "horeca_id" not in {c["name"] for c in inspect(db.engine).get_columns("outbox")}
        db.engine.dispose()
