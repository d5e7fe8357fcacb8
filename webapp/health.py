"""Health checks for load balancers and whoever watches the processes.

`/healthz` answers the load balancer: 200 while this web app can serve (its database answers, carries the
schema and takes writes: services/storage.py), whatever the bot process does. Without a token the body is
only `{"status"}`; with METRICS_TOKEN or the API token (or PUBLIC_HEALTH_DETAILS=1) it adds the database's
state, the bots' heartbeats and the delivery backlogs for a person to read: the backlogs tell order volume,
which is not for anyone who can reach the port.
`/healthz/bot` answers whoever watches the bot process (with a token, or PUBLIC_HEALTH_DETAILS=1): 503 once
a bot has been silent for longer than BOT_STALE_SECONDS (or never wrote a heartbeat).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from services import monitoring
from webapp import schemas
from webapp.auth import OPERATOR_HINT, operator_token
from webapp.bodies import reply
from webapp.errors import error_response

bp = Blueprint("health", __name__)


def details_allowed() -> bool:
    """The caller may read the details: PUBLIC_HEALTH_DETAILS is on, or it sent METRICS_TOKEN or the API token."""
    return bool(current_app.config.get("PUBLIC_HEALTH_DETAILS")) or operator_token()


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
        "staff_groups": health.staff_groups,
    }
    return reply(schemas.HealthOut, body, status, exclude_unset=True)


@bp.get("/healthz")
def healthz() -> Response:
    """200 while the web app can serve and reach its database, 503 otherwise; the bot's state does not matter here."""
    health = check()
    status = 200 if health.serving else 503
    if not details_allowed():
        return reply(schemas.HealthStatusOut, {"status": "ok" if health.serving else "error"}, status)
    return document(health, health.serving, status)


@bp.get("/healthz/bot")
def healthz_bot() -> Response | tuple[Response, int]:
    """200 while every bot the process should run wrote a heartbeat within BOT_STALE_SECONDS, 503 otherwise."""
    if not details_allowed():
        return error_response(401, "unauthorized", OPERATOR_HINT)
    health = check()
    return document(health, health.bots_alive, 200 if health.bots_alive else 503)
