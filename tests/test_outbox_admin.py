"""Failed deliveries, as an admin meets them: listed with their reasons and queued again, by CLI and by API."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import OutboxMessage, WebhookEvent, db, utcnow
from tests.conftest import ApiClient
from tests.support import databases
from tests.support.openapi import check_response
from tests.support.story import TELEBOT_400, TELEBOT_403, deliver, fail_webhooks, link, push
from webapp import create_app


@pytest.fixture
def spec(api):
    return api.get("/openapi.json").get_json()


@pytest.fixture
def story(app, api):
    """Order A-1: created sent, accepted failed (chat not found), preparing pending; user 1002 blocked the bot."""
    link(api, 1001)
    link(api, 1002)
    ids = {
        "sent": push(api, "created"),
        "failed": push(api, "accepted"),
        "pending": push(api, "preparing"),
        "blocked": push(api, "created", user_id=1002, order_id="B-1"),
    }
    deliver(app, ids["sent"], "sent", latency=0.5)
    deliver(app, ids["failed"], "failed", error=TELEBOT_400, attempts=3)
    deliver(app, ids["blocked"], "blocked", error=TELEBOT_403)
    return ids


def row(app, pk: int) -> OutboxMessage:
    with app.app_context():
        message = db.session.get(OutboxMessage, pk)
        db.session.expunge(message)
        return message


# --- who may use it ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path",
    [("get", "/admin/outbox"), ("post", "/admin/outbox/retry"), ("get", "/admin/webhooks"), ("post", "/admin/webhooks/retry")],
)
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Bearer "])
def test_admin_endpoints_require_the_api_token(api, method, path, header):
    response = getattr(api.raw, method)(path, headers={"Authorization": header} if header else {}, json={"all_failed": True})
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


# --- the API --------------------------------------------------------------------------------------------------


def test_failed_messages_are_listed_with_their_reason(api, spec, story):
    response = api.get("/admin/outbox?state=failed")
    check_response(spec, "/admin/outbox", "get", response)
    body = response.get_json()
    assert body["state"] == "failed"
    assert [item["id"] for item in body["items"]] == [story["failed"]]
    item = body["items"][0]
    assert item | {"created_at": None} == {
        "id": story["failed"],
        "kind": "status",
        "bot": "customer",
        "chat_id": 1001,
        "horeca_id": "cafe-1",
        "order_id": "A-1",
        "status": "accepted",
        "state": "failed",
        "attempts": 3,
        "last_error": TELEBOT_400,
        "created_at": None,
        "next_attempt_at": None,
        "sent_at": None,
    }


@pytest.mark.parametrize(
    "query,expected",
    [
        ("", ["blocked", "pending", "failed", "sent"]),
        ("?state=all", ["blocked", "pending", "failed", "sent"]),
        ("?state=blocked", ["blocked"]),
        ("?state=pending", ["pending"]),
        ("?state=sent", ["sent"]),
        ("?limit=2", ["blocked", "pending"]),
    ],
)
def test_listing_filters_newest_first(api, spec, story, query, expected):
    response = api.get("/admin/outbox" + query)
    check_response(spec, "/admin/outbox", "get", response)
    assert [item["id"] for item in response.get_json()["items"]] == [story[name] for name in expected]


@pytest.mark.parametrize("query", ["?state=bogus", "?limit=0", "?limit=501", "?limit=abc", "?limit=1.5"])
def test_bad_listing_queries_are_400(api, spec, query):
    response = api.get("/admin/outbox" + query)
    assert response.status_code == 400
    check_response(spec, "/admin/outbox", "get", response)


def test_retry_moves_a_failed_message_back_to_pending_and_the_order_shows_it(app, api, spec, story):
    response = api.post("/admin/outbox/retry", json={"ids": [story["failed"]]})
    check_response(spec, "/admin/outbox/retry", "post", response)
    assert response.get_json() == {"retried": [story["failed"]], "skipped": []}

    message = row(app, story["failed"])
    assert (message.state, message.attempts, message.claimed_at, message.first_attempt_at) == ("pending", 0, None, None)
    assert message.next_attempt_at <= utcnow()
    assert message.last_error.startswith("requeued by an admin at ") and message.last_error.endswith(TELEBOT_400)

    updates = api.get("/orders/cafe-1/A-1").get_json()["updates"]
    assert [u["delivery"] for u in updates] == ["sent", "pending", "pending"]
    assert api.get("/admin/outbox?state=failed").get_json()["items"] == []
    assert api.get("/healthz").get_json()["outbox"] | {"oldest_pending_age_seconds": 0} == {
        "pending": 2,
        "oldest_pending_age_seconds": 0,
        "failed": 0,
        "blocked": 1,
    }


def test_retry_by_id_reports_what_it_skipped(app, api, spec, story):
    ids = [story["sent"], story["blocked"], story["pending"], 999999]
    response = api.post("/admin/outbox/retry", json={"ids": ids})
    check_response(spec, "/admin/outbox/retry", "post", response)
    assert response.get_json() == {
        "retried": [story["blocked"]],  # a blocked message may be sent again once the user is back
        "skipped": [
            {"id": story["sent"], "reason": "sent"},
            {"id": story["pending"], "reason": "pending"},
            {"id": 999999, "reason": "not_found"},
        ],
    }
    assert row(app, story["sent"]).state == "sent"


def test_retry_all_failed_leaves_blocked_ones_alone(app, api, story):
    second = push(api, "ready")
    deliver(app, second, "failed", error="ReadTimeout")
    response = api.post("/admin/outbox/retry", json={"all_failed": True})
    assert response.get_json() == {"retried": sorted([story["failed"], second]), "skipped": []}
    assert row(app, story["blocked"]).state == "blocked"
    assert api.post("/admin/outbox/retry", json={"all_failed": True}).get_json() == {"retried": [], "skipped": []}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ids": []},
        {"ids": ["1"]},
        {"ids": [0]},
        {"ids": [2**63]},
        {"ids": None},
        {"all_failed": "yes"},
        {"ids": list(range(1, 1002))},
        [1],
        "retry",
    ],
)
def test_bad_retry_bodies_are_400(api, spec, story, body):
    response = api.post("/admin/outbox/retry", json=body)
    assert response.status_code == 400, response.get_json()
    check_response(spec, "/admin/outbox/retry", "post", response)


def test_webhook_events_are_listed_and_retried(database_url, spec):
    app = create_app(databases.test_config(database_url, BACKEND_WEBHOOK_URL="http://127.0.0.1:9/hook"))
    databases.clean(app)
    api = ApiClient(app.test_client())
    link(api, 1001)
    link(api, 1002)
    fail_webhooks(app, "HTTP 500 Internal Server Error")
    response = api.get("/admin/webhooks?state=failed")
    check_response(spec, "/admin/webhooks", "get", response)
    items = response.get_json()["items"]
    assert [(i["type"], i["state"], i["attempts"], i["last_error"]) for i in items] == [
        ("user.linked", "failed", 5, "HTTP 500 Internal Server Error")
    ] * 2
    first = items[-1]["id"]

    response = api.post("/admin/webhooks/retry", json={"ids": [first]})
    check_response(spec, "/admin/webhooks/retry", "post", response)
    assert response.get_json() == {"retried": [first], "skipped": []}
    with app.app_context():
        event = db.session.get(WebhookEvent, first)
        assert (event.state, event.attempts, event.claimed_at) == ("pending", 0, None)
        assert event.last_error.endswith("HTTP 500 Internal Server Error")
    assert [i["id"] for i in api.get("/admin/webhooks?state=pending").get_json()["items"]] == [first]
    assert api.get("/healthz").get_json()["webhooks"]["failed"] == 1

    assert api.post("/admin/webhooks/retry", json={"all_failed": True}).get_json()["retried"] == [items[0]["id"]]
    assert api.post("/admin/webhooks/retry", json={"ids": [first]}).get_json()["skipped"] == [{"id": first, "reason": "pending"}]


# --- the CLI -----------------------------------------------------------------------------------------------------


def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_cli_lists_failed_messages_as_a_table(app, story):
    result = cli(app, "outbox", "list", "--failed")
    assert result.exit_code == 0, result.output
    header, line = result.output.splitlines()[:2]
    assert header.split() == ["id", "kind", "bot", "chat", "order", "status", "state", "attempts", "last_error", "created_at"]
    assert line.split()[:8] == [str(story["failed"]), "status", "customer", "1001", "cafe-1/A-1", "accepted", "failed", "3"]
    assert "chat not found" not in line and "…" in line  # cut to fit
    wide = cli(app, "outbox", "list", "--failed", "--wide")
    assert "Bad Request: chat not found" in wide.output


@pytest.mark.parametrize("flag,expected", [("--blocked", "blocked"), ("--pending", "pending"), ("--all", "sent"), (None, "sent")])
def test_cli_list_filters(app, story, flag, expected):
    result = cli(app, "outbox", "list", *([flag] if flag else []))
    assert result.exit_code == 0, result.output
    ids = [int(line.split()[0]) for line in result.output.splitlines()[1:] if line[:1].isdigit()]
    assert story[expected] in ids
    if flag in ("--blocked", "--pending"):
        assert ids == [story[expected]]


def test_cli_limit(app, story):
    result = cli(app, "outbox", "list", "--limit", "1")
    assert [line.split()[0] for line in result.output.splitlines()[1:] if line[:1].isdigit()] == [str(story["blocked"])]
    assert cli(app, "outbox", "list", "--limit", "0").exit_code == 2


def test_cli_retry_by_id_and_the_api_shows_it(app, api, story):
    result = cli(app, "outbox", "retry", str(story["failed"]))
    assert result.exit_code == 0, result.output
    assert f"queued again: 1 ({story['failed']})" in result.output
    assert [i["id"] for i in api.get("/admin/outbox?state=pending").get_json()["items"]] == [story["pending"], story["failed"]]


def test_cli_retry_says_what_it_skipped_and_fails(app, story):
    result = cli(app, "outbox", "retry", str(story["sent"]), "424242")
    assert result.exit_code == 1
    assert f"skipped {story['sent']}: it is sent" in result.output
    assert "skipped 424242: no such row" in result.output


def test_cli_retry_all_failed(app, story):
    result = cli(app, "outbox", "retry", "--all-failed")
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalars(select(OutboxMessage.id).where(OutboxMessage.state == "failed")).all() == []
    assert "nothing to queue again" in cli(app, "outbox", "retry", "--all-failed").output


def test_cli_retry_needs_ids_or_all_failed(app):
    result = cli(app, "outbox", "retry")
    assert result.exit_code == 2
    assert "give the ids to queue again, or --all-failed" in result.output


def test_cli_webhooks(database_url):
    app = create_app(databases.test_config(database_url, BACKEND_WEBHOOK_URL="http://127.0.0.1:9/hook"))
    databases.clean(app)
    link(ApiClient(app.test_client()), 1001)
    fail_webhooks(app, "ConnectionError posting to http://127.0.0.1:9/hook: refused")
    result = cli(app, "webhooks", "list", "--failed")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].split() == ["id", "event_id", "type", "state", "attempts", "last_error", "created_at"]
    assert "user.linked" in result.output and "ConnectionError" in result.output
    result = cli(app, "webhooks", "retry", "--all-failed")
    assert result.exit_code == 0 and "queued again: 1" in result.output
    assert "user.linked" in cli(app, "webhooks", "list", "--pending").output
