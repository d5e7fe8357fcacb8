"""The edge under attack: the load balancer's probe while hostile sockets are open, Gunicorn alone vs behind nginx.

    python bench/edge.py            # about 90 seconds
    python bench/edge.py --quick    # about 30 seconds

For each target it starts a fresh `gunicorn -c gunicorn.conf.py wsgi:app` on a migrated SQLite database (and,
for the second, deploy/nginx.conf in front of it, as tests/e2e/test_nginx.py runs it), opens --idle sockets
that send nothing, --slowloris sockets sending a request head a byte every --interval seconds and --slow-body
sockets sending a POST with a valid token whose body trickles the same way (each reopened as soon as the
server closes it), then probes GET /healthz and an authenticated GET /subscribe-status every 0.5 s, each on a
new connection with a 3 s timeout, for --duration seconds. Prints the share answered (and answered within
1 s) for each target and their ratio; writes bench/results/edge.json. Needs Debian's nginx (apt-get install nginx).

tests/e2e/test_nginx.py fails below 99 % within 1 s through nginx; Gunicorn alone is a figure, not a failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent
if str(BASE) not in sys.path:
    sys.path.insert(0, str(BASE))

from bench.common import interrupt_on_signals, machine, percentile  # noqa: E402
from tests.support import edge  # noqa: E402

RESULTS = BASE / "bench" / "results" / "edge.json"
TOKEN = "bench-edge-token"


def run(target: str, args: argparse.Namespace, logdir: Path) -> dict:
    directory = logdir / target
    directory.mkdir()
    env = edge.web_env(f"sqlite:///{directory / 'app.db'}", edge.free_port(), TOKEN)
    edge.migrate(env)
    web = edge.Gunicorn(env, directory / "gunicorn.log")
    front = None
    try:
        if target == "nginx":
            front = edge.Nginx(web.port, directory / "nginx")
        port = front.port if front else web.port
        counts = {"idle": args.idle, "slowloris": args.slowloris, "slow_body": args.slow_body}
        total = sum(counts.values())
        with edge.hostile_load(port, TOKEN, interval=args.interval, **counts) as load:
            deadline = time.monotonic() + 15
            while load.open_now < total and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(args.settle)
            result = edge.probe(port, TOKEN, args.duration, every=0.5, timeout=3.0, deadline=1.0)
            held = load.open_now
            opened, closed = dict(load.opened), dict(load.closed_by_server)
    finally:
        if front:
            front.stop()
        web.stop()
    latencies = result.latencies
    return {
        "target": target,
        "probes": result.sent,
        "answered_pct": round(result.answered_pct, 1),
        "within_1s_pct": round(result.within_pct, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99) * 1000, 1) if latencies else None,
        "statuses": result.statuses,
        "hostile_sockets": {"wanted": counts, "open_at_end": held, "opened": opened, "closed_by_server": closed},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s of probing per target")
    parser.add_argument("--duration", type=float, default=30, help="seconds of probing per target")
    parser.add_argument("--idle", type=int, default=200)
    parser.add_argument("--slowloris", type=int, default=200)
    parser.add_argument("--slow-body", type=int, default=50)
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between two bytes of a slow socket")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between opening the sockets and probing")
    parser.add_argument("--targets", default="gunicorn,nginx", help="comma-separated: gunicorn, nginx")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.settle = 10, 2
    if edge.nginx_binary() is None:
        print("bench/edge.py needs nginx: apt-get install -y nginx (Debian/Ubuntu)", file=sys.stderr)
        return 2
    interrupt_on_signals()
    logdir = Path(tempfile.mkdtemp(prefix="bench-edge-"))
    results: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {k: getattr(args, k) for k in ("duration", "idle", "slowloris", "slow_body", "interval", "settle")},
        "runs": [],
    }
    m = results["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, load {m['load_average_at_start']}; logs in {logdir}")
    for target in [t.strip() for t in args.targets.split(",") if t.strip()]:
        if target not in ("gunicorn", "nginx"):
            parser.error(f"unknown target {target!r}")
        print(f"  {target} ...", flush=True)
        results["runs"].append(run(target, args, logdir))

    print()
    print("| target | probes | answered | within 1 s | p50 | p99 | hostile sockets open at the end |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results["runs"]:
        p50 = f"{r['p50_ms']} ms" if r["p50_ms"] is not None else "—"
        p99 = f"{r['p99_ms']} ms" if r["p99_ms"] is not None else "—"
        print(
            f"| {r['target']} | {r['probes']} | {r['answered_pct']} % | {r['within_1s_pct']} % | {p50} | {p99} | "
            f"{r['hostile_sockets']['open_at_end']} |"
        )
    by = {r["target"]: r for r in results["runs"]}
    if {"gunicorn", "nginx"} <= set(by):
        alone, behind = by["gunicorn"]["within_1s_pct"], by["nginx"]["within_1s_pct"]
        results["ratio_within_1s"] = round(behind / alone, 1) if alone else None
        ratio = f"{results['ratio_within_1s']} ×" if alone else f"{behind} % against 0 %"
        print(f"\nwithin 1 s, behind nginx / Gunicorn alone: {ratio}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {RESULTS.relative_to(BASE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
