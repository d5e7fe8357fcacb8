"""Benchmark of a year of history: the API and delivery on a big PostgreSQL database against a fresh one, and the purge.

    python bench/history.py                  # 1 M orders, 4 M sent outbox rows; about 10 minutes on 2 cores
    python bench/history.py --quick          # 100 k orders, 400 k rows; about 3 minutes
    python bench/history.py --orders 300000  # any size

Two databases of the run's own on the PostgreSQL server (BENCH_DATABASE_URL, else TEST_DATABASE_URL, else the
local default), both migrated; dropped after the run.
- big: `--orders` finished orders (status completed) of 100 k customers, spread evenly over the last 365 days,
  each with 4 sent status messages (created, accepted, ready, completed): 4 × orders outbox rows. Generated in
  the database with INSERT … SELECT generate_series, then VACUUM ANALYZE.
- fresh: nothing but the benchmark's own customers.

(a) `GET /subscribe-status` and `POST /provide_message_to_user/` (the mix of bench/api.lua) through
    `gunicorn -c gunicorn.conf.py wsgi:app`, one gunicorn per database: wrk closed loop, measured alternately
    (fresh, big, big, fresh, ...) for --rounds rounds of --duration seconds per endpoint and database; the
    ratio big / fresh of the summed requests/s (target >= 0.9).
(b) the delivery drain rate on each database: --drain updates for as many new chats queued through the service
    layer while the bot is stopped, then `run_bot.py` with Telegram's limits off (in the bot and in the emulator,
    `python -m devtools.tg_emulator`), messages/s between the first and last arrival (bench/delivery.py's drain);
    ratio big / fresh.
(c) the retention job on the big database (`services.retention.purge`, RETENTION_BATCH_SIZE rows per
    transaction): the dry run's counting time, then the purge of the orders older than 335 days (the oldest
    month: about 1/12 of the orders and their messages), rows/s.

Prints a table and writes bench/results/history.json. Everything listens on 127.0.0.1; every process started is
stopped by its pid, also on Ctrl-C or SIGTERM. Needs wrk (Debian: `apt-get install -y wrk`).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import api as api_bench  # noqa: E402
from bench import delivery as delivery_bench  # noqa: E402
from bench.common import (  # noqa: E402
    BASE,
    HOST,
    admin_database_url,
    child,
    free_port,
    gunicorn,
    interrupt_on_signals,
    machine,
    migrate,
    postgres_database,
)
from devtools.tg_emulator import EmulatorClient  # noqa: E402

RESULTS = BASE / "bench" / "results" / "history.json"
PY = sys.executable
CUSTOMERS = 100_000
FIRST_CUSTOMER = 6_000_000_001
STATUSES = ("created", "accepted", "ready", "completed")
SLICE_DAYS = 335  # the purge of (c): orders older than this, the oldest 30 of the 365 days
RATIO_TARGET = 0.9


# --- the big database ------------------------------------------------------------------------------------------

FILL = [
    # Customers: linked a year ago, reachable.
    """
    INSERT INTO customers (telegram_user_id, chat_id, first_name, language_code, linked_at, is_blocked, is_deactivated,
                           state_changed_at, reachable_at, created_at)
    SELECT :first + g, :first + g, 'Guest ' || g, 'ru', :start, false, false, :start, :start, :start
    FROM generate_series(0, :customers - 1) AS g
    """,
    # Orders: order g at start + g/orders of a year, owned by customer g % customers, last updated 15 minutes later.
    """
    INSERT INTO orders (horeca_id, order_id, customer_id, telegram_user_id, status, cancellable, created_at, updated_at)
    SELECT 'cafe-' || (g % 50), 'H-' || g, c.first_id + (g % :customers), :first + (g % :customers), 'completed', false,
           :start + make_interval(secs => g * :spread),
           :start + make_interval(secs => g * :spread + 900)
    FROM generate_series(0, :orders - 1) AS g, (SELECT min(id) AS first_id FROM customers) AS c
    """,
    # Four sent status messages per order, in time order (ids grow with time, as in production).
    """
    INSERT INTO outbox (kind, bot, chat_id, order_pk, status, dedup_key, state, attempts, next_attempt_at, created_at,
                        first_attempt_at, sent_at, telegram_message_id, has_button)
    SELECT 'status', 'customer', o.telegram_user_id, o.id, s.status, 'status:' || o.id || ':' || s.status, 'sent', 1,
           o.created_at + make_interval(secs => s.k * 300), o.created_at + make_interval(secs => s.k * 300),
           o.created_at + make_interval(secs => s.k * 300), o.created_at + make_interval(secs => s.k * 300 + 1),
           o.id * 4 + s.k, false
    FROM orders o CROSS JOIN (VALUES (0, 'created'), (1, 'accepted'), (2, 'ready'), (3, 'completed')) AS s(k, status)
    ORDER BY o.id, s.k
    """,
]


def fill(url: str, orders: int) -> dict:
    """Generate the year of history in the database; returns the seconds it took and the database's size."""
    from sqlalchemy import create_engine, text

    from config import normalize_database_url
    from models import utcnow

    engine = create_engine(normalize_database_url(url), isolation_level="AUTOCOMMIT")
    year = 365 * 86400
    params = {
        "first": FIRST_CUSTOMER,
        "customers": min(CUSTOMERS, orders),
        "orders": orders,
        "start": utcnow().replace(microsecond=0) - timedelta(seconds=year),
        "spread": year / orders,
    }
    started = time.monotonic()
    with engine.connect() as conn:
        for statement in FILL:
            conn.execute(text(statement), params)
        fill_seconds = time.monotonic() - started
        conn.execute(text("VACUUM ANALYZE"))
        size = conn.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar()
        rows = conn.execute(text("SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM outbox)")).one()
    engine.dispose()
    return {
        "orders": rows[0],
        "outbox_rows": rows[1],
        "fill_seconds": round(fill_seconds, 1),
        "with_vacuum_seconds": round(time.monotonic() - started, 1),
        "size": size,
    }


# --- (a) the API, alternately -----------------------------------------------------------------------------------


def api_rounds(ports: dict[str, int], args: argparse.Namespace) -> dict:
    """wrk on each endpoint, alternating the databases (fresh first in even rounds, big first in odd ones)."""
    runs: dict[str, dict[str, list[dict]]] = {mode: {"fresh": [], "big": []} for mode in ("subscribe", "provide")}
    for mode in runs:
        for name, port in ports.items():  # warm each server's workers and pool connections
            api_bench.run_wrk(port, mode, f"w{name[0]}{secrets.token_hex(2)}", args.connections, 2)
    for round_no in range(args.rounds):
        order = ("fresh", "big") if round_no % 2 == 0 else ("big", "fresh")
        for mode in runs:
            for name in order:
                prefix = f"r{round_no}{name[0]}{secrets.token_hex(2)}"
                runs[mode][name].append(api_bench.run_wrk(ports[name], mode, prefix, args.connections, args.duration))
    result = {}
    for mode, by_db in runs.items():
        fresh = sum(r["rps"] for r in by_db["fresh"]) / len(by_db["fresh"])
        big = sum(r["rps"] for r in by_db["big"]) / len(by_db["big"])
        result[mode] = {
            "fresh_rps": round(fresh, 1),
            "big_rps": round(big, 1),
            "ratio": round(big / fresh, 3),
            "fresh_p99_ms": max(r["p99_ms"] for r in by_db["fresh"]),
            "big_p99_ms": max(r["p99_ms"] for r in by_db["big"]),
            "rounds": {name: [r["rps"] for r in rs] for name, rs in by_db.items()},
            "non_2xx": {
                name: sum(n for r in rs for code, n in r["statuses"].items() if not code.startswith("2"))
                for name, rs in by_db.items()
            },
        }
    return result


# --- (b) the drain --------------------------------------------------------------------------------------------


def drain_on(url: str, name: str, args: argparse.Namespace, emu: EmulatorClient, token: str, logdir: Path, first: int) -> dict:
    users = [first + i for i in range(args.drain)]
    app = delivery_bench.make_app(url)
    delivery_bench.insert_customers(app, users)
    prefix = f"D{name[0].upper()}"
    queued = delivery_bench.queue_updates(app, users, prefix)
    for user in users:
        emu.create_user(user, f"Guest {user - first}", language_code="en")
    env = delivery_bench.bot_env(
        url, token, emu.base_url, TELEGRAM_GLOBAL_RATE="0", TELEGRAM_PER_CHAT_RATE="0", RETENTION_DAYS="0"
    )
    with ExitStack() as stack:
        before = emu.stats(delivery_bench.BOT)
        bot = delivery_bench.start_bot(stack, emu, env, logdir / f"bot-{name}.log")
        result = delivery_bench.drain(emu, bot, args.drain, prefix, 300, before)
    result["queue_seconds"] = round(queued, 1)
    return result


# --- (c) the purge ---------------------------------------------------------------------------------------------


def purge_slice(url: str, batch_size: int) -> dict:
    from config import Config
    from models import db
    from services import retention
    from webapp import create_app

    app = create_app(Config(DATABASE_URL=url, LOG_LEVEL="WARNING", API_TOKEN="bench"), web=False)
    with app.app_context():
        started = time.monotonic()
        dry = retention.purge(SLICE_DAYS, batch_size, dry_run=True)
        counted = time.monotonic() - started
        started = time.monotonic()
        done = retention.purge(SLICE_DAYS, batch_size)
        seconds = time.monotonic() - started
        db.engine.dispose()
    return {
        "days": SLICE_DAYS,
        "batch_size": batch_size,
        "dry_run_seconds": round(counted, 2),
        "would_delete": {k: v for k, v in dry.counts.items() if v},
        "deleted": {k: v for k, v in done.counts.items() if v},
        "rows": done.total,
        "batches": done.batches,
        "seconds": round(seconds, 1),
        "rows_per_second": round(done.total / seconds) if seconds > 0 else None,
        "counts_match": dry.counts == done.counts,
    }


# --- the run ---------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, logdir: Path) -> dict:
    result: dict = {}
    admin = admin_database_url()
    with ExitStack() as stack:
        fresh_url, version = stack.enter_context(postgres_database(admin, "bench_hist_fresh"))
        big_url, _ = stack.enter_context(postgres_database(admin, "bench_hist_big"))
        result["database"] = version
        urls = {"fresh": fresh_url, "big": big_url}
        for url in urls.values():
            migrate(url)
        print(f"{version}: generating {args.orders} orders and {4 * args.orders} sent outbox rows ...", flush=True)
        result["big"] = fill(big_url, args.orders)
        print(f"  {result['big']}", flush=True)

        print(f"(a) the API, alternately: {args.rounds} rounds x {args.duration:g} s per endpoint and database ...", flush=True)
        with ExitStack() as web:
            ports = {}
            for name, url in urls.items():
                env = api_bench.server_env(url, free_port())
                ports[name] = web.enter_context(gunicorn("wsgi:app", env, logdir / f"gunicorn-{name}.log"))
                api_bench.link_users(ports[name])
            result["api"] = api_rounds(ports, args)

        print(f"(b) draining {args.drain} updates on each database, limits off ...", flush=True)
        token = f"{7_300_000_000 + secrets.randbelow(10**6)}:{secrets.token_urlsafe(32)}"
        port = free_port()
        emu_env = {**os.environ, "TG_EMULATOR_BOTS": f"{delivery_bench.BOT}={token}", "PYTHONPATH": str(BASE)}
        stack.enter_context(
            child(
                "emulator",
                [PY, "-m", "devtools.tg_emulator", "--host", HOST, "--port", str(port)],
                emu_env,
                logdir / "emulator.log",
            )
        )
        emu = EmulatorClient(f"http://{HOST}:{port}")
        stack.callback(emu.close)
        emu.wait_ready(15)
        result["drain"] = {}
        for i, name in enumerate(("fresh", "big")):
            first = 7_100_000_001 + i * 1_000_000
            result["drain"][name] = drain_on(urls[name], name, args, emu, token, logdir, first)
        result["drain"]["ratio"] = round(
            result["drain"]["big"]["msgs_per_second"] / result["drain"]["fresh"]["msgs_per_second"], 3
        )

        print(f"(c) the retention job's purge of the orders older than {SLICE_DAYS} days ...", flush=True)
        result["purge"] = purge_slice(big_url, args.batch_size)
    return result


def print_table(r: dict) -> None:
    a, d, p = r["api"], r["drain"], r["purge"]
    print(f"\nbig database: {r['big']['orders']} orders, {r['big']['outbox_rows']} outbox rows, {r['big']['size']}")
    head = f"{'measure':<44}{'fresh':>12}{'big':>12}{'big/fresh':>11}  target"
    print(head)
    print("-" * (len(head) + 12))
    for mode, label in (("subscribe", "GET /subscribe-status, req/s"), ("provide", "POST /provide_message_to_user/, req/s")):
        m = a[mode]
        ok = "met" if m["ratio"] >= RATIO_TARGET else "MISSED"
        print(f"{label:<44}{m['fresh_rps']:>12.0f}{m['big_rps']:>12.0f}{m['ratio']:>11.2f}  >= {RATIO_TARGET} {ok}")
    ok = "met" if d["ratio"] >= RATIO_TARGET else "MISSED"
    print(
        f"{'delivery drain, limits off, msg/s':<44}{d['fresh']['msgs_per_second']:>12.0f}{d['big']['msgs_per_second']:>12.0f}"
        f"{d['ratio']:>11.2f}  >= {RATIO_TARGET} {ok}"
    )
    print(
        f"\npurge of the orders older than {p['days']} days: {p['rows']} rows in {p['seconds']} s "
        f"({p['rows_per_second']} rows/s, {p['batches']} transactions of <= {p['batch_size']} rows); "
        f"dry run {p['dry_run_seconds']} s, counts {'equal' if p['counts_match'] else 'DIFFER'}: {p['deleted']}"
    )
    for mode in ("subscribe", "provide"):
        print(f"{mode}: rounds {a[mode]['rounds']}, p99 fresh {a[mode]['fresh_p99_ms']} ms / big {a[mode]['big_p99_ms']} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 k orders, 2 rounds of 3 s, a drain of 300")
    parser.add_argument("--orders", type=int, help="orders in the big database (default 1 000 000; 4 outbox rows each)")
    parser.add_argument("--rounds", type=int, help="alternating rounds per endpoint (default 3)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 5)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--drain", type=int, help="updates drained per database (default 1000)")
    parser.add_argument("--batch-size", type=int, default=500, help="the purge's rows per transaction (RETENTION_BATCH_SIZE)")
    args = parser.parse_args()
    args.orders = args.orders or (100_000 if args.quick else 1_000_000)
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.duration = args.duration or (3.0 if args.quick else 5.0)
    args.drain = args.drain or (300 if args.quick else 1000)
    if shutil.which("wrk") is None:
        print("wrk is needed (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 2
    interrupt_on_signals()
    logdir = Path(tempfile.mkdtemp(prefix="bench-history-"))
    results: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": vars(args),
    }
    m = results["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, load {m['load_average_at_start']}; logs in {logdir}", flush=True)
    try:
        results.update(run(args, logdir))
    except KeyboardInterrupt:
        print("interrupted: every process started was stopped, every database dropped", file=sys.stderr)
        return 130
    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results: {RESULTS.relative_to(BASE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
