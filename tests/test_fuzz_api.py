"""Property-based fuzzing of the whole API against the /openapi.json it serves (schemathesis).

Every operation gets schema-valid and schema-invalid requests (examples at the boundaries, then
random ones) with the API token, on each configured database. Each response must be no 5xx, have a
documented status and content type, match its documented schema, reject invalid data with a 4xx,
accept valid data (2xx, or 404/409 when the ids do not exist or clash) and answer an undeclared
method with 405. A seeded linked user, blocked user, order and codes, drawn often by the generator,
make the success paths reachable. Deterministic: a fixed seed, no example database.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from tests.conftest import API_TOKEN
from tests.support import databases
from webapp import create_app

LINKED, BLOCKED = 1001, 1002
PENDING_CODE, CLAIMED_CODE = "PENDING23456", "CLAIMED56789"
MAX_EXAMPLES = 40  # per operation and backend: about 10 s for the whole file on both backends

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20261127,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "auth": {"openapi": {"bearer": {"bearer": API_TOKEN}}},
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "negative_data_rejection": {"enabled": True},
            "positive_data_acceptance": {"enabled": True, "expected-statuses": ["2xx", "404", "409"]},
            "unsupported_method": {"enabled": True},
        },
        # Half of the generated ids are ones the seed created, so lookups and updates can succeed.
        "dictionaries": {
            "users": {"values": [LINKED, BLOCKED]},
            "horecas": {"values": ["cafe-1"]},
            "orders": {"values": ["A-1", "A-2"]},
            "codes": {"values": [PENDING_CODE, CLAIMED_CODE]},
        },
        "parameters": {
            f"{where}.{name}": {"dictionary": dictionary, "probability": 0.5}
            for where, name, dictionary in [
                ("query", "user_id", "users"),
                ("body", "user_id", "users"),
                ("body", "telegram_user_id", "users"),
                ("body", "horeca_id", "horecas"),
                ("body", "order_id", "orders"),
                ("path", "horeca_id", "horecas"),
                ("path", "order_id", "orders"),
                ("body", "code", "codes"),
                ("body", "verification_code", "codes"),
            ]
        },
    }
)


def served_document() -> dict:
    """/openapi.json as the app serves it to the API token (building it needs no database)."""
    app = create_app(databases.test_config("sqlite://"))
    return app.test_client().get("/openapi.json", headers={"Authorization": f"Bearer {API_TOKEN}"}).get_json()


# Loaded at import and sent to each backend's app per case (`call_and_validate(app=...)`): schemathesis's
# fixture-based loader (`schemathesis.pytest.from_fixture`) fails on pytest 9 ('Function' has no `_nodeid`).
schema = schemathesis.openapi.from_dict(served_document(), config=CONFIG)
statuses: Counter[tuple[str, str, int]] = Counter()  # (backend, operation, status) seen by the fuzz test


def seed(app) -> None:
    """A linked user with an order, a blocked user with one, a pending and a claimed code, a live bot."""
    from services import cafes, customers, heartbeat, linking, orders

    with app.app_context():
        heartbeat.beat("customer", started=True)
        for user_id, code in ((LINKED, "LINKME000001"), (BLOCKED, "LINKME000002")):
            linking.issue(code)
            linking.claim(code, user_id)
        customers.mark_blocked(BLOCKED, True)
        linking.issue(PENDING_CODE)
        linking.issue(CLAIMED_CODE)
        linking.claim(CLAIMED_CODE, LINKED)
        orders.record_status(LINKED, "cafe-1", "A-1", "created")
        orders.record_status(BLOCKED, "cafe-1", "A-2", "ready")
        cafes.put_profile("cafe-1", "Cafe One", "Europe/Moscow", None, {"en": {"ready": "{order_id} is ready"}})


@pytest.fixture
def seeded_app(app):
    seed(app)
    return app


# The database is deliberately shared by all examples of one operation: state builds up as it would.
@schema.parametrize()
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_api_conforms_to_its_schema(case, seeded_app, database_url):
    response = case.call_and_validate(app=seeded_app)
    if case.method.upper() == case.operation.method.upper():  # not a probe with an undeclared method
        statuses[database_url.partition(":")[0], case.operation.label, response.status_code] += 1


# The operations the seed above makes succeed; an endpoint added to the API belongs here once seeded too.
SEEDED = {
    "GET /subscribe-status",
    "POST /verification-codes",
    "POST /verification/",
    "POST /enter_key_from_user/",
    "POST /provide_message_to_user/",
    "GET /orders/{horeca_id}/{order_id}",
    "GET /healthz",
    "PUT /horeca/{horeca_id}",
    "GET /horeca/{horeca_id}",
    "POST /api-keys",
    "GET /api-keys",
}


def test_fuzzing_reached_the_success_paths():
    """Each seeded operation got at least one 2xx: the seed and the dictionaries still line up with the API."""
    if not statuses:
        pytest.skip("runs after the fuzz test, in the same session")
    fuzzed = {(backend, label) for backend, label, _ in statuses if label in SEEDED}
    succeeded = {(backend, label) for backend, label, status in statuses if 200 <= status < 300}
    assert fuzzed <= succeeded, f"never a 2xx: {sorted(fuzzed - succeeded)}"
