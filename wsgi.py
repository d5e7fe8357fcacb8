"""Gunicorn entry point: `gunicorn wsgi:app` (and the flask CLI's: `flask --app wsgi db upgrade`)."""

from config import ConfigError
from webapp import create_app

try:
    app = create_app()
except ConfigError as exc:  # one line, not a traceback, whichever command imported us
    raise SystemExit(f"wsgi.py: {exc}") from None
