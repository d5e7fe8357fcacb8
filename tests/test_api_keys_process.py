"""A scoped key on the web app as deployed (Gunicorn, two workers): deleted, it is refused at once by every worker.

No worker keeps keys in memory (services/api_keys.py), so the first requests after the DELETE, whichever
worker takes them, are 401. The key never shows up in the logs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.test_web_process import ACCESS_LINE, web  # noqa: F401 - web: the fixture, gunicorn with two workers

pytestmark = pytest.mark.e2e


def bursts(web, key: str, status: int) -> None:  # noqa: F811
    """Concurrent requests with the key on fresh connections until both workers answered; each answer is `status`."""
    for _ in range(20):
        with ThreadPoolExecutor(8) as pool:
            answers = pool.map(lambda _: web.call("GET", "/subscribe-status?user_id=1001", token=key).status_code, range(16))
            assert set(answers) == {status}
        if len(workers_answering(web.output(), str(status))) == 2:
            return
    raise AssertionError("one worker answered every request")


def workers_answering(log: str, status: str) -> set[str]:
    """The pids of the workers that answered /subscribe-status with `status` (from the access log)."""
    lines = (ACCESS_LINE.match(line) for line in log.splitlines())
    return {m["pid"] for m in lines if m and m["path"] == "/subscribe-status" and m["status"] == status}


def test_a_deleted_key_is_refused_at_once_by_every_worker(web):  # noqa: F811
    created = web.call("POST", "/api-keys", json={"name": "site of cafe-1", "horeca_ids": ["cafe-1"]})
    assert created.status_code == 201
    key, key_id = created.json()["key"], created.json()["id"]

    bursts(web, key, 200)
    assert web.call("GET", "/orders/cafe-2/A-1", token=key).json()["error"] == "order_not_found"
    assert web.call("GET", "/admin/outbox", token=key).status_code == 403
    assert web.call("GET", "/api-keys").json()["keys"][0]["last_used_at"] is not None

    assert web.call("DELETE", f"/api-keys/{key_id}").status_code == 200
    bursts(web, key, 401)
    assert web.call("GET", "/subscribe-status?user_id=1001").status_code == 200  # the admin key still works

    web.stop()
    log = web.output()
    assert key not in log and key[len("cbk_") + 17 :] not in log  # nor its secret part
