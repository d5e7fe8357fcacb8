"""Health checks for load balancers and whoever watches the processes (no authentication).

`/healthz` answers the load balancer: 200 while this web app can serve (its database answers), whatever
the bot process does; the body adds the bot's heartbeat and the delivery backlog for a person to read.
`/healthz/bot` answers whoever watches the bot process: 503 once a bot has been silent for longer than
BOT_STALE_SECONDS (or never wrote a heartbeat).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from services import monitoring
from webapp import schemas
from webapp.bodies import reply

bp = Blueprint("health", __name__)


def check() -> monitoring.Health:
    config = current_app.config
    return monitoring.health(config["BOT_STALE_SECONDS"], monitoring.expected_bots(config))


def document(health: monitoring.Health, ok: bool, status: int) -> Response:
    """The health document: the database's state, and the bots and backlogs when it answers."""
    if not health.serving:
        return reply(schemas.HealthOut, {"status": "error", "database": health.database}, status, exclude_unset=True)
    body = {
        "status": "ok" if ok else "error",
        "database": health.database,
        "bot": health.bots["customer"],
        "bots": health.bots,
        "outbox": health.outbox,
        "webhooks": health.webhooks,
    }
    return reply(schemas.HealthOut, body, status, exclude_unset=True)


@bp.get("/healthz")
def healthz() -> Response:
    """200 while the web app can serve and reach its database, 503 otherwise; the bot's state does not matter here."""
    health = check()
    return document(health, health.serving, 200 if health.serving else 503)


@bp.get("/healthz/bot")
def healthz_bot() -> Response:
    """200 while every bot the process should run wrote a heartbeat within BOT_STALE_SECONDS, 503 otherwise."""
    health = check()
    return document(health, health.bots_alive, 200 if health.bots_alive else 503)
