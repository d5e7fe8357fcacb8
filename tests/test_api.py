"""The backend API through HTTP, on every configured database."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from tests.support.openapi import check_response


@pytest.fixture
def spec(api):
    return api.get("/openapi.json").get_json()


def link(api, user_id: int = 1001) -> str:
    """Issue a code and have `user_id` claim it; returns the code."""
    code = api.post("/verification-codes", json={}).get_json()["code"]
    assert api.post("/enter_key_from_user/", json={"telegram_user_id": user_id, "verification_code": code}).status_code == 200
    return code


def push(api, status: str, user_id: int = 1001, order_id: str = "A-1", horeca_id: str = "cafe-1", **extra):
    return api.post(
        "/provide_message_to_user/",
        json={"user_id": user_id, "order_id": order_id, "horeca_id": horeca_id, "status": status, **extra},
    )


# --- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/subscribe-status?user_id=1"),
        ("post", "/verification-codes"),
        ("post", "/verification/"),
        ("post", "/enter_key_from_user/"),
        ("post", "/provide_message_to_user/"),
        ("get", "/orders/cafe/1"),
    ],
)
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dGVzdA==", "Bearer "])
def test_every_endpoint_but_health_requires_the_token(api, method, path, header):
    headers = {"Authorization": header} if header else {}
    response = getattr(api.raw, method)(path, headers=headers, json={})
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


def test_health_needs_no_token_and_then_says_only_its_status(api, spec):
    response = api.raw.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    check_response(spec, "/healthz", "get", response)


# --- codes and linking ------------------------------------------------------------------------------


def test_issued_code_is_typeable_and_has_a_deep_link(api, spec):
    response = api.post("/verification-codes", json={})
    assert response.status_code == 201
    check_response(spec, "/verification-codes", "post", response)
    body = response.get_json()
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{10}", body["code"]), body["code"]  # no 0/O/1/I/L
    assert body["deep_link"] == f"https://t.me/TestCafeBot?start={body['code']}"
    assert datetime.fromisoformat(body["expires_at"]) > datetime.fromisoformat("2026-01-01T00:00:00+00:00")


def test_codes_differ(api):
    codes = {api.post("/verification-codes").get_json()["code"] for _ in range(20)}
    assert len(codes) == 20


def test_backend_can_register_its_own_code_once(api):
    assert api.post("/verification-codes", json={"code": "Order_123456"}).status_code == 201
    again = api.post("/verification-codes", json={"code": "ORDER_123456"})  # codes are case-insensitive
    assert again.status_code == 409
    assert again.get_json()["error"] == "code_exists"


def test_a_registered_code_needs_twelve_characters(api, spec):
    """Eleven characters could be guessed: refused, and nothing is stored (the code stays unknown)."""
    short = api.post("/verification-codes", json={"code": "Order_12345"})
    assert short.status_code == 400
    check_response(spec, "/verification-codes", "post", short)
    assert short.get_json()["error"] == "validation_error"
    assert "12" in json.dumps(short.get_json())  # the reply says how long it must be
    assert api.post("/verification/", json={"code": "Order_12345"}).status_code == 404
    assert api.post("/verification-codes", json={"code": "Order_123456"}).status_code == 201


@pytest.mark.parametrize("code", ["short", "x" * 65, "has space1", "кириллица12", "ABCDEFGHJK", 12345678, None])
def test_bad_own_codes_are_refused(api, code):
    response = api.post("/verification-codes", json={"code": code} if code is not None else {"code": None})
    if code is None:
        assert response.status_code == 201  # explicit null means "issue one"
    else:
        assert response.status_code == 400
        assert response.get_json()["error"] == "validation_error"


def test_verification_is_pending_until_claimed_then_returns_the_user(api, spec):
    code = api.post("/verification-codes").get_json()["code"]
    pending = api.post("/verification/", json={"code": code})
    assert pending.status_code == 202
    assert pending.get_json() == {"code": code, "user_id": None, "status": "pending"}
    check_response(spec, "/verification/", "post", pending)

    claimed = api.post("/enter_key_from_user/", json={"telegram_user_id": 5_000_000_000, "verification_code": code.lower()})
    assert claimed.status_code == 200
    assert claimed.get_json() == {"code": code, "user_id": 5_000_000_000}
    check_response(spec, "/enter_key_from_user/", "post", claimed)

    done = api.post("/verification", json={"code": code})  # without the trailing slash too
    assert done.status_code == 200
    assert done.get_json() == {"code": code, "user_id": 5_000_000_000}


def test_seed_spelling_of_the_user_id_is_accepted(api):
    code = api.post("/verification-codes").get_json()["code"]
    response = api.post("/enter_key_from_user", json={"teleram_user_id": 42, "verification_code": code})
    assert response.status_code == 200
    assert response.get_json()["user_id"] == 42


def test_a_code_is_claimed_once(api):
    code = link(api, 1)
    assert api.post("/enter_key_from_user/", json={"telegram_user_id": 1, "verification_code": code}).status_code == 200
    other = api.post("/enter_key_from_user/", json={"telegram_user_id": 2, "verification_code": code})
    assert other.status_code == 409
    assert other.get_json()["error"] == "code_already_claimed"
    assert api.get("/subscribe-status?user_id=2").get_json()["known"] is False


def test_unknown_and_expired_codes(api, app):
    unknown = api.post("/verification/", json={"code": "NOSUCHCODE"})
    assert unknown.status_code == 404 and unknown.get_json()["error"] == "code_not_found"
    app.config["CODE_TTL_SECONDS"] = -1
    code = api.post("/verification-codes").get_json()["code"]
    assert api.post("/verification/", json={"code": code}).status_code == 404
    claim = api.post("/enter_key_from_user/", json={"telegram_user_id": 3, "verification_code": code})
    assert claim.status_code == 404 and claim.get_json()["error"] == "code_not_found"


# --- subscribe-status -------------------------------------------------------------------------------


def test_subscribe_status_of_unknown_and_linked_users(api, spec):
    unknown = api.get("/subscribe-status?customer_bot&user_id=77")
    assert unknown.status_code == 200
    check_response(spec, "/subscribe-status", "get", unknown)
    assert (
        unknown.get_json().items()
        >= {
            "user_id": 77,
            "known": False,
            "subscribed": False,
            "reachable": False,
            "reason": "not_linked",
            "is_bot_blocked": False,
        }.items()
    )
    assert unknown.get_json()["bot_url"] == "https://t.me/TestCafeBot"

    # Linked through the API: the bot has no proof it may write to them (Telegram lets a bot write only to
    # users who started it), so they are not subscribed yet: the backend offers the bot with /start.
    link(api, 77)
    response = api.get("/subscribe-status/?user_id=77")
    check_response(spec, "/subscribe-status", "get", response)
    known = response.get_json()
    assert known.items() >= {"known": True, "subscribed": False, "reachable": False, "reason": "never_started"}.items()
    assert known["is_bot_blocked"] is False
    assert known["linked_at"]


@pytest.mark.parametrize(
    "query", ["", "?user_id=", "?user_id=abc", "?user_id=1.5", "?user_id=-3", "?user_id=0", f"?user_id={2**63}"]
)
def test_subscribe_status_rejects_bad_user_ids(api, spec, query):
    response = api.get("/subscribe-status" + query)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_user_id"
    check_response(spec, "/subscribe-status", "get", response)


def test_subscribe_status_reports_a_blocked_user(api, app):
    link(api, 88)
    from services import customers

    with app.app_context():
        customers.mark_blocked(88, True)
    status = api.get("/subscribe-status?user_id=88").get_json()
    assert status["subscribed"] is False and status["is_bot_blocked"] is True and status["known"] is True
    assert status["reachable"] is False and status["reason"] == "blocked"


# --- statuses and orders ----------------------------------------------------------------------------


# Recording a status, through each path: tests/test_record_status.py.


def test_unknown_order_is_404(api, spec):
    response = api.get("/orders/cafe-1/nope")
    assert response.status_code == 404 and response.get_json()["error"] == "order_not_found"
    check_response(spec, "/orders/{horeca_id}/{order_id}", "get", response)


GOOD = {"user_id": 1001, "order_id": "A-1", "horeca_id": "cafe-1", "status": "created"}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {**GOOD, "status": "shipped"},
        {**GOOD, "user_id": "1001"},
        {**GOOD, "user_id": True},
        {**GOOD, "user_id": 2**63},
        {**GOOD, "user_id": 1.5},
        {**GOOD, "order_id": 5},
        {**GOOD, "order_id": ""},
        {**GOOD, "horeca_id": None},
        {**GOOD, "order_id": "x" * 129},
        {**GOOD, "text": "x" * 1001},
        {**GOOD, "text": 5},
        [GOOD],
        "null",
    ],
)
def test_bad_status_bodies_are_400_and_change_nothing(api, body):
    link(api)
    response = api.post("/provide_message_to_user/", json=body)
    assert response.status_code == 400
    payload = response.get_json()
    assert set(payload) >= {"error", "message"} and payload["message"]
    assert api.get("/orders/cafe-1/A-1").status_code == 404


def test_unknown_status_lists_the_valid_ones(api):
    link(api)
    message = push(api, "shipped").get_json()["message"]
    for status in ("created", "accepted", "preparing", "ready", "completed", "cancelled", "rejected"):
        assert status in message


def test_extra_fields_are_ignored(api):
    link(api)
    assert push(api, "created", customer_bot=True, something={"x": 1}).status_code == 202


@pytest.mark.parametrize(
    "data,content_type",
    [
        ("not json", "application/json"),
        ("{", "application/json"),
        ("[1,2]", "application/json"),
        ("a=b", "application/x-www-form-urlencoded"),
    ],
)
def test_non_json_bodies_are_400_json(api, data, content_type):
    response = api.post("/provide_message_to_user/", data=data, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert response.is_json and response.get_json()["error"] in {"invalid_json", "validation_error"}


def test_oversize_body_is_413_json(api):
    response = api.post("/provide_message_to_user/", json={**GOOD, "text": "x" * 200_000})
    assert response.status_code == 413
    assert response.get_json()["error"] == "body_too_large"


def test_unknown_path_and_wrong_method_are_json(api):
    missing = api.get("/nope")
    assert missing.status_code == 404 and missing.is_json
    wrong = api.get("/provide_message_to_user/")
    assert wrong.status_code == 405 and wrong.get_json()["error"] == "method_not_allowed"


def test_openapi_document_is_valid(spec):
    from openapi_spec_validator import validate

    validate(spec)


def test_non_ascii_values_come_back_as_sent(api, spec):
    link(api)
    recorded = push(api, "created", order_id="Заказ-1", horeca_id="Café Ümlaut")
    check_response(spec, "/provide_message_to_user/", "post", recorded)
    assert recorded.mimetype == "application/json"
    assert recorded.get_json()["order_id"] == "Заказ-1" and recorded.get_json()["horeca_id"] == "Café Ümlaut"
    order = api.get("/orders/Café Ümlaut/Заказ-1")
    assert order.status_code == 200 and order.get_json()["order_id"] == "Заказ-1"


def test_an_outcome_that_does_not_fit_its_response_model_is_a_500_not_a_400(app, api):
    """A response model refusing what a service returned is a bug of ours, not the client's bad input."""
    from webapp import schemas
    from webapp.bodies import reply

    app.add_url_rule("/broken", "broken", lambda: reply(schemas.ClaimedOut, {"code": "ABCDEFGH"}))
    response = api.get("/broken")
    assert response.status_code == 500 and response.get_json()["error"] == "internal_error"


# --- found by the schemathesis fuzz test (tests/test_fuzz_api.py) -----------------------------------


@pytest.mark.parametrize(
    "method,path,allowed",
    [
        ("put", "/subscribe-status", "GET"),
        ("delete", "/subscribe-status/", "GET"),
        ("get", "/verification", "POST"),
        ("patch", "/provide_message_to_user", "POST"),
        ("post", "/orders/cafe-1/A-1", "GET"),
        ("trace", "/healthz", "GET"),
    ],
)
def test_a_wrong_method_is_405_with_allow_on_both_spellings(api, method, path, allowed):
    response = api.raw.open(path, method=method.upper(), headers=api.headers)
    assert response.status_code == 405  # was 404 for a path written without its trailing slash
    assert response.get_json()["error"] == "method_not_allowed"
    assert allowed in response.headers["Allow"]  # RFC 9110: a 405 lists the allowed methods


@pytest.mark.parametrize(
    "path,body",
    [
        ("/provide_message_to_user/", {**GOOD, "horeca_id": "cafe\x00-1"}),
        ("/provide_message_to_user/", {**GOOD, "order_id": "\x00"}),
        ("/provide_message_to_user/", {**GOOD, "text": "hello\x00"}),
        ("/verification/", {"code": "ABC\x00DEFGH"}),
        ("/enter_key_from_user/", {"telegram_user_id": 1001, "verification_code": "ABC\x00DEFGH"}),
    ],
)
def test_nul_characters_are_400_not_500(api, path, body):
    link(api)
    response = api.post(path, json=body)  # PostgreSQL text cannot hold NUL: this was a 500 there
    assert response.status_code == 400
    assert response.get_json()["error"] == "validation_error"


def test_an_order_id_with_nul_is_not_found(api):
    response = api.get("/orders/cafe-1/A%00-1")  # was a 500 on PostgreSQL
    assert response.status_code == 404 and response.get_json()["error"] == "order_not_found"


def test_an_integral_number_is_an_integer_user_id(api):
    link(api)  # JSON Schema's "integer" includes 1001.0, so the documented API accepts it
    response = push(api, "created", user_id=1001.0)
    assert response.status_code == 202
    assert api.get("/orders/cafe-1/A-1").get_json()["user_id"] == 1001


def test_the_schema_requires_one_of_the_two_user_id_spellings(api, spec):
    from jsonschema import Draft202012Validator

    schema = spec["components"]["schemas"]["EnterKeyIn"]
    validator = Draft202012Validator({**schema, "components": spec["components"]})
    code = api.post("/verification-codes").get_json()["code"]
    for body, status in [
        ({"telegram_user_id": None, "teleram_user_id": None, "verification_code": code}, 400),
        ({"verification_code": code}, 400),
        ({"telegram_user_id": None, "teleram_user_id": 42, "verification_code": code}, 200),
    ]:
        assert validator.is_valid(body) is (status == 200), body  # the document says what the API does
        assert api.post("/enter_key_from_user/", json=body).status_code == status


def test_reads_do_not_wait_for_a_writer_on_sqlite(api, database_url):
    """On SQLite, API reads take no write lock: they answer while the bot process holds one."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock only")
    import sqlite3
    import time

    link(api, 1001)
    push(api, "created")
    writer = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process is writing
    try:
        started = time.monotonic()
        assert api.get("/subscribe-status?user_id=1001").get_json()["known"] is True
        assert api.get("/orders/cafe-1/A-1").status_code == 200
        assert time.monotonic() - started < 5  # the busy timeout is 15 s: a read that waited would take that long
    finally:
        writer.execute("ROLLBACK")
        writer.close()


# --- the database connection ------------------------------------------------------------------------------


def test_connections_the_server_closed_are_replaced_without_an_error(api, app, database_url):
    """PostgreSQL restarted or killed the pool's connections: the next requests get new ones, not an error.

    (The server says goodbye on each connection before closing it; the pool sees that at checkout.)
    """
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL server closing connections")
    from sqlalchemy import create_engine, text

    from models import db

    link(api, 1001)
    assert push(api, "created").status_code == 202
    with app.app_context():
        assert db.engine.pool.checkedin() >= 1  # idle connections, which the server is about to close
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    admin.dispose()
    assert killed >= 1
    assert api.get("/subscribe-status?user_id=1001").get_json()["known"] is True
    assert push(api, "accepted").status_code == 202
    assert [u["status"] for u in api.get("/orders/cafe-1/A-1").get_json()["updates"]] == ["created", "accepted"]


@pytest.mark.parametrize(
    "url", ["sqlite:///{tmp}/missing/dir/app.db", "postgresql+psycopg://postgres@127.0.0.1:9/nothing_listens"]
)
def test_an_unreachable_database_is_a_503_that_says_retry(tmp_path, spec, url):
    from tests.support.databases import test_config
    from webapp import create_app

    client = create_app(test_config(url.format(tmp=tmp_path))).test_client()
    headers = {"Authorization": "Bearer test-api-token"}
    body = {"user_id": 1001, "order_id": "A-1", "horeca_id": "cafe-1", "status": "created"}
    for path, method, response in (
        ("/subscribe-status", "get", client.get("/subscribe-status?user_id=1001", headers=headers)),
        ("/provide_message_to_user/", "post", client.post("/provide_message_to_user/", headers=headers, json=body)),
    ):
        assert response.status_code == 503
        assert response.get_json()["error"] == "database_unavailable"
        assert response.headers["Retry-After"] == "1"
        check_response(spec, path, method, response)


def test_postgresql_connections_use_tcp_keepalives(app, database_url):
    """A connection lost without a word (a NAT forgetting it) is noticed in about a minute, not two hours."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL connections")
    from models import db

    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            parameters = raw.driver_connection.info.get_parameters()
        finally:
            raw.close()
    assert (parameters["keepalives"], parameters["keepalives_idle"], parameters["keepalives_count"]) == ("1", "30", "3")
