"""API keys scoped to cafes (issue 11, point 4) through HTTP, on every configured database.

The admin key (API_TOKEN) mints a key for cafe-1; the key works for cafe-1's orders and staff and for the
customer endpoints, is answered 404 for cafe-2 as if it did not exist, 403 on the admin's endpoints, and
401 from the moment it is deleted. Every answer is checked against /openapi.json.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from models import ApiKey, db, utcnow
from tests.support.openapi import check_response

USER = 5001


@pytest.fixture
def spec(api):
    return api.get("/openapi.json").get_json()


def mint(api, spec, horeca_ids=("cafe-1",), name="cafe-1 site") -> dict:
    response = api.post("/api-keys", json={"name": name, "horeca_ids": list(horeca_ids)})
    check_response(spec, "/api-keys", "post", response)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def as_key(api, key: str):
    """Requests with the scoped key instead of the admin token."""

    class Keyed:
        def open(self, path, method="GET", **kw):
            return api.raw.open(path, method=method, headers={"Authorization": f"Bearer {key}"}, **kw)

        def get(self, path, **kw):
            return self.open(path, "GET", **kw)

        def post(self, path, **kw):
            return self.open(path, "POST", **kw)

        def delete(self, path, **kw):
            return self.open(path, "DELETE", **kw)

    return Keyed()


def link_and_order(api, user_id: int, horeca_id: str, order_id: str) -> None:
    code = api.post("/verification-codes", json={}).get_json()["code"]
    assert api.post("/enter_key_from_user/", json={"telegram_user_id": user_id, "verification_code": code}).status_code == 200
    body = {"user_id": user_id, "horeca_id": horeca_id, "order_id": order_id, "status": "created"}
    assert api.post("/provide_message_to_user/", json=body).status_code == 202


def test_a_minted_key_is_shown_once_and_listed_without_its_secret(api, spec, app):
    created = mint(api, spec, horeca_ids=["cafe-1", "cafe-3", "cafe-1"])
    assert created["key"].startswith("cbk_") and created["id"] in created["key"]
    assert created["horeca_ids"] == ["cafe-1", "cafe-3"]
    listed = api.get("/api-keys")
    check_response(spec, "/api-keys", "get", listed)
    [entry] = listed.get_json()["keys"]
    assert entry == {
        "id": created["id"],
        "name": "cafe-1 site",
        "horeca_ids": ["cafe-1", "cafe-3"],
        "created_at": created["created_at"],
        "last_used_at": None,
    }
    assert created["key"] not in listed.get_data(as_text=True)
    with app.app_context():  # stored hashed: the secret is nowhere in the row
        row = db.session.get(ApiKey, created["id"])
        assert created["key"] not in (row.key_hash, row.horeca_ids, row.name)
        assert len(row.key_hash) == 64


@pytest.mark.parametrize(
    "body",
    [{}, {"name": "x"}, {"name": "", "horeca_ids": ["a"]}, {"name": "x", "horeca_ids": []}, {"name": "x", "horeca_ids": [""]},
     {"name": "x" * 101, "horeca_ids": ["a"]}, {"name": "x", "horeca_ids": "cafe-1"}, {"name": 5, "horeca_ids": ["a"]}],
)  # fmt: skip
def test_a_bad_key_request_is_refused_and_mints_nothing(api, spec, body):
    response = api.post("/api-keys", json=body)
    check_response(spec, "/api-keys", "post", response)
    assert response.status_code == 400
    assert api.get("/api-keys").get_json() == {"keys": []}


def test_a_scoped_key_acts_for_its_cafe_only(api, spec):
    key = as_key(api, mint(api, spec)["key"])
    link_and_order(api, USER, "cafe-2", "B-1")  # another cafe's order, by the admin
    # The customer endpoints work for any user.
    code = key.post("/verification-codes", json={})
    check_response(spec, "/verification-codes", "post", code)
    assert code.status_code == 201
    claimed = key.post("/enter_key_from_user/", json={"telegram_user_id": USER + 1, "verification_code": code.get_json()["code"]})
    assert claimed.status_code == 200
    assert key.post("/verification/", json={"code": code.get_json()["code"]}).status_code == 200
    status = key.get(f"/subscribe-status?user_id={USER}")  # a user who so far has orders of cafe-2 only
    check_response(spec, "/subscribe-status", "get", status)
    assert status.get_json()["known"] is True

    # Its own cafe: statuses, orders, staff.
    own = {"user_id": USER, "horeca_id": "cafe-1", "order_id": "A-1", "status": "created"}
    pushed = key.post("/provide_message_to_user/", json=own)
    check_response(spec, "/provide_message_to_user/", "post", pushed)
    assert pushed.status_code == 202
    assert key.get("/orders/cafe-1/A-1").status_code == 200
    staff_code = key.post("/horeca/cafe-1/staff-codes", json={})
    check_response(spec, "/horeca/{horeca_id}/staff-codes", "post", staff_code)
    assert staff_code.status_code == 201
    assert key.get("/horeca/cafe-1/staff").status_code == 200

    # Another cafe: 404, as if it did not exist; nothing recorded.
    foreign = key.get("/orders/cafe-2/B-1")
    check_response(spec, "/orders/{horeca_id}/{order_id}", "get", foreign)
    assert (foreign.status_code, foreign.get_json()["error"]) == (404, "order_not_found")
    assert foreign.get_json() == key.get("/orders/cafe-1/NO-SUCH").get_json()
    pushed = key.post("/provide_message_to_user/", json={**own, "horeca_id": "cafe-2", "order_id": "B-2"})
    check_response(spec, "/provide_message_to_user/", "post", pushed)
    assert (pushed.status_code, pushed.get_json()["error"]) == (404, "horeca_not_found")
    assert api.get("/orders/cafe-2/B-2").status_code == 404
    for method, path, spec_path in [
        ("POST", "/horeca/cafe-2/staff-codes", "/horeca/{horeca_id}/staff-codes"),
        ("GET", "/horeca/cafe-2/staff", "/horeca/{horeca_id}/staff"),
        ("DELETE", f"/horeca/cafe-2/staff/{USER}", "/horeca/{horeca_id}/staff/{telegram_user_id}"),
        ("GET", f"/horeca/cafe-2/dialogs/{USER}", "/horeca/{horeca_id}/dialogs/{telegram_user_id}"),
    ]:
        response = key.open(path, method, json={})
        check_response(spec, spec_path, method, response)
        assert (response.status_code, response.get_json()["error"]) == (404, "horeca_not_found"), path


def test_a_scoped_key_is_forbidden_the_admin_endpoints(api, spec):
    key = as_key(api, mint(api, spec)["key"])
    for method, path, spec_path in [
        ("POST", "/api-keys", "/api-keys"),
        ("GET", "/api-keys", "/api-keys"),
        ("DELETE", "/api-keys/0123456789abcdef", "/api-keys/{key_id}"),
        ("GET", "/admin/outbox", "/admin/outbox"),
        ("POST", "/admin/outbox/retry", "/admin/outbox/retry"),
        ("GET", "/admin/webhooks", "/admin/webhooks"),
        ("POST", "/admin/webhooks/retry", "/admin/webhooks/retry"),
        ("GET", "/healthz/bot", "/healthz/bot"),
    ]:
        response = key.open(path, method, json={"name": "mine", "horeca_ids": ["cafe-2"], "all_failed": True})
        check_response(spec, spec_path, method, response)
        assert (response.status_code, response.get_json()["error"]) == (403, "forbidden"), path
    for path in ("/metrics", "/openapi.json"):
        response = key.get(path)
        assert (response.status_code, response.get_json()["error"]) == (403, "forbidden"), path
    assert [k["horeca_ids"] for k in api.get("/api-keys").get_json()["keys"]] == [["cafe-1"]]  # nothing minted
    assert key.get("/healthz").get_json() == {"status": "ok"}  # answered as to anyone: no details


def test_a_deleted_key_is_refused_at_once(api, spec):
    created = mint(api, spec)
    key = as_key(api, created["key"])
    assert key.get(f"/subscribe-status?user_id={USER}").status_code == 200
    deleted = api.delete(f"/api-keys/{created['id']}")
    check_response(spec, "/api-keys/{key_id}", "delete", deleted)
    assert deleted.status_code == 200 and deleted.get_json()["id"] == created["id"]
    refused = key.get(f"/subscribe-status?user_id={USER}")
    check_response(spec, "/subscribe-status", "get", refused)
    assert (refused.status_code, refused.get_json()["error"]) == (401, "unauthorized")
    assert created["key"] not in refused.get_data(as_text=True)
    again = api.delete(f"/api-keys/{created['id']}")
    check_response(spec, "/api-keys/{key_id}", "delete", again)
    assert (again.status_code, again.get_json()["error"]) == (404, "api_key_not_found")
    assert api.delete("/api-keys/not-a-key-id").status_code == 404
    assert api.get("/api-keys").get_json() == {"keys": []}


@pytest.mark.parametrize(
    "token",
    ["cbk_", "cbk_0123456789abcdef_" + "A" * 43, "cbk_0123456789abcdef_short"],
)
def test_a_wrong_or_malformed_key_is_unauthorized(api, spec, token):
    mint(api, spec)
    response = as_key(api, token).get(f"/subscribe-status?user_id={USER}")
    assert (response.status_code, response.get_json()["error"]) == (401, "unauthorized")


def test_a_tampered_key_is_unauthorized(api, spec):
    created = mint(api, spec)
    tampered = created["key"][:-1] + ("A" if created["key"][-1] != "A" else "B")
    response = as_key(api, tampered).get(f"/subscribe-status?user_id={USER}")
    assert (response.status_code, response.get_json()["error"]) == (401, "unauthorized")


def test_last_used_at_is_written_at_most_once_a_minute(api, spec, app):
    created = mint(api, spec)
    key = as_key(api, created["key"])
    assert key.get(f"/subscribe-status?user_id={USER}").status_code == 200
    [first] = api.get("/api-keys").get_json()["keys"]
    assert first["last_used_at"] is not None
    assert key.get(f"/subscribe-status?user_id={USER}").status_code == 200
    assert api.get("/api-keys").get_json()["keys"][0]["last_used_at"] == first["last_used_at"]  # within the minute
    with app.app_context():  # a minute and more later
        db.session.execute(update(ApiKey).values(last_used_at=utcnow() - timedelta(seconds=61)))
        db.session.commit()
    assert key.get(f"/subscribe-status?user_id={USER}").status_code == 200
    assert api.get("/api-keys").get_json()["keys"][0]["last_used_at"] > first["last_used_at"]


def test_a_body_without_a_string_horeca_id_gets_the_views_400(api, spec):
    key = as_key(api, mint(api, spec)["key"])
    for body in ({"user_id": USER, "horeca_id": 5, "order_id": "A-1", "status": "created"}, [1, 2], "[" * 5000):
        response = key.post("/provide_message_to_user/", **({"data": body} if isinstance(body, str) else {"json": body}))
        check_response(spec, "/provide_message_to_user/", "post", response)
        assert response.status_code == 400


def test_what_a_setting_opens_to_anyone_a_scoped_key_reads_too(database_url):
    from tests.conftest import ApiClient
    from tests.support import databases
    from webapp import create_app

    app = create_app(databases.test_config(database_url, PUBLIC_OPENAPI=True, PUBLIC_HEALTH_DETAILS=True))
    databases.clean(app)
    api = ApiClient(app.test_client())
    key = as_key(api, api.post("/api-keys", json={"name": "n", "horeca_ids": ["cafe-1"]}).get_json()["key"])
    assert key.get("/openapi.json").status_code == 200
    assert key.get("/healthz/bot").status_code == 503  # no bot process: the answer anyone gets
    assert key.get("/metrics").status_code == 403
