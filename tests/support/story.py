"""Steps the operations tests share: link a user and push statuses through the API, and play the bot's part
(record a delivery outcome, write a heartbeat) directly in the database, as the bot process would."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from models import BotHeartbeat, OutboxMessage, WebhookEvent, db, utcnow
from services import heartbeat

# pyTelegramBotAPI's ApiTelegramException texts, as the delivery job may store them in last_error.
TELEBOT_403 = (
    "A request to the Telegram API was unsuccessful. Error code: 403. Description: Forbidden: bot was blocked by the user"
)
TELEBOT_400 = "A request to the Telegram API was unsuccessful. Error code: 400. Description: Bad Request: chat not found"


def link(api, user_id: int = 1001) -> str:
    """Issue a code and have `user_id` claim it; returns the code."""
    code = api.post("/verification-codes", json={}).get_json()["code"]
    response = api.post("/enter_key_from_user/", json={"telegram_user_id": user_id, "verification_code": code})
    assert response.status_code == 200, response.get_json()
    return code


def push(api, status: str, user_id: int = 1001, order_id: str = "A-1", horeca_id: str = "cafe-1") -> int:
    """Push a status change through the API; returns its update_id."""
    response = api.post(
        "/provide_message_to_user/", json={"user_id": user_id, "order_id": order_id, "horeca_id": horeca_id, "status": status}
    )
    assert response.status_code == 202, response.get_json()
    return response.get_json()["update_id"]


def deliver(
    app,
    update_id: int,
    state: str,
    *,
    error: str | None = None,
    latency: float | None = None,
    age: float | None = None,
    attempts: int = 1,
) -> None:
    """Record what the bot's delivery job would: sent (after `latency` seconds), failed or blocked with `error`.

    `age` moves the message's creation that many seconds into the past first.
    """
    with app.app_context():
        message = db.session.get(OutboxMessage, update_id)
        if age is not None:
            message.created_at = utcnow() - timedelta(seconds=age)
        message.state = state
        message.attempts = attempts
        message.last_error = error
        if state == "sent":
            message.sent_at = message.created_at + timedelta(seconds=latency or 0.0)
        db.session.commit()


def fail_webhooks(app, error: str = "HTTP 500 Internal Server Error", state: str = "failed") -> None:
    """Every webhook event ends in `state` with `error`, as after the webhook job gave up."""
    with app.app_context():
        db.session.execute(update(WebhookEvent).values(state=state, attempts=5, last_error=error))
        db.session.commit()


def beat(app, name: str = "customer", username: str = "TestCafeBot", seconds_ago: float = 0.0) -> None:
    """The bot process's heartbeat, written `seconds_ago`."""
    with app.app_context():
        heartbeat.beat(name, username, started=True, get_updates_ok=True, delivery_tick=True)
        if seconds_ago:
            row = db.session.get(BotHeartbeat, name)
            row.last_seen = utcnow() - timedelta(seconds=seconds_ago)
            db.session.commit()
