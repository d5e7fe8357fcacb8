"""Migration 0008 on every configured database: cafe profiles, order details, orders without a status (issue 11)."""

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


def columns(db, table: str) -> dict[str, dict]:
    return {c["name"]: c for c in inspect(db.engine).get_columns(table)}


def test_0008_adds_the_profile_and_the_details_and_goes_back(empty_url):
    app = create_app(databases.test_config(empty_url), web=False)
    with app.app_context():
        from models import db

        upgrade(revision="0008")
        assert {"timezone", "contact", "texts", "profile_updated_at"} <= set(columns(db, "horecas"))
        orders = columns(db, "orders")
        assert {"items", "total", "eta", "pickup_code"} <= set(orders) and orders["status"]["nullable"] is True
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO customers (id, telegram_user_id, chat_id, linked_at, is_blocked, is_deactivated, created_at)"
                    " VALUES (1, 1, 1, CURRENT_TIMESTAMP, :no, :no, CURRENT_TIMESTAMP)"
                ),
                {"no": False},
            )
            conn.execute(
                text(
                    "INSERT INTO orders (id, horeca_id, order_id, customer_id, telegram_user_id, status, cancellable,"
                    " created_at, updated_at) VALUES (1, 'cafe-1', 'A-1', 1, 1, NULL, :yes, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"yes": True},
            )
        db.engine.dispose()

        downgrade(revision="-1")  # relative: the lead may put other migrations before this one
        assert "texts" not in columns(db, "horecas") and "eta" not in columns(db, "orders")
        assert columns(db, "orders")["status"]["nullable"] is False
        with db.engine.connect() as conn:
            status, cancellable = conn.execute(text("SELECT status, cancellable FROM orders")).one()
        assert status == "created" and not cancellable  # an order with only texts: not cancellable afterwards either
        db.engine.dispose()
        upgrade()
        db.engine.dispose()
