"""The web app: `create_app()` builds it for Gunicorn (`wsgi.py`), the CLI, the bot process and tests."""

from __future__ import annotations

import logging
from typing import Any

import click
from flask import Flask, current_app
from flask.json.provider import DefaultJSONProvider
from flask_migrate import Migrate

import database  # noqa: F401 - registers the engine listeners (SQLite locking, closed PostgreSQL connections)
from config import BASE_DIR, Config
from models import db
from services import events

migrate = Migrate()


def webhook_configured() -> bool:
    """Whether the app in use has a backend webhook (BACKEND_WEBHOOK_URL): services record events only then."""
    return bool(current_app.config.get("BACKEND_WEBHOOK_URL"))


class OneLineFormatter(logging.Formatter):
    """Tracebacks and multi-line messages folded into the event's line, so one event is one line in the journal."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "").replace("\n", " | ")


# HTTP client libraries log each request line, query string included (urllib3: a webhook URL's ?token=), at
# DEBUG: they say only what goes wrong, whatever LOG_LEVEL is. Both processes configure logging here.
QUIET_LIBRARIES = ("urllib3", "requests")


def configure_logging(level: str = "INFO") -> None:
    """One line per event: time, level, process, logger, message; HTTP client libraries at WARNING and above."""
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    root = logging.getLogger()
    if getattr(root, "_customer_bot_configured", False):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root._customer_bot_configured = True  # type: ignore[attr-defined]


class InOrderJSON(DefaultJSONProvider):
    """Flask's JSON with keys in the order the code wrote them (error bodies, /openapi.json)."""

    sort_keys = False


def create_app(config: Config | dict[str, Any] | None = None, *, web: bool = True) -> Flask:
    """Build the Flask app; `web=False` (the bot process, the CLI) skips the API token check."""
    if config is None:
        config = Config()
    elif isinstance(config, dict):
        config = Config(**config)
    # The flask CLI (`flask --app wsgi db upgrade`) needs no API token; serving does.
    if web and click.get_current_context(silent=True) is None:
        config.check_web()
    configure_logging(config.LOG_LEVEL)

    app = Flask(__name__, instance_path=str(BASE_DIR / "instance"), static_folder=None)  # no static files: no route
    app.config.update(config.as_flask())
    app.json = InOrderJSON(app)
    # Paths work with and without the trailing slash. Rules are written without it: a rule ending in "/"
    # matched without the slash answers a wrong method with 404 instead of 405 (Werkzeug's matcher).
    app.url_map.strict_slashes = False
    if config.DATABASE_URL.startswith("sqlite:///"):
        (BASE_DIR / "instance").mkdir(exist_ok=True)

    db.init_app(app)
    events.use_setting(webhook_configured)
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"), render_as_batch=True)

    from webapp import admin, api, api_keys, cafes, cli, health, metrics, openapi, scopes
    from webapp.errors import register_error_handlers
    from webapp.staff_api import bp as staff_api_bp

    metrics.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(staff_api_bp)  # the staff bot's endpoints (issue 4)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(cafes.bp)  # cafe profiles (issue 11)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(api_keys.bp)  # keys scoped to cafes (issue 11); scopes: what such a key may call
    scopes.install(app)
    cli.register(app)
    register_error_handlers(app)
    return app
