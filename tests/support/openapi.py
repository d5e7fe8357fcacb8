"""Check a response against the schema /openapi.json declares for it."""

from __future__ import annotations

from jsonschema import Draft202012Validator


def check_response(doc: dict, path: str, method: str, response) -> None:
    """Assert the response's status is documented for the operation and its body matches the schema."""
    operation = doc["paths"][path][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path}: status {status} is not documented"
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": doc["components"]})
    errors = sorted(validator.iter_errors(response.get_json()), key=str)
    assert not errors, f"{method} {path} {status}: {errors[0].message}"
