"""Gunicorn's gthread worker, taking a new connection only when it has a thread free for it.

A keep-alive connection stays with the worker process that accepted it. The stock gthread worker accepts
whenever its listening socket is readable, so a client that opens its connections in a burst (an HTTP
client pool warming up, a load generator) often had nearly all of them accepted by whichever worker woke
first: one process, one core and `threads` requests at a time served them all while the other workers
idled. On this 2-core machine that happened in about 4 runs out of 10 and cut the requests/s to 40 %
(docs/benchmarks.md). Here a worker whose threads are all busy stops accepting until one is free, so
connections go to the workers that can serve them now; when every worker is busy they wait in the
listening socket's backlog, as they would have waited in the busy worker's queue.

It also answers Gunicorn's own errors (a request it cannot parse, before the app sees it) in the app's JSON
shape instead of an HTML page: see `write_json_error`.
"""

from __future__ import annotations

import json
from typing import Any

from gunicorn import util  # type: ignore[import-untyped]  # gunicorn ships no type hints
from gunicorn.workers import gthread  # type: ignore[import-untyped]

# Gunicorn's parser errors by status (gunicorn/workers/base.py `handle_error`): a request line over 4094 bytes
# (414), over 100 header fields or 8190 bytes in one (431), a malformed request line, header, Content-Length
# or chunked body (400), `Expect` other than 100-continue (417), a transfer coding other than chunked (501).
_GUNICORN_ERRORS = {
    400: ("bad_request", "the request could not be parsed (request line, headers or chunked framing)"),
    403: ("forbidden", "request forbidden"),
    414: ("uri_too_long", "the request line is longer than 4094 bytes"),
    417: ("expectation_failed", "only 'Expect: 100-continue' is supported"),
    431: ("headers_too_large", "more than 100 header fields, or one longer than 8190 bytes"),
    501: ("not_implemented", "only the chunked transfer coding is supported"),
}


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Gunicorn's error answer as `{"error", "message"}` JSON, like every error of the app, not an HTML page.

    Gunicorn writes these before (or, for a body the app left unread, after) the app's answer, with
    `util.write_error`, its only caller being the worker's `handle_error`. The message is ours: Gunicorn's
    quotes the offending bytes, which may be a header carrying a token.
    """
    code, message = _GUNICORN_ERRORS.get(status_int, ("internal_error", "internal error; the request was not completed"))
    body = json.dumps({"error": code, "message": message}).encode() + b"\n"
    head = f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
    util.write_nonblock(sock, head.encode("latin-1") + b"Content-Length: %d\r\n\r\n" % len(body) + body)


util.write_error = write_json_error  # this module is imported only in Gunicorn's processes, by `worker_class`


class ThreadWorker(gthread.ThreadWorker):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = 0  # requests handed to the thread pool and not finished; main thread only

    def enqueue_req(self, conn: Any) -> None:
        self.in_flight += 1
        if self.in_flight >= self.cfg.threads:
            self.set_accept_enabled(False)
        super().enqueue_req(conn)

    def finish_request(self, conn: Any, fs: Any) -> None:
        self.in_flight -= 1  # the run loop re-enables accepting on its next turn (set_accept_enabled below)
        super().finish_request(conn, fs)

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled and self.in_flight < self.cfg.threads)
