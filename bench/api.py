"""Benchmark of the backend API as deployed: gunicorn with gunicorn.conf.py, on SQLite and PostgreSQL.

    python bench/api.py            # about 3 minutes
    python bench/api.py --quick    # about 30 seconds

For each backend it migrates a fresh database (`flask --app wsgi db upgrade`; on PostgreSQL a database
created for the run and dropped after it), starts `gunicorn -c gunicorn.conf.py wsgi:app` on a free
port of 127.0.0.1, links a few users through the API, and drives `GET /subscribe-status` and
`POST /provide_message_to_user/` from other processes, each with the admin token and with a key scoped to the
bench's cafe (`POST /api-keys`). The baseline is bench/bare_app.py (one route,
a small JSON answer) under the same gunicorn settings. Two measurements per endpoint:

- saturation: wrk, closed loop, --connections concurrent connections for --duration seconds;
  requests/s, p50/p99 latency, and requests/s as a ratio of the bare endpoint's;
- fixed rate: an open-loop Python scheduler sending --rate requests/s; p50/p99 latency counted from
  the moment each request was due (so a slow server cannot hide its queue).

Prints a table with the targets next to the figures and writes bench/results/api.json.
Needs wrk (Debian: `apt-get install -y wrk`) and, for PostgreSQL, an admin URL in BENCH_DATABASE_URL
or TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE))

from bench.common import (  # noqa: E402
    HOST,
    admin_database_url,
    free_port,
    gunicorn,
    migrate,
    percentile,
    postgres_database,
    sqlite_database,
)
from bench.common import machine as common_machine  # noqa: E402

LUA = BASE / "bench" / "api.lua"
RESULTS = BASE / "bench" / "results" / "api.json"
TOKEN = "bench-api-token"
USERS = [7_000_000_001 + i for i in range(5)]  # a few linked users; 64-bit ids like real Telegram ones
# Targets of issue 2 (PostgreSQL, this 2-core machine): ratio to the bare endpoint's requests/s, p99 at the fixed rate.
RATIO_TARGETS = {"subscribe": 0.5, "provide": 0.3, "subscribe_key": 0.5, "provide_key": 0.3}
P99_TARGET_MS = 50.0
ENDPOINTS = {
    "bare": "GET /bare",
    "subscribe": "GET /subscribe-status",
    "provide": "POST /provide_message_to_user/",
    # The same requests with a key scoped to the bench's cafe instead of the admin token (issue 11).
    "subscribe_key": "GET /subscribe-status (key)",
    "provide_key": "POST /provide_message_to_user/ (key)",
}
SCOPED = {"key": ""}  # the scoped key minted for each backend's server


def token_for(mode: str) -> str:
    """The bearer token of a mode: a scoped key for the `*_key` modes, else the admin token."""
    return SCOPED["key"] if mode.endswith("_key") else TOKEN


def mint_key(port: int) -> None:
    """A key scoped to the bench's cafe, as the admin would mint it for the cafe's backend."""
    status, created = call(port, "POST", "/api-keys", {"name": "bench", "horeca_ids": ["bench-cafe"]})
    assert status == 201, (status, created)
    SCOPED["key"] = created["key"]


def server_env(database_url: str | None, port: int) -> dict[str, str]:
    """The environment gunicorn runs with: the deployed settings (GUNICORN_WORKERS applies to both apps), access log off."""
    env = dict(os.environ)
    env.update(
        GUNICORN_BIND=f"{HOST}:{port}",
        GUNICORN_ACCESS_LOG="",
        LOG_LEVEL="WARNING",
        API_TOKEN=TOKEN,
        BOT_USERNAME="BenchBot",
        DEV_MODE="",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def call(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = json.loads(response.read() or b"null")
    conn.close()
    return response.status, data


def link_users(port: int) -> None:
    """Each bench user claims a code, as the backend would have them do."""
    for user_id in USERS:
        status, issued = call(port, "POST", "/verification-codes", {})
        assert status == 201, (status, issued)
        claim = {"telegram_user_id": user_id, "verification_code": issued["code"]}
        status, claimed = call(port, "POST", "/enter_key_from_user/", claim)
        assert status == 200, (status, claimed)


def ms(us: float) -> float:
    return round(us / 1000, 2)


def run_wrk(port: int, mode: str, prefix: str, connections: int, duration: float) -> dict:
    """Closed loop at saturation: wrk with `connections` connections for `duration` seconds."""
    cmd = [
        "wrk",
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://{HOST}:{port}",
        "--",
        mode.removesuffix("_key"),
        prefix,
        token_for(mode),
        *map(str, USERS),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    match = re.search(r"^WRK_JSON (.*)$", out, re.M)
    if match is None:
        raise RuntimeError(f"no summary from wrk:\n{out}")
    raw = json.loads(match.group(1))
    return {
        "requests": raw["requests"],
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": ms(raw["p50_us"]),
        "p90_ms": ms(raw["p90_us"]),
        "p99_ms": ms(raw["p99_us"]),
        "max_ms": ms(raw["max_us"]),
        "statuses": raw["statuses"],
        "errors": {k: v for k, v in raw["errors"].items() if v},
    }


def request_for(mode: str, prefix: str, i: int) -> tuple[str, str, bytes | None]:
    """The i-th request of the fixed-rate run: the same mix as bench/api.lua."""
    mode = mode.removesuffix("_key")
    if mode == "bare":
        return "GET", "/bare", None
    if mode == "subscribe":
        return "GET", f"/subscribe-status?user_id={USERS[i % len(USERS)]}", None
    k, status = i, "created"
    if i % 10 == 0 and i:
        k = i - 1
    elif i % 10 == 5:
        k, status = i - 1, "accepted"
    body = {
        "user_id": USERS[k % len(USERS)],
        "horeca_id": "bench-cafe",
        "order_id": f"{prefix}-{k}",
        "status": status,
        "text": "2 x latte",
    }
    return "POST", "/provide_message_to_user/", json.dumps(body).encode()


def run_fixed_rate(port: int, mode: str, prefix: str, rate: float, duration: float, senders: int = 32) -> dict:
    """Open loop: request i is due at start + i/rate; its latency runs from when it was due, not when it was sent.

    `senders` threads each take every senders-th slot on their own connection, so a slow answer delays
    only that thread's next slot, and that delay is counted in the latency (no coordinated omission).
    """
    total = int(rate * duration)
    headers = {"Authorization": f"Bearer {token_for(mode)}", "Content-Type": "application/json"}
    latency = [0.0] * total
    lag = [0.0] * total  # how late each request left: the generator's own delay
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def sender(first: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        for i in range(first, total, senders):
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            lag[i] = time.perf_counter() - due
            method, path, body = request_for(mode, prefix, i)
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = str(response.status)
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                status = type(exc).__name__
            latency[i] = time.perf_counter() - due
            with lock:
                statuses[status] += 1
        conn.close()

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "rate": rate,
        "requests": total,
        "achieved_rps": round(total / elapsed, 1),
        "p50_ms": round(statistics.median(latency) * 1000, 2),
        "p90_ms": round(percentile(latency, 90) * 1000, 2),
        "p99_ms": round(percentile(latency, 99) * 1000, 2),
        "max_ms": round(max(latency) * 1000, 2),
        "send_lag_p99_ms": round(percentile(lag, 99) * 1000, 2),
        "statuses": dict(statuses),
    }


def saturate(port: int, mode: str, bare_port: int, args: argparse.Namespace) -> dict:
    """The endpoint at saturation right after the bare endpoint: the machine is shared, so the ratio compares
    two runs seconds apart rather than one against a baseline taken minutes earlier."""
    prefix = uuid.uuid4().hex[:6]
    run_wrk(port, mode, prefix + "w", args.connections, args.warmup)  # warm the workers (imports, pool connections)
    load = os.getloadavg()[0]
    bare = run_wrk(bare_port, "bare", prefix, args.connections, args.duration)
    saturation = run_wrk(port, mode, prefix + "s", args.connections, args.duration)
    return {
        "saturation": {**saturation, "load_average_1m_before": round(load, 2)},
        "bare_rps": bare["rps"],
        "ratio": round(saturation["rps"] / bare["rps"], 2),
        "bare_saturation": bare,
    }


def machine() -> dict:
    info = common_machine()
    commit = info.pop("commit")
    info["wrk"] = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip()
    info["commit"] = commit
    return info


def gunicorn_settings() -> dict:
    """What gunicorn.conf.py resolves to here (workers, class, threads), read in a child as gunicorn would."""
    keys = ("workers", "worker_class", "threads", "keepalive", "timeout")
    code = f"import runpy, json; c = runpy.run_path('gunicorn.conf.py'); print(json.dumps({{k: c[k] for k in {keys} if k in c}}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=BASE, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def row_ok(value: float | None, target: float, above: bool) -> str:
    if value is None:
        return ""
    return "ok" if (value >= target if above else value < target) else "MISSED"


def target_note(backend: str, value: float | None, target: float | None, above: bool) -> str:
    """The target and whether it was met, on PostgreSQL rows: the targets are for PostgreSQL only ("n/a" elsewhere)."""
    if target is None:
        return ""
    if backend != "postgresql":
        return "n/a"
    return f"{'>=' if above else '<'}{target:g} {row_ok(value, target, above)}"


def print_table(runs: list[dict]) -> None:
    bare_rps = runs[0]["saturation"]["rps"]
    head = (
        f"{'backend':<11}{'endpoint':<38}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'ratio':>7}  {'target':<12}"
        f"{'@rate p50':>10}{'p99 ms':>8}  {'target':<12}"
    )
    print("\n" + head)
    print("-" * len(head))
    for r in runs:
        s, f, mode = r["saturation"], r["fixed_rate"], r["mode"]
        ratio = r.get("ratio")
        ratio_target = RATIO_TARGETS.get(mode)
        ratio_note = target_note(r["backend"], ratio, ratio_target, above=True)
        p99_note = target_note(r["backend"], f["p99_ms"], P99_TARGET_MS if mode in RATIO_TARGETS else None, above=False)
        print(
            f"{r['backend']:<11}{ENDPOINTS[mode]:<38}{s['rps']:>8.0f}{s['p50_ms']:>8.1f}{s['p99_ms']:>8.1f}"
            f"{(ratio if ratio is not None else 1.0):>7.2f}  {ratio_note:<12}"
            f"{f['p50_ms']:>10.1f}{f['p99_ms']:>8.1f}  {p99_note:<12}"
        )
    print(
        f"\nbare endpoint: median {bare_rps:.0f} req/s of {runs[0]['saturation']['runs_rps']}; "
        "each ratio is to the bare run just before it.\n"
        "saturation: closed loop (wrk); '@rate': open loop at the fixed rate, latency from when each request was due"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about 30 s)")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections at saturation")
    parser.add_argument("--duration", type=float, default=10, help="seconds of each saturation run")
    parser.add_argument("--rate", type=float, default=200, help="requests/s of the fixed-rate run")
    parser.add_argument("--rate-duration", type=float, default=10, help="seconds of each fixed-rate run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of wrk before each endpoint's runs")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rate_duration, args.warmup = 1, 1.5, 1
    if shutil.which("wrk") is None:
        print("bench/api.py needs wrk, the HTTP load generator: apt-get install -y wrk (Debian/Ubuntu)", file=sys.stderr)
        return 2
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    admin_url = admin_database_url()

    results: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "gunicorn": gunicorn_settings(),
        "settings": {k: getattr(args, k) for k in ("connections", "duration", "rate", "rate_duration", "warmup", "quick")},
        "targets": {"ratio": RATIO_TARGETS, "p99_ms_at_rate_postgresql": P99_TARGET_MS},
        "runs": [],
    }
    logdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    print(
        f"machine: {results['machine']['cpu']}, {results['machine']['cores']} cores, "
        f"load {results['machine']['load_average_at_start']}; gunicorn {results['gunicorn']}; logs in {logdir}"
    )

    def record(backend: str, mode: str, port: int, bare_port: int) -> None:
        print(f"  {backend:<11}{ENDPOINTS[mode]} ...", flush=True)
        run = {"backend": backend, "mode": mode, "endpoint": ENDPOINTS[mode]}
        if mode != "bare":
            run.update(saturate(port, mode, bare_port, args))
        run["fixed_rate"] = run_fixed_rate(port, mode, uuid.uuid4().hex[:6], args.rate, args.rate_duration)
        results["runs"].append(run)

    # The bare app serves for the whole run: each endpoint is measured right after a bare run of its own.
    with gunicorn("bench.bare_app:app", server_env(None, free_port()), logdir / "bare.log") as bare_port:
        run_wrk(bare_port, "bare", "warmup", args.connections, args.warmup)
        record("bare", "bare", bare_port, bare_port)
        for backend in backends:
            if backend not in ("sqlite", "postgresql"):
                parser.error(f"unknown backend {backend!r}")
            with sqlite_database(logdir) if backend == "sqlite" else postgres_database(admin_url) as (url, version):
                results.setdefault("databases", {})[backend] = version
                migrate(url)
                with gunicorn("wsgi:app", server_env(url, free_port()), logdir / f"{backend}.log") as port:
                    link_users(port)
                    mint_key(port)
                    for mode in ("subscribe", "subscribe_key", "provide", "provide_key"):
                        record(backend, mode, port, bare_port)

    # The bare row: the median of its runs next to the endpoints.
    bare_runs = sorted((r["bare_saturation"] for r in results["runs"] if "bare_saturation" in r), key=lambda b: b["rps"])
    results["runs"][0]["saturation"] = {**bare_runs[len(bare_runs) // 2], "runs_rps": [b["rps"] for b in bare_runs]}
    print_table(results["runs"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {RESULTS.relative_to(BASE)}")
    for r in results["runs"]:
        if r["fixed_rate"]["send_lag_p99_ms"] > 5:
            print(
                f"note: {r['backend']} {r['endpoint']}: at the fixed rate the sender itself was late by "
                f"{r['fixed_rate']['send_lag_p99_ms']} ms (p99): a busy machine or a saturated server; "
                "that wait counts in the latency"
            )
    bad = [
        r
        for r in results["runs"]
        for key in ("saturation", "fixed_rate")
        if any(not code.startswith("2") for code in r[key]["statuses"]) or r[key].get("errors")
    ]
    for r in bad:
        print(
            f"warning: {r['backend']} {r['endpoint']}: non-2xx answers or errors: "
            f"{r['saturation']['statuses']} {r['saturation'].get('errors')} / {r['fixed_rate']['statuses']}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
