"""/healthz and /healthz/bot: what the load balancer and whoever watches the bot process see.

Without a token /healthz says only whether the web app can serve; the details and /healthz/bot take the
metrics token or the API token (or PUBLIC_HEALTH_DETAILS=1). Most tests read the details, with the API token.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from models import db
from services import customers
from tests.conftest import ApiClient
from tests.support import databases
from tests.support.openapi import check_response
from tests.support.story import TELEBOT_400, beat, deliver, fail_webhooks, link, push
from webapp import create_app


@pytest.fixture
def spec(api):
    return api.get("/openapi.json").get_json()


def get(api, spec, path: str):
    """GET a health endpoint with the API token; the answer must match /openapi.json."""
    response = api.get(path)
    check_response(spec, path, "get", response)
    return response


def own_app(database_url: str, **overrides) -> ApiClient:
    app = create_app(databases.test_config(database_url, **overrides))
    databases.clean(app)
    return ApiClient(app.test_client())


# --- the bot's heartbeat ------------------------------------------------------------------------------


def test_a_bot_that_never_wrote_a_heartbeat_is_never_seen(api, spec):
    response = get(api, spec, "/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["bot"] == {
        "status": "never_seen",
        "last_seen": None,
        "seconds_since": None,
        "username": None,
        "started_at": None,
        "last_get_updates_ok": None,
        "last_delivery_tick": None,
        "poller": None,
    }
    assert list(body["bots"]) == ["customer"]

    response = get(api, spec, "/healthz/bot")
    assert response.status_code == 503
    assert response.get_json()["status"] == "error"
    assert response.get_json()["bot"]["status"] == "never_seen"


def test_a_fresh_heartbeat_is_ok(app, api, spec):
    beat(app, seconds_ago=2)
    for path in ("/healthz", "/healthz/bot"):
        response = get(api, spec, path)
        assert response.status_code == 200
        bot = response.get_json()["bot"]
        assert bot["status"] == "ok"
        assert bot["username"] == "TestCafeBot"
        assert 2 <= bot["seconds_since"] < 10
        assert bot["last_seen"].endswith("Z") and bot["last_get_updates_ok"] and bot["last_delivery_tick"]


def test_a_silent_bot_is_stale_but_the_web_app_stays_healthy(app, api, spec):
    beat(app, seconds_ago=61)  # the default threshold is 60 s
    response = get(api, spec, "/healthz")
    assert response.status_code == 200, "the load balancer must not take the web app out for the bot's sake"
    assert response.get_json()["status"] == "ok"
    assert response.get_json()["bot"]["status"] == "stale"
    assert response.get_json()["bot"]["seconds_since"] >= 61

    response = get(api, spec, "/healthz/bot")
    assert response.status_code == 503
    assert response.get_json()["bot"]["status"] == "stale"


def test_the_stale_threshold_is_configurable(database_url):
    api = own_app(database_url, BOT_STALE_SECONDS=300)
    beat(api.raw.application, seconds_ago=120)
    response = api.get("/healthz/bot")
    assert response.status_code == 200
    assert response.get_json()["bot"]["status"] == "ok"


def test_the_staff_bot_counts_when_it_has_a_token(database_url):
    api = own_app(database_url, HORECA_BOT_TOKEN="123:staff")
    app = api.raw.application
    beat(app, "customer")
    response = api.get("/healthz/bot")
    assert response.status_code == 503
    assert response.get_json()["bots"]["horeca"]["status"] == "never_seen"
    assert response.get_json()["bot"]["status"] == "ok"

    beat(app, "horeca", username="TestStaffBot")
    response = api.get("/healthz/bot")
    assert response.status_code == 200
    assert response.get_json()["bots"]["horeca"]["username"] == "TestStaffBot"


def test_a_leftover_staff_bot_heartbeat_is_shown_but_does_not_fail_the_check(app, api):
    beat(app, "customer")
    beat(app, "horeca", seconds_ago=3600)  # the staff bot ran once; this configuration has no token for it
    response = api.get("/healthz/bot")
    assert response.status_code == 200
    assert response.get_json()["bots"]["horeca"]["status"] == "stale"


# --- the backlog ----------------------------------------------------------------------------------------


def test_backlog_follows_the_statuses_pushed_and_their_outcomes(app, api, spec):
    link(api, 1001)
    link(api, 1002)
    created = push(api, "created", order_id="A-1")
    accepted = push(api, "accepted", order_id="A-1")
    push(api, "created", user_id=1002, order_id="B-1")
    outbox = get(api, spec, "/healthz").get_json()["outbox"]
    assert outbox["pending"] == 3 and outbox["failed"] == 0 and outbox["blocked"] == 0
    assert 0 <= outbox["oldest_pending_age_seconds"] < 10

    deliver(app, created, "sent", latency=0.4)
    deliver(app, accepted, "failed", error=TELEBOT_400)
    with app.app_context():
        customers.mark_blocked(1002, True)
    push(api, "accepted", user_id=1002, order_id="B-1")  # recorded blocked: the user blocked the bot
    outbox = get(api, spec, "/healthz").get_json()["outbox"]
    assert outbox == {"pending": 1, "oldest_pending_age_seconds": outbox["oldest_pending_age_seconds"], "failed": 1, "blocked": 1}

    pending = push(api, "preparing", order_id="A-1")
    deliver(app, pending, "pending", error="HTTP 502", age=90)  # waiting for a retry, 90 s old
    outbox = get(api, spec, "/healthz").get_json()["outbox"]
    assert outbox["pending"] == 2
    assert 90 <= outbox["oldest_pending_age_seconds"] < 100


def test_a_message_being_sent_counts_as_pending(app, api):
    link(api)
    deliver(app, push(api, "created"), "sending")
    assert api.get("/healthz").get_json()["outbox"]["pending"] == 1


def test_webhook_backlog(database_url):
    api = own_app(database_url, BACKEND_WEBHOOK_URL="http://127.0.0.1:9/hook")
    link(api, 1001)  # emits user.linked
    link(api, 1002)
    webhooks = api.get("/healthz").get_json()["webhooks"]
    assert webhooks["pending"] == 2 and webhooks["failed"] == 0
    assert webhooks["oldest_pending_age_seconds"] >= 0

    fail_webhooks(api.raw.application)
    webhooks = api.get("/healthz").get_json()["webhooks"]
    assert webhooks == {"pending": 0, "oldest_pending_age_seconds": None, "failed": 2}


def test_each_app_records_webhook_events_by_its_own_setting(database_url):
    """Two apps in one process on one database, one with a webhook: only its claims queue events."""
    hooked = own_app(database_url, BACKEND_WEBHOOK_URL="http://127.0.0.1:9/hook")
    plain = ApiClient(create_app(databases.test_config(database_url)).test_client())  # created last: no webhook
    link(hooked, 1001)
    link(plain, 1002)
    link(hooked, 1003)
    assert plain.get("/healthz").get_json()["webhooks"]["pending"] == 2


# --- the database -----------------------------------------------------------------------------------------


def test_an_unreachable_database_is_a_503_with_the_reason(tmp_path, spec):
    app = create_app(databases.test_config(f"sqlite:///{tmp_path}/missing/dir/app.db"))
    client = ApiClient(app.test_client())
    for path in ("/healthz", "/healthz/bot"):
        response = client.get(path)
        assert response.status_code == 503
        check_response(spec, path, "get", response)
        body = response.get_json()
        assert body["status"] == "error"
        assert body["database"].startswith("unreachable: OperationalError")
        assert "bot" not in body


def test_an_unmigrated_database_is_a_503_that_says_so(tmp_path, spec):
    app = create_app(databases.test_config(f"sqlite:///{tmp_path}/empty.db"))
    response = ApiClient(app.test_client()).get("/healthz")
    assert response.status_code == 503
    check_response(spec, "/healthz", "get", response)
    assert response.get_json() == {"status": "error", "database": "not_migrated"}


def test_a_schema_older_than_the_code_is_not_migrated(tmp_path, spec):
    """A table the code needs is missing (the migrations were not run after an upgrade): not_migrated too."""
    url = f"sqlite:///{tmp_path}/old.db"
    databases.migrate(url)
    app = create_app(databases.test_config(url))
    with app.app_context():
        db.session.execute(text("DROP TABLE bot_heartbeats"))
        db.session.commit()
    response = ApiClient(app.test_client()).get("/healthz")
    assert response.status_code == 503
    check_response(spec, "/healthz", "get", response)
    assert response.get_json() == {"status": "error", "database": "not_migrated"}
    with app.app_context():
        db.engine.dispose()
