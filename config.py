"""Configuration for both processes, read from the environment (and `.env` if present).

The one reader of the environment: the web app gets `Config` as Flask's `app.config`, the bot process
builds its `bot.settings.BotSettings` from the same values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

BASE_DIR = Path(__file__).resolve().parent
load_dotenv(BASE_DIR / ".env")


DEV_API_TOKEN = "dev-token"


class ConfigError(RuntimeError):
    """A setting needed at start is missing or malformed."""


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def normalize_database_url(url: str) -> str:
    """Make a plain `postgresql://` URL use psycopg 3, which is the driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


SUPPORTED_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
URL_EXAMPLES = "sqlite:///path/to/app.db or postgresql://user:password@host:5432/dbname"


def check_database_url(url: str) -> str:
    """The URL the engine gets (`normalize_database_url`), or a one-line ConfigError naming the supported schemes.

    The message never repeats the URL: it may carry a password.
    """
    url = normalize_database_url(url.strip())
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"DATABASE_URL is not a database URL (is the port a number, is a special character in the password "
            f"%-escaped?): use {URL_EXAMPLES}"
        ) from None
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise ConfigError(
            f"DATABASE_URL starts with {parsed.drivername}://, which is not supported: the supported schemes are sqlite "
            f"and postgresql (psycopg 3), e.g. {URL_EXAMPLES}"
        )
    return url


def default_database_url() -> str:
    return f"sqlite:///{BASE_DIR / 'instance' / 'app.db'}"


class Config:
    """Settings shared by the web app and the bot process."""

    def __init__(self, **overrides: Any) -> None:
        self.DATABASE_URL = normalize_database_url(os.environ.get("DATABASE_URL") or default_database_url())
        self.API_TOKEN = os.environ.get("API_TOKEN", "")
        self.DEV_MODE = _bool("DEV_MODE")
        self.TELEGRAM_BOT_TOKEN = os.environ.get("TELEGRAM_BOT_TOKEN", "")
        self.HORECA_BOT_TOKEN = os.environ.get("HORECA_BOT_TOKEN", "")
        self.BOT_USERNAME = os.environ.get("BOT_USERNAME", "")
        self.HORECA_BOT_USERNAME = os.environ.get("HORECA_BOT_USERNAME", "")
        self.TELEGRAM_API_URL = os.environ.get("TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/")
        self.CODE_TTL_SECONDS = _int("CODE_TTL_SECONDS", 600)
        # Wrong codes typed in the bots by all users together within a minute before every code is refused (0: off).
        self.WRONG_CODES_PER_MINUTE = _int("WRONG_CODES_PER_MINUTE", 30)
        self.DELIVERY_INTERVAL_SECONDS = _float("DELIVERY_INTERVAL_SECONDS", 1.0)
        self.TELEGRAM_GLOBAL_RATE = _float("TELEGRAM_GLOBAL_RATE", 30.0)
        self.TELEGRAM_PER_CHAT_RATE = _float("TELEGRAM_PER_CHAT_RATE", 1.0)
        self.DELIVERY_RETRY_DEADLINE_SECONDS = _float("DELIVERY_RETRY_DEADLINE_SECONDS", 300.0)
        self.CLAIM_TIMEOUT_SECONDS = _float("CLAIM_TIMEOUT_SECONDS", 30.0)
        # The bot process's sending and polling (checked by `bot.settings.BotSettings`).
        self.DELIVERY_WORKERS = _int("DELIVERY_WORKERS", 8)
        self.DELIVERY_BATCH_SIZE = _int("DELIVERY_BATCH_SIZE", 32)
        self.DELIVERY_BACKOFF_BASE_SECONDS = _float("DELIVERY_BACKOFF_BASE_SECONDS", 1.0)
        self.DELIVERY_BACKOFF_MAX_SECONDS = _float("DELIVERY_BACKOFF_MAX_SECONDS", 60.0)
        self.TELEGRAM_REQUEST_TIMEOUT_SECONDS = _float("TELEGRAM_REQUEST_TIMEOUT_SECONDS", 7.0)
        self.POLL_TIMEOUT_SECONDS = _int("POLL_TIMEOUT_SECONDS", 20)
        self.BACKEND_WEBHOOK_URL = os.environ.get("BACKEND_WEBHOOK_URL", "")
        self.WEBHOOK_SECRET = os.environ.get("WEBHOOK_SECRET", "")
        self.METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
        self.BOT_STALE_SECONDS = _int("BOT_STALE_SECONDS", 60)
        # What answers without a token (issue 13): /healthz's details and /healthz/bot, and /openapi.json.
        self.PUBLIC_HEALTH_DETAILS = _bool("PUBLIC_HEALTH_DETAILS")
        self.PUBLIC_OPENAPI = _bool("PUBLIC_OPENAPI")
        self.MAX_CONTENT_LENGTH = _int("MAX_BODY_BYTES", 64 * 1024)
        self.LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
        # The staff bot's cabinet (issue 4).
        self.DIALOG_WINDOW_HOURS = _float("DIALOG_WINDOW_HOURS", 24.0)
        self.DIALOGS_PAGE_SIZE = _int("DIALOGS_PAGE_SIZE", 8)
        self.COLLEAGUE_NOTE_SECONDS = _float("COLLEAGUE_NOTE_SECONDS", 60.0)
        # History (issue 10): a late status gives way to its order's newest due one; what is older than the window goes.
        self.COALESCE_AFTER_SECONDS = _float("COALESCE_AFTER_SECONDS", 10.0)
        self.RETENTION_DAYS = _float("RETENTION_DAYS", 90.0)
        self.RETENTION_BATCH_SIZE = _int("RETENTION_BATCH_SIZE", 500)
        # Several bot processes on one PostgreSQL (issue 10): one send budget per bot (0: each process its own).
        self.SHARED_SEND_BUDGET = _bool("SHARED_SEND_BUDGET", True)
        for key, value in overrides.items():
            setattr(self, key, value)
        self.DATABASE_URL = check_database_url(self.DATABASE_URL)

    def as_flask(self) -> dict[str, Any]:
        """The mapping Flask's `app.config` is updated from."""
        data = {k: v for k, v in vars(self).items() if k.isupper()}
        data["SQLALCHEMY_DATABASE_URI"] = self.DATABASE_URL
        data["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(self.DATABASE_URL)
        return data

    def check_web(self) -> None:
        """Refuse to serve the API without a token; DEV_MODE falls back to a known development token."""
        if self.API_TOKEN:
            return
        if not self.DEV_MODE:
            raise ConfigError(
                "API_TOKEN is not set: set API_TOKEN (the bearer token the backend sends), "
                f"or DEV_MODE=1 to use the development token {DEV_API_TOKEN!r} on a development machine"
            )
        self.API_TOKEN = DEV_API_TOKEN


def engine_options(url: str) -> dict[str, Any]:
    """Engine options per backend: SQLite waits for the write lock instead of failing.

    Errors never quote a statement's parameters (`hide_parameters`): they hold tokens, codes and message texts,
    and a logged traceback would carry them.
    """
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 15, "check_same_thread": False}, "hide_parameters": True}
    # No pool_pre_ping: models.py drops connections the server closed at checkout, without a round trip.
    # A connection lost without a word (a NAT or firewall forgetting it) is found by TCP keepalives within
    # about a minute instead of the kernel's two hours; keepalive settings in the URL take precedence.
    given = make_url(url).query
    keepalives = {k: v for k, v in _KEEPALIVES.items() if k not in given}
    return {"pool_size": 5, "max_overflow": 10, "connect_args": keepalives, "hide_parameters": True}


_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
