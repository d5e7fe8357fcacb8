"""What answers without a token: exactly what the README lists (issue 13, point 5).

Every route of the app is asked without a token; only `GET /healthz` answers, with `{"status"}` alone. The
health details, `/healthz/bot` and `/openapi.json` take METRICS_TOKEN or the API token, or open with
PUBLIC_HEALTH_DETAILS=1 and PUBLIC_OPENAPI=1.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import API_TOKEN, ApiClient
from tests.support import databases
from tests.support.openapi import check_response
from tests.support.story import beat
from webapp import create_app

METRICS_TOKEN = "test-metrics-token"
README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLE_VALUES = {"horeca_id": "cafe-1", "order_id": "A-1", "telegram_user_id": "1001", "key_id": "0123456789abcdef"}


def own_app(database_url: str, **overrides) -> ApiClient:
    app = create_app(databases.test_config(database_url, METRICS_TOKEN=METRICS_TOKEN, **overrides))
    databases.clean(app)
    return ApiClient(app.test_client())


def open_routes(client) -> set[str]:
    """`METHOD /rule` of every route that answers something other than 401 without a token."""
    answered = set()
    for rule in client.application.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: EXAMPLE_VALUES[m[1]], rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method, json={})
            if response.status_code != 401:
                answered.add(f"{method} {rule.rule}")
            else:
                assert response.get_json()["error"] == "unauthorized"
    return answered


def readme_open_list() -> set[str]:
    """The endpoints the README's "Open without a token" line names."""
    line = next(line for line in README.read_text().splitlines() if line.startswith("**Open without a token**"))
    return set(re.findall(r"`((?:GET|POST|DELETE) /[^` ]*)", line.partition(":")[2].partition(".")[0]))


def test_without_a_token_only_healthz_answers_as_the_readme_says(database_url):
    api = own_app(database_url)
    assert open_routes(api.raw) == {"GET /healthz"} == readme_open_list()


def test_the_settings_open_exactly_what_they_name(database_url):
    api = own_app(database_url, PUBLIC_HEALTH_DETAILS=True, PUBLIC_OPENAPI=True)
    assert open_routes(api.raw) == {"GET /healthz", "GET /healthz/bot", "GET /openapi.json"}


# --- /healthz: the short answer and the details ----------------------------------------------------------


def spec_of(api) -> dict:
    return api.get("/openapi.json").get_json()


def test_healthz_without_a_token_says_only_its_status(database_url):
    api = own_app(database_url)
    beat(api.raw.application)
    response = api.raw.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    check_response(spec_of(api), "/healthz", "get", response)


@pytest.mark.parametrize("token", [API_TOKEN, METRICS_TOKEN])
def test_healthz_with_either_token_shows_the_details(database_url, token):
    api = own_app(database_url)
    beat(api.raw.application)
    response = api.raw.get("/healthz", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["bot"]["status"] == "ok"
    assert set(body) == {"status", "database", "bot", "bots", "outbox", "webhooks", "staff_groups"}
    check_response(spec_of(api), "/healthz", "get", response)


@pytest.mark.parametrize("header", ["Bearer wrong", "Basic dGVzdA==", "Bearer ", "Bearer 123:telegram"])
def test_healthz_with_a_wrong_token_is_still_the_short_answer(database_url, header):
    api = own_app(database_url)
    response = api.raw.get("/healthz", headers={"Authorization": header})
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_healthz_keeps_its_status_codes_without_a_token(tmp_path):
    app = create_app(databases.test_config(f"sqlite:///{tmp_path}/missing/dir/app.db"))
    response = app.test_client().get("/healthz")
    assert (response.status_code, response.get_json()) == (503, {"status": "error"})
    check_response(spec_of(ApiClient(app.test_client())), "/healthz", "get", response)

    unmigrated = create_app(databases.test_config(f"sqlite:///{tmp_path}/empty.db")).test_client()
    assert (unmigrated.get("/healthz").status_code, unmigrated.get("/healthz").get_json()) == (503, {"status": "error"})


def test_public_health_details_opens_the_whole_document(database_url):
    api = own_app(database_url, PUBLIC_HEALTH_DETAILS=True)
    assert api.raw.get("/healthz").get_json()["database"] == "ok"
    response = api.raw.get("/healthz/bot")
    assert response.status_code == 503 and response.get_json()["bot"]["status"] == "never_seen"


# --- /healthz/bot and /openapi.json -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz/bot", "/openapi.json"])
@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {API_TOKEN}", "Bearer "])
def test_bot_health_and_the_api_document_need_a_token(database_url, path, header):
    api = own_app(database_url)
    response = api.raw.get(path, headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.get_json() == {
        "error": "unauthorized",
        "message": "send METRICS_TOKEN (or the API token) as 'Authorization: Bearer <token>'",
    }


@pytest.mark.parametrize("token", [API_TOKEN, METRICS_TOKEN])
def test_bot_health_and_the_api_document_take_either_token(database_url, token):
    api = own_app(database_url)
    beat(api.raw.application)
    headers = {"Authorization": f"Bearer {token}"}
    response = api.raw.get("/healthz/bot", headers=headers)
    assert response.status_code == 200 and response.get_json()["bot"]["status"] == "ok"
    check_response(spec_of(api), "/healthz/bot", "get", response)
    assert api.raw.get("/openapi.json", headers=headers).get_json()["openapi"] == "3.1.0"


def test_public_openapi_opens_the_document_only(database_url):
    api = own_app(database_url, PUBLIC_OPENAPI=True)
    assert api.raw.get("/openapi.json").status_code == 200
    assert api.raw.get("/healthz/bot").status_code == 401


def test_the_document_says_who_may_read_health(database_url):
    spec = spec_of(own_app(database_url))
    healthz = spec["paths"]["/healthz"]["get"]
    assert healthz["security"] == [{}, {"bearer": []}]  # anyone; a token adds the details
    assert spec["paths"]["/healthz/bot"]["get"]["security"] == [{"bearer": []}]
    assert "401" in spec["paths"]["/healthz/bot"]["get"]["responses"]
    assert spec["components"]["schemas"]["HealthStatusOut"]["additionalProperties"] is False
