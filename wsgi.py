"""Gunicorn entry point: `gunicorn wsgi:app` (and the flask CLI's: `flask --app wsgi db upgrade`)."""

from flask import Flask

from config import ConfigError
from webapp import create_app


def build() -> Flask:
    """The app; a configuration error is one line, not a traceback, whichever command imported this module."""
    try:
        return create_app()
    except ConfigError as exc:
        raise SystemExit(f"wsgi.py: {exc}") from None


app = build()
