"""The staff bot's backend API through HTTP, on every configured database."""

from __future__ import annotations

from datetime import datetime

import pytest

from services import cabinet, outreach, relay, staff
from services.customers import Profile
from tests.support.openapi import check_response

BARISTA = 9001


@pytest.fixture
def spec(api):
    return api.get("/openapi.json").get_json()


def staff_code(api, horeca_id: str = "cafe-1", **body) -> str:
    response = api.post(f"/horeca/{horeca_id}/staff-codes", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["code"]


def join(app, code: str, user_id: int = BARISTA, first_name: str = "Olga") -> None:
    with app.app_context():
        staff.join(code, user_id, chat_id=user_id, profile=Profile(first_name=first_name, username=f"u{user_id}"))


def link_customer(api, user_id: int, horeca_id: str = "cafe-1", order_id: str = "A-1") -> None:
    code = api.post("/verification-codes", json={}).get_json()["code"]
    assert api.post("/enter_key_from_user/", json={"telegram_user_id": user_id, "verification_code": code}).status_code == 200
    assert (
        api.post(
            "/provide_message_to_user/",
            json={"user_id": user_id, "horeca_id": horeca_id, "order_id": order_id, "status": "created"},
        ).status_code
        == 202
    )


@pytest.mark.parametrize(
    "method,path",
    [
        ("post", "/horeca/cafe-1/staff-codes"),
        ("get", "/horeca/cafe-1/staff"),
        ("delete", "/horeca/cafe-1/staff/1"),
        ("get", "/horeca/cafe-1/dialogs/1"),
    ],
)
@pytest.mark.parametrize("header", [None, "Bearer wrong"])
def test_staff_endpoints_require_the_token(api, method, path, header):
    headers = {"Authorization": header} if header else {}
    response = getattr(api.raw, method)(path, headers=headers, json={})
    assert response.status_code == 401 and response.get_json()["error"] == "unauthorized"


def test_a_staff_code_has_the_staff_bots_deep_link(api, app, spec):
    app.config["HORECA_BOT_USERNAME"] = "CafeStaffBot"
    response = api.post("/horeca/cafe-1/staff-codes", json={"horeca_name": "Bean There"})
    assert response.status_code == 201
    check_response(spec, "/horeca/{horeca_id}/staff-codes", "post", response)
    body = response.get_json()
    assert body["deep_link"] == f"https://t.me/CafeStaffBot?start={body['code']}"
    assert datetime.fromisoformat(body["expires_at"]) > datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    # A staff code is not a customer code.
    assert api.post("/verification/", json={"code": body["code"]}).status_code == 404
    with app.app_context():
        assert staff.horeca_name("cafe-1") == "Bean There"


def test_without_a_configured_username_the_link_uses_the_running_bots(api, app, spec):
    app.config["HORECA_BOT_USERNAME"] = ""
    assert api.post("/horeca/cafe-1/staff-codes").get_json()["deep_link"] is None
    from services import heartbeat

    with app.app_context():
        heartbeat.beat("horeca", "RunningStaffBot", started=True)
    response = api.post("/horeca/cafe-1/staff-codes")
    check_response(spec, "/horeca/{horeca_id}/staff-codes", "post", response)
    assert response.get_json()["deep_link"].startswith("https://t.me/RunningStaffBot?start=")


def test_staff_list_join_and_remove(api, app, spec):
    empty = api.get("/horeca/cafe-1/staff")
    assert empty.status_code == 200 and empty.get_json() == {"horeca_id": "cafe-1", "staff": []}
    check_response(spec, "/horeca/{horeca_id}/staff", "get", empty)

    join(app, staff_code(api), BARISTA, "Olga")
    join(app, staff_code(api), 9002, "Ivan")
    join(app, staff_code(api, "cafe-2"), 9003, "Other")
    listed = api.get("/horeca/cafe-1/staff")
    check_response(spec, "/horeca/{horeca_id}/staff", "get", listed)
    assert [(s["telegram_user_id"], s["name"], s["username"]) for s in listed.get_json()["staff"]] == [
        (BARISTA, "Olga", "u9001"),
        (9002, "Ivan", "u9002"),
    ]

    removed = api.delete(f"/horeca/cafe-1/staff/{BARISTA}")
    assert removed.status_code == 200
    check_response(spec, "/horeca/{horeca_id}/staff/{telegram_user_id}", "delete", removed)
    assert removed.get_json()["telegram_user_id"] == BARISTA and removed.get_json()["removed_at"]
    assert api.delete(f"/horeca/cafe-1/staff/{BARISTA}").get_json() == removed.get_json()  # idempotent
    assert [s["telegram_user_id"] for s in api.get("/horeca/cafe-1/staff").get_json()["staff"]] == [9002]
    with app.app_context():
        assert staff.cabinet(BARISTA) is None

    missing = api.delete("/horeca/cafe-1/staff/9003")  # staff of cafe-2, not of cafe-1
    assert missing.status_code == 404 and missing.get_json()["error"] == "staff_not_found"
    check_response(spec, "/horeca/{horeca_id}/staff/{telegram_user_id}", "delete", missing)


def test_a_removed_member_gets_no_customer_messages(api, app):
    join(app, staff_code(api), BARISTA)
    join(app, staff_code(api), 9002)
    link_customer(api, 501)
    api.delete(f"/horeca/cafe-1/staff/{BARISTA}")
    with app.app_context():
        assert relay.relay_from_customer(501, "hello").staff_count == 1


def test_the_stored_conversation(api, app, spec):
    join(app, staff_code(api), BARISTA, "Olga")
    link_customer(api, 501, order_id="123")
    with app.app_context():
        relay.relay_from_customer(501, "Is it ready?")
        target = cabinet.list_dialogs(BARISTA).items[0]
        cabinet.toggle(BARISTA, target.customer_id)
        outreach.send_to_selected(BARISTA, "Two minutes", require_composing=False)
        relay.relay_from_customer(501, "Thanks!")

    response = api.get("/horeca/cafe-1/dialogs/501")
    assert response.status_code == 200
    check_response(spec, "/horeca/{horeca_id}/dialogs/{telegram_user_id}", "get", response)
    body = response.get_json()
    assert body["user_id"] == 501 and body["unread"] == 1 and body["has_more"] is False
    assert [(m["direction"], m["text"], m["order_id"], m["delivery"]) for m in body["messages"]] == [
        ("in", "Is it ready?", "123", "received"),
        ("out", "Two minutes", "123", "pending"),
        ("in", "Thanks!", "123", "received"),
    ]
    assert body["messages"][1]["staff"] == {"telegram_user_id": BARISTA, "name": "Olga"}
    assert body["messages"][0]["staff"] is None

    page = api.get("/horeca/cafe-1/dialogs/501?limit=2").get_json()
    assert [m["text"] for m in page["messages"]] == ["Two minutes", "Thanks!"] and page["has_more"] is True
    older = api.get(f"/horeca/cafe-1/dialogs/501?limit=2&before={page['messages'][0]['id']}").get_json()
    assert [m["text"] for m in older["messages"]] == ["Is it ready?"] and older["has_more"] is False

    other = api.get("/horeca/cafe-2/dialogs/501")  # another horeca sees none of it
    assert other.status_code == 200 and other.get_json()["messages"] == []


def test_dialog_of_an_unknown_customer_is_404(api, spec):
    response = api.get("/horeca/cafe-1/dialogs/777")
    assert response.status_code == 404 and response.get_json()["error"] == "unknown_user"
    check_response(spec, "/horeca/{horeca_id}/dialogs/{telegram_user_id}", "get", response)


@pytest.mark.parametrize(
    "path",
    [
        "/horeca/cafe-1/dialogs/abc",
        "/horeca/cafe-1/dialogs/0",
        f"/horeca/cafe-1/dialogs/{2**63}",
        "/horeca/cafe-1/dialogs/1?limit=0",
        "/horeca/cafe-1/dialogs/1?limit=501",
        "/horeca/cafe-1/dialogs/1?before=x",
        f"/horeca/{'x' * 129}/dialogs/1",
        "/horeca/cafe%00/dialogs/1",
    ],
)
def test_bad_dialog_requests_are_400(api, spec, path):
    response = api.get(path)
    assert response.status_code == 400, response.get_json()
    check_response(spec, "/horeca/{horeca_id}/dialogs/{telegram_user_id}", "get", response)


@pytest.mark.parametrize("body", [{"horeca_name": ""}, {"horeca_name": 5}, {"horeca_name": "x" * 129}, [1], "null"])
def test_bad_staff_code_bodies_are_400(api, spec, body):
    response = api.post("/horeca/cafe-1/staff-codes", json=body)
    assert response.status_code == 400
    check_response(spec, "/horeca/{horeca_id}/staff-codes", "post", response)


@pytest.mark.parametrize("path", ["/horeca/cafe-1/staff/abc", "/horeca/cafe-1/staff/-1", f"/horeca/{'x' * 129}/staff/1"])
def test_bad_removals_are_400(api, spec, path):
    response = api.delete(path)
    assert response.status_code == 400
    check_response(spec, "/horeca/{horeca_id}/staff/{telegram_user_id}", "delete", response)


def test_openapi_document_with_staff_paths_is_valid(spec):
    from openapi_spec_validator import validate

    validate(spec)
    assert {
        "/horeca/{horeca_id}/staff-codes",
        "/horeca/{horeca_id}/staff",
        "/horeca/{horeca_id}/staff/{telegram_user_id}",
        "/horeca/{horeca_id}/dialogs/{telegram_user_id}",
    } <= set(spec["paths"])
