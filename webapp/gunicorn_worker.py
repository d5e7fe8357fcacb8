"""Gunicorn's gthread worker, taking a new connection only when it has a thread free for it.

A keep-alive connection stays with the worker process that accepted it. The stock gthread worker accepts
whenever its listening socket is readable, so a client that opens its connections in a burst (an HTTP
client pool warming up, a load generator) often had nearly all of them accepted by whichever worker woke
first: one process, one core and `threads` requests at a time served them all while the other workers
idled. On this 2-core machine that happened in about 4 runs out of 10 and cut the requests/s to 40 %
(docs/benchmarks.md). Here a worker whose threads are all busy stops accepting until one is free, so
connections go to the workers that can serve them now; when every worker is busy they wait in the
listening socket's backlog, as they would have waited in the busy worker's queue.
"""

from __future__ import annotations

from typing import Any

from gunicorn.workers import gthread  # type: ignore[import-untyped]  # gunicorn ships no type hints


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
