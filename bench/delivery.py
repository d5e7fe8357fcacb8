"""Benchmark of status delivery: run_bot.py against the Telegram emulator, on SQLite and PostgreSQL.

    python bench/delivery.py                       # N = 2000, both backends, about 6 minutes
    python bench/delivery.py --quick               # N = 300, about 1.5 minutes
    python bench/delivery.py --backend postgresql

For each backend: a fresh migrated database (on PostgreSQL one created for the run and dropped after it),
the emulator (`python -m devtools.tg_emulator --rate-limit`: 30 messages/s per bot, 1/s per chat) and
`run_bot.py` as separate processes, gunicorn for (c). N distinct linked customers are inserted directly
and their status updates queued through the service layer (`services.orders.record_status`) while the bot
is stopped: the bot is what is measured.

(a) drain with Telegram's limits on in the emulator and the bot's default settings: N updates for N chats,
    (N - 1) / (last arrival - first arrival) at the emulator, as a fraction of 30/s (target >= 0.9),
    and the 429s the emulator answered (target 0);
(c) then, same bot: `POST /provide_message_to_user/` through gunicorn at 20 updates/s (open loop) for
    20 s; latency from the POST returning to the emulator receiving the message (`received_at`; both
    clocks are this machine's), p50 and p99 (target p99 < DELIVERY_INTERVAL_SECONDS + 0.5 s);
(b) limits off in the emulator and in the bot (TELEGRAM_GLOBAL_RATE=0 TELEGRAM_PER_CHAT_RATE=0), a new
    bot process, N more updates: msgs/s (target >= 300);
(d) the bot process's peak RSS (VmHWM in /proc/<pid>/status) after (a) and after (b) (target < 150 MB).

Prints a table with the targets and writes bench/results/delivery.json. Everything listens on 127.0.0.1;
every wait is bounded; every process started is stopped by its pid, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    BASE,
    HOST,
    Child,
    admin_database_url,
    child,
    free_port,
    gunicorn,
    interrupt_on_signals,
    machine,
    migrate,
    percentile,
    postgres_database,
    sqlite_database,
)
from devtools.tg_emulator import EmulatorClient  # noqa: E402

RESULTS = BASE / "bench" / "results" / "delivery.json"
PY = sys.executable
BOT = "BenchDeliveryBot"
API_TOKEN = "bench-delivery-token"
HORECA = "bench-cafe"
FIRST_USER = 7_100_000_001  # 64-bit ids like real Telegram ones
LIMIT = 30.0  # Telegram's messages per second per bot, and the emulator's with --rate-limit
INTERVAL = 1.0  # DELIVERY_INTERVAL_SECONDS: the default, which the bot runs with here
TARGETS = {
    "fraction_of_limit": 0.9,
    "rate_limited_429": 0,
    "unlimited_rps": 300.0,
    "latency_p99_s": INTERVAL + 0.5,
    "peak_rss_mb": 150.0,
}
ORDER_IN_TEXT = re.compile(r"^(?:Order|Заказ) (\S+) ")


# --- setup -----------------------------------------------------------------------------------------


def make_app(url: str):  # noqa: ANN201
    from config import Config
    from webapp import create_app

    return create_app(Config(DATABASE_URL=url, LOG_LEVEL="WARNING", API_TOKEN=API_TOKEN), web=False)


def insert_customers(app, users: list[int]) -> None:  # noqa: ANN001
    """Linked customers, inserted in one transaction (linking is not what is measured)."""
    from sqlalchemy import insert

    from models import Customer, db, utcnow

    now = utcnow()
    with app.app_context():
        db.session.execute(
            insert(Customer),
            [
                {
                    "telegram_user_id": u,
                    "chat_id": u,
                    "first_name": f"Guest {i}",
                    "language_code": "en",
                    "linked_at": now,
                    "state_changed_at": now,
                    "created_at": now,
                    "is_blocked": False,
                    "is_deactivated": False,
                }
                for i, u in enumerate(users)
            ],
        )
        db.session.commit()


def queue_updates(app, users: list[int], prefix: str) -> float:  # noqa: ANN001
    """One new order (status created) per user through the service layer, 4 threads; returns the seconds it took."""
    from models import db
    from services import orders

    def push(chunk: list[int]) -> None:
        with app.app_context():
            for user in chunk:
                orders.record_status(user, HORECA, f"{prefix}-{user - FIRST_USER}", "created")
            db.session.remove()

    started = time.monotonic()
    chunks = [users[k::4] for k in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(push, chunks))
    with app.app_context():
        db.engine.dispose()  # no idle connections of ours while the bot runs
    return time.monotonic() - started


def wait(predicate, timeout: float, what: str, interval: float = 0.2, check=None):  # noqa: ANN001, ANN201
    """Poll `predicate` until truthy; RuntimeError after `timeout` seconds. `check()` may raise (a child died)."""
    deadline = time.monotonic() + timeout
    while True:
        if check is not None:
            check()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def bot_env(url: str, token: str, api_url: str, **overrides: str) -> dict[str, str]:
    """run_bot.py's environment: the production delivery settings unless overridden."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "HORECA_", "DELIVERY_", "BACKEND_WEBHOOK"))}
    env.update(
        DATABASE_URL=url,
        TELEGRAM_BOT_TOKEN=token,
        BOT_USERNAME=BOT,
        TELEGRAM_API_URL=api_url,
        LOG_LEVEL="WARNING",
        API_TOKEN=API_TOKEN,
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(BASE),
    )
    env.update(overrides)
    return env


def start_bot(stack: ExitStack, emu: EmulatorClient, env: dict[str, str], log: Path) -> Child:
    before = emu.stats(BOT)["get_updates_calls"]
    bot = stack.enter_context(child("run_bot.py", [PY, "run_bot.py"], env, log))
    wait(lambda: emu.stats(BOT)["get_updates_calls"] > before, 30, "run_bot.py to poll the emulator", 0.05, bot.check)
    return bot


# --- measurements ----------------------------------------------------------------------------------


def proc_status(pid: int) -> dict:
    """Peak and current RSS (MB) and CPU seconds of a process, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {
        "peak_rss_mb": round(int(fields["VmHWM"].split()[0]) / 1024, 1),
        "rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
        "cpu_seconds": round((int(stat[11]) + int(stat[12])) / ticks, 2),  # utime + stime
    }


def arrivals(emu: EmulatorClient, prefix: str) -> dict[str, float]:
    """order id → when the emulator received its message, for the orders of one phase."""
    found: dict[str, float] = {}
    for m in emu.messages(BOT):
        match = ORDER_IN_TEXT.match(m["plain_text"])
        if match and match.group(1).startswith(prefix + "-"):
            found[match.group(1)] = min(found.get(match.group(1), m["received_at"]), m["received_at"])
    return found


def drain(emu: EmulatorClient, bot: Child, n: int, prefix: str, expected_rate: float, before: dict) -> dict:
    """Wait until the N queued messages of `prefix` reached the emulator; the rate between first and last arrival.

    `before`: the emulator's stats from before the bot started (it starts sending before it first polls).
    """
    sent_before, limited_before = before["sent"], before["rate_limited_429"]
    cpu_before = proc_status(bot.pid)["cpu_seconds"]
    load = os.getloadavg()[0]
    wait(lambda: emu.stats(BOT)["sent"] >= sent_before + n, n / expected_rate * 3 + 60, f"{n} messages", 0.25, bot.check)
    usage = proc_status(bot.pid)
    stats = emu.stats(BOT)
    times = sorted(arrivals(emu, prefix).values())
    seconds = times[-1] - times[0]
    rate = (len(times) - 1) / seconds if seconds > 0 else float("inf")
    return {
        "n": n,
        "delivered": len(times),
        "duplicates": stats["sent"] - sent_before - len(times),
        "drain_seconds": round(seconds, 2),
        "msgs_per_second": round(rate, 1),
        "rate_limited_429": stats["rate_limited_429"] - limited_before,
        "bot_cpu_seconds": round(usage["cpu_seconds"] - cpu_before, 2),
        "bot_cpu_share": round((usage["cpu_seconds"] - cpu_before) / seconds, 2) if seconds > 0 else None,
        "load_average_1m_before": round(load, 2),
        **{k: usage[k] for k in ("peak_rss_mb", "rss_mb")},
    }


def latency(port: int, emu: EmulatorClient, bot: Child, users: list[int], rate: float, duration: float) -> dict:
    """Open loop: update i is POSTed at start + i/rate; latency = emulator's received_at - when the POST returned."""
    total = int(rate * duration)
    senders = 4
    returned: dict[str, float] = {}
    lag: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    stats = emu.stats(BOT)
    sent_before, limited_before = stats["sent"], stats["rate_limited_429"]
    start = time.perf_counter() + 0.2

    def sender(first: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        for i in range(first, total, senders):
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            late = time.perf_counter() - due
            order_id = f"C-{i}"
            body = {"user_id": users[i % len(users)], "horeca_id": HORECA, "order_id": order_id, "status": "created"}
            try:
                conn.request("POST", "/provide_message_to_user/", body=json.dumps(body), headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                status = type(exc).__name__
            now = time.time()
            with lock:
                lag.append(late)
                if status in (200, 202):
                    returned[order_id] = now
                else:
                    errors.append(str(status))
        conn.close()

    threads = [threading.Thread(target=sender, args=(k,), daemon=True) for k in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 60)
    wait(lambda: emu.stats(BOT)["sent"] >= sent_before + len(returned), 60, "the latency run's messages", 0.25, bot.check)
    got = arrivals(emu, "C")
    values = [got[o] - t for o, t in returned.items() if o in got]
    return {
        "rate": rate,
        "duration_s": duration,
        "posted": len(returned),
        "post_errors": errors[:10],
        "delivered": len(values),
        "p50_s": round(percentile(values, 50), 3),
        "p90_s": round(percentile(values, 90), 3),
        "p99_s": round(percentile(values, 99), 3),
        "max_s": round(max(values), 3),
        "send_lag_p99_ms": round(percentile(lag, 99) * 1000, 1),
        "rate_limited_429": emu.stats(BOT)["rate_limited_429"] - limited_before,
    }


# --- one backend -----------------------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace, logdir: Path) -> dict:
    users = [FIRST_USER + i for i in range(args.n)]
    token = f"{7_300_000_000 + secrets.randbelow(10**6)}:{secrets.token_urlsafe(32)}"
    result: dict = {"backend": backend}
    with ExitStack() as stack:
        url, version = stack.enter_context(
            sqlite_database(logdir) if backend == "sqlite" else postgres_database(admin_database_url(), "bench_delivery")
        )
        result["database"] = version
        print(f"[{backend}] {version}: migrating, {args.n} customers, {args.n} updates queued ...", flush=True)
        migrate(url)
        app = make_app(url)
        insert_customers(app, users)
        result["queue_seconds_a"] = round(queue_updates(app, users, "A"), 1)

        port = free_port()
        emu_env = {**os.environ, "TG_EMULATOR_BOTS": f"{BOT}={token}", "PYTHONPATH": str(BASE)}
        stack.enter_context(
            child(
                "emulator",
                [PY, "-m", "devtools.tg_emulator", "--host", HOST, "--port", str(port), "--rate-limit"],
                emu_env,
                logdir / f"{backend}-emulator.log",
            )
        )
        emu = EmulatorClient(f"http://{HOST}:{port}")
        stack.callback(emu.close)
        emu.wait_ready(15)
        for user in users:
            emu.create_user(user, f"Guest {user - FIRST_USER}", language_code="en")

        # (a) Telegram's limits on both sides, the production settings.
        print(f"[{backend}] (a) draining {args.n} with the limits on (about {args.n / LIMIT / 0.95:.0f} s) ...", flush=True)
        with ExitStack() as bot_stack:
            before = emu.stats(BOT)
            bot = start_bot(bot_stack, emu, bot_env(url, token, emu.base_url), logdir / f"{backend}-bot-a.log")
            result["a"] = drain(emu, bot, args.n, "A", LIMIT, before)
            result["a"]["fraction_of_limit"] = round(result["a"]["msgs_per_second"] / LIMIT, 3)
            # (c) the same bot, updates through the API as the backend sends them.
            print(f"[{backend}] (c) {args.rate:g} updates/s through gunicorn for {args.duration:g} s ...", flush=True)
            web_env = {
                **os.environ,
                "DATABASE_URL": url,
                "GUNICORN_BIND": f"{HOST}:{free_port()}",
                "GUNICORN_ACCESS_LOG": "",
                "LOG_LEVEL": "WARNING",
                "API_TOKEN": API_TOKEN,
                "BOT_USERNAME": BOT,
                "DEV_MODE": "",
            }
            with gunicorn("wsgi:app", web_env, logdir / f"{backend}-gunicorn.log") as web_port:
                result["c"] = latency(web_port, emu, bot, users, args.rate, args.duration)
            result["c"]["bot"] = proc_status(bot.pid)

        # (b) no limits anywhere: how fast our side can go.
        emu.limits(enabled=False)
        result["queue_seconds_b"] = round(queue_updates(app, users, "B"), 1)
        print(f"[{backend}] (b) draining {args.n} with the limits off ...", flush=True)
        with ExitStack() as bot_stack:
            env = bot_env(url, token, emu.base_url, TELEGRAM_GLOBAL_RATE="0", TELEGRAM_PER_CHAT_RATE="0")
            before = emu.stats(BOT)
            bot = start_bot(bot_stack, emu, env, logdir / f"{backend}-bot-b.log")
            result["b"] = drain(emu, bot, args.n, "B", 300, before)
        result["peak_rss_mb"] = max(result["a"]["peak_rss_mb"], result["b"]["peak_rss_mb"], result["c"]["bot"]["peak_rss_mb"])
    return result


# --- report ----------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def rows(r: dict) -> list[tuple[str, str, str, str]]:
    a, b, c = r["a"], r["b"], r["c"]
    t = TARGETS
    return [
        (
            "(a) drain, limits on",
            f"{a['msgs_per_second']:.1f} msg/s = {a['fraction_of_limit']:.2f} of 30",
            f">= {t['fraction_of_limit']} of 30",
            verdict(a["fraction_of_limit"] >= t["fraction_of_limit"]),
        ),
        ("(a) 429s provoked", f"{a['rate_limited_429']}", "0", verdict(a["rate_limited_429"] == 0)),
        (
            "(b) drain, limits off",
            f"{b['msgs_per_second']:.0f} msg/s",
            f">= {t['unlimited_rps']:.0f}",
            verdict(b["msgs_per_second"] >= t["unlimited_rps"]),
        ),
        (
            f"(c) latency at {c['rate']:g}/s, p50 / p99",
            f"{c['p50_s']:.2f} / {c['p99_s']:.2f} s",
            f"p99 < {t['latency_p99_s']:g} s",
            verdict(c["p99_s"] < t["latency_p99_s"] and c["delivered"] == c["posted"]),
        ),
        (
            "(d) bot peak RSS, (a)+(c) / (b)",
            f"{c['bot']['peak_rss_mb']:.0f} / {b['peak_rss_mb']:.0f} MB",
            f"< {t['peak_rss_mb']:.0f} MB",
            verdict(r["peak_rss_mb"] < t["peak_rss_mb"]),
        ),
    ]


def print_table(runs: list[dict]) -> None:
    head = f"{'backend':<12}{'measure':<34}{'figure':<28}{'target':<18}"
    print("\n" + head + "result")
    print("-" * (len(head) + 6))
    for r in runs:
        for measure, figure, target, ok in rows(r):
            print(f"{r['backend']:<12}{measure:<34}{figure:<28}{target:<18}{ok}")
    print()
    for r in runs:
        a, b, c = r["a"], r["b"], r["c"]
        print(
            f"{r['backend']}: (a) {a['delivered']}/{a['n']} in {a['drain_seconds']} s, bot CPU {a['bot_cpu_share']:.0%}; "
            f"(b) {b['delivered']}/{b['n']} in {b['drain_seconds']} s, bot CPU {b['bot_cpu_share']:.0%}, "
            f"{b['rate_limited_429']} x 429; (c) {c['delivered']}/{c['posted']} delivered, max {c['max_s']} s, "
            f"{c['rate_limited_429']} x 429, sender lag p99 {c['send_lag_p99_ms']} ms"
        )
        for phase in ("a", "b"):
            if r[phase]["duplicates"] or r[phase]["delivered"] != r[phase]["n"]:
                print(
                    f"warning: {r['backend']} ({phase}): {r[phase]['delivered']} of {r[phase]['n']} delivered, "
                    f"{r[phase]['duplicates']} duplicates",
                    file=sys.stderr,
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 300 and a 10 s latency run")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--n", type=int, help="updates (and users) per drain (default 2000, 300 with --quick)")
    parser.add_argument("--rate", type=float, default=20.0, help="updates/s of the latency run")
    parser.add_argument("--duration", type=float, help="seconds of the latency run (default 20, 10 with --quick)")
    args = parser.parse_args()
    args.n = args.n or (300 if args.quick else 2000)
    args.duration = args.duration or (10.0 if args.quick else 20.0)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    interrupt_on_signals()

    logdir = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    results: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "n": args.n,
            "rate": args.rate,
            "duration": args.duration,
            "quick": args.quick,
            "delivery_interval_seconds": INTERVAL,
        },
        "targets": TARGETS,
        "runs": [],
    }
    m = results["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, load {m['load_average_at_start']}; logs in {logdir}", flush=True)
    try:
        for backend in backends:
            results["runs"].append(run_backend(backend, args, logdir))
    except KeyboardInterrupt:
        print("interrupted: every process started was stopped", file=sys.stderr)
        return 130
    print_table(results["runs"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {RESULTS.relative_to(BASE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
