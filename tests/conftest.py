"""Fixtures: every database test runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL too."""

from __future__ import annotations

import pytest

from tests.support.databases import backends, clean, database, test_config
from webapp import create_app

API_TOKEN = "test-api-token"


@pytest.fixture(scope="session", params=backends())
def database_url(request, tmp_path_factory):
    """A migrated database per backend, shared by the session and emptied before each test."""
    with database(request.param, tmp_path_factory.mktemp(request.param)) as url:
        yield url


@pytest.fixture
def app(database_url):
    app = create_app(test_config(database_url))
    clean(app)
    yield app
    from models import db

    with app.app_context():
        db.engine.dispose()


class ApiClient:
    """Flask's test client with the bearer token set."""

    def __init__(self, client) -> None:
        self.raw = client
        self.headers = {"Authorization": f"Bearer {API_TOKEN}"}

    def get(self, path, **kw):
        return self.raw.get(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def post(self, path, **kw):
        return self.raw.post(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def delete(self, path, **kw):
        return self.raw.delete(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)


@pytest.fixture
def api(app):
    return ApiClient(app.test_client())
