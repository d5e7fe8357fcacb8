"""Secrets stay out of error texts: database errors without their parameters, registered secrets masked in logs.

The end-to-end proof (both processes at DEBUG through every fault) is tests/e2e/test_secrets.py.
"""

from __future__ import annotations

import base64
import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot import telegram
from bot.workers import webhooks
from config import Config
from models import db

MARKER = "pw-4f9c2a7d1e"


def test_a_database_error_does_not_quote_the_statements_parameters(app, caplog):
    with app.app_context(), caplog.at_level(logging.ERROR):
        with pytest.raises(DBAPIError) as caught:
            db.session.execute(text("SELECT * FROM no_such_table WHERE token = :token"), {"token": MARKER})
        db.session.rollback()
        logging.getLogger("test").error("query failed", exc_info=caught.value)
    assert "no_such_table" in str(caught.value)  # the statement is there, its parameters are not
    assert "parameters hidden" in str(caught.value)
    assert MARKER not in str(caught.value) and MARKER not in caplog.text


def test_any_registered_secret_is_masked_without_its_prefix(caplog):
    telegram.install_redaction()
    api_token = "api:" + MARKER  # not a bot token: nothing of it stays in sight
    telegram.register_secret(api_token)
    telegram.register_secret("pw")  # too short to mask: it would garble every line
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("sent %s with pw", api_token)
    assert "sent *** with pw" in caplog.text and MARKER not in caplog.text


def test_the_webhook_settings_name_every_value_a_log_must_not_show():
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    config = Config(BACKEND_WEBHOOK_URL=f"https://hook%40user:p%3Ass-{MARKER}@backend.example/h?token=t-1", WEBHOOK_SECRET=secret)
    basic = base64.b64encode(f"hook@user:p:ss-{MARKER}".encode()).decode()  # what requests sends as Basic auth
    assert webhooks.secret_values(config) == [secret, secret.removeprefix("whsec_"), f"p%3Ass-{MARKER}", basic, "token=t-1"]
    assert webhooks.secret_values(Config(BACKEND_WEBHOOK_URL="", WEBHOOK_SECRET="")) == []
