"""Health checks for load balancers and whoever watches the processes (no authentication)."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from sqlalchemy import text

from models import db

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


def database_status() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot reach the database"
        db.session.rollback()
        log.warning("health check: database unreachable: %s", type(exc).__name__)
        return f"unreachable: {type(exc).__name__}"


@bp.get("/healthz")
def healthz():
    """200 while the web app can serve and reach its database, 503 otherwise."""
    database = database_status()
    ok = database == "ok"
    return jsonify({"status": "ok" if ok else "error", "database": database}), 200 if ok else 503
