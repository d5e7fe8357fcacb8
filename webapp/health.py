"""Health checks for load balancers and whoever watches the processes (no authentication).

`/healthz` answers the load balancer: 200 while this web app can serve (its database answers), whatever
the bot process does; the body adds the bot's heartbeat and the delivery backlog for a person to read.
`/healthz/bot` answers whoever watches the bot process: 503 once a bot has been silent for longer than
BOT_STALE_SECONDS (or never wrote a heartbeat).
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from database import read_only
from models import db
from services import monitoring

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


@read_only()
def report() -> tuple[dict, bool]:
    """The health document, and whether every expected bot is alive (False when the database is down)."""
    database = database_status()
    if database != "ok":
        return {"status": "error", "database": database}, False
    try:
        expected = monitoring.expected_bots(current_app.config)
        bots = monitoring.bot_statuses(current_app.config["BOT_STALE_SECONDS"], expected)
        outbox = monitoring.outbox_backlog()
        webhooks = monitoring.webhook_backlog()
    except Exception as exc:  # noqa: BLE001 - e.g. the schema is not migrated: this app cannot serve
        db.session.rollback()
        log.warning("health check: database query failed: %s", type(exc).__name__)
        return {"status": "error", "database": f"error: {type(exc).__name__}"}, False
    body = {
        "status": "ok",
        "database": "ok",
        "bot": bots["customer"].as_dict(),
        "bots": {name: status.as_dict() for name, status in bots.items()},
        "outbox": outbox.as_dict(),
        "webhooks": webhooks.as_dict(),
    }
    return body, all(bots[name].ok for name in expected)


@bp.get("/healthz")
def healthz():
    """200 while the web app can serve and reach its database, 503 otherwise; the bot's state does not matter here."""
    body, _ = report()
    return jsonify(body), 200 if body["status"] == "ok" else 503


@bp.get("/healthz/bot")
def healthz_bot():
    """200 while every bot the process should run wrote a heartbeat within BOT_STALE_SECONDS, 503 otherwise."""
    body, bots_ok = report()
    if body["status"] == "ok" and not bots_ok:
        body["status"] = "error"
    return jsonify(body), 200 if bots_ok else 503
