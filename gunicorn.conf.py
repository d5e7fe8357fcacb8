"""Gunicorn settings for the web app (`gunicorn -c gunicorn.conf.py wsgi:app`); env vars override."""

import multiprocessing
import os
import sys
from typing import Any


def refuse_bad_config() -> None:
    """A configuration error is one line and exit code 2, before Gunicorn logs or forks anything: a missing
    API_TOKEN, a DATABASE_URL that is not a sqlite or postgresql URL (`Config()` checks it), a malformed number.

    Without this, every worker imports wsgi.py, fails on its own and prints its traceback (181 lines for a
    missing API_TOKEN on a 2-core machine) before the master gives up.
    """
    from config import Config, ConfigError

    try:
        Config().check_web()
    except ConfigError as exc:
        print(f"gunicorn: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


# Gunicorn loads this file as the module `__config__` (and lets SystemExit through); tests that read the
# settings with runpy get another name and no check.
if __name__ == "__config__":
    refuse_bad_config()

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Requests are short and mostly wait on the database (a round trip, the commit's WAL flush): threads
# overlap those waits. Two processes per core, two threads each. A keep-alive connection stays with the
# worker that accepted it, so the worker class (webapp/gunicorn_worker.py, gthread otherwise) accepts a new
# connection only when it has a free thread: with stock gthread, a client's burst of connections often
# all landed on one worker (one core, two threads) and the requests/s fell to 40 %.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2))
worker_class = "webapp.gunicorn_worker.ThreadWorker"
threads = int(os.environ.get("GUNICORN_THREADS", 2))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 20))
keepalive = 5
# X-Forwarded-Proto (and the other forwarding headers) count only from nginx on this host (deploy/nginx.conf);
# from anyone else they are ignored. (Gunicorn's default would be the FORWARDED_ALLOW_IPS variable, else ::1 too.)
forwarded_allow_ips = "127.0.0.1"
# A worker is replaced after this many requests (a bound on any slow leak). Replacing one imports the app
# again (0.4 s of CPU): every 10,000 requests that was 5 % of the CPU at 2,000 requests/s.
max_requests = 100_000
max_requests_jitter = 10_000
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# One line per request; the query string is left out of the line on purpose (it is where ids are).
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)sB %(M)sms pid=%(p)s'


# Under systemd (RuntimeDirectory=), gunicornc's control socket goes to the unit's runtime directory: the
# default, ~/.gunicorn/, is not writable with ProtectHome=/ProtectSystem=. Elsewhere (development, tests that
# run several Gunicorns at once) it is off, so two instances never share ~/.gunicorn/gunicorn.ctl.
if os.environ.get("RUNTIME_DIRECTORY"):
    control_socket = os.path.join(os.environ["RUNTIME_DIRECTORY"].split(":")[0], "gunicorn.ctl")
else:
    control_socket_disable = True


# Prometheus multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by deploy/customer-bot-web.service): each
# worker writes its metrics to files there and /metrics sums them.
def on_starting(server: Any) -> None:
    """Start with an empty metrics directory: files left by a previous run would be summed in."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges (its counters and histograms stay counted)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
