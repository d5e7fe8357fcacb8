"""Helpers for tests that drive real processes: free ports, polling, and the backend's HTTP client."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

import requests

from tests.conftest import API_TOKEN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Api:
    """The backend's side: the HTTP API of the gunicorn process."""

    def __init__(self, base_url: str, token: str = API_TOKEN) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.base_url + path, params=params, timeout=10)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.post(self.base_url + path, json=body, timeout=10)

    def issue_code(self) -> dict[str, Any]:
        response = self.post("/verification-codes", {})
        assert response.status_code == 201, response.text
        return response.json()

    def verification(self, code: str) -> requests.Response:
        return self.post("/verification/", {"code": code})

    def link(self, user_id: int) -> None:
        """Link without Telegram (the API's own claim endpoint), for tests that need many users."""
        code = self.issue_code()["code"]
        response = self.post("/enter_key_from_user/", {"telegram_user_id": user_id, "verification_code": code})
        assert response.status_code == 200, response.text

    def push(
        self,
        user_id: int,
        order_id: str,
        status: str,
        horeca_id: str = "cafe-1",
        text: str | None = None,
        expect: Iterable[int] = (200, 202),
    ) -> dict:
        body = {"user_id": user_id, "order_id": order_id, "horeca_id": horeca_id, "status": status}
        if text is not None:
            body["text"] = text
        response = self.post("/provide_message_to_user/", body)
        assert response.status_code in tuple(expect), response.text
        return response.json()

    def order(self, order_id: str, horeca_id: str = "cafe-1") -> dict[str, Any]:
        response = self.get(f"/orders/{horeca_id}/{order_id}/")
        assert response.status_code == 200, response.text
        return response.json()

    def subscribe_status(self, user_id: int) -> dict[str, Any]:
        response = self.get("/subscribe-status/", user_id=user_id)
        assert response.status_code == 200, response.text
        return response.json()

    def close(self) -> None:
        self.session.close()
