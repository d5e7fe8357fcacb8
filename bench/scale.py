"""Benchmark of several bot processes on one PostgreSQL (issue 10): one poller, one send budget per bot.

    python bench/scale.py             # N = 2000, about 7 minutes
    python bench/scale.py --quick     # N = 600, about 3 minutes

A fresh migrated PostgreSQL database created for the run (dropped after it), the emulator
(`python -m devtools.tg_emulator --rate-limit`: 30 messages/s per bot, 1/s per chat, 409 for concurrent
getUpdates) and K `run_bot.py` processes with the same environment. For each phase N distinct linked
customers get one status update each, queued through the service layer once all K processes run:

(a) limits on in the emulator, the bot's default settings, K = 1, 2, 3: msg/s between the first and the
    last arrival as a fraction of 30 (target >= 0.9 for every K), 429s the emulator answered (target 0),
    getUpdates 409 conflicts after start-up (target 0);
(b) limits off in the emulator and in the bot (TELEGRAM_GLOBAL_RATE=0 TELEGRAM_PER_CHAT_RATE=0), K = 1, 2, 3,
    and K = 1 with SHARED_SEND_BUDGET=0 (each process its own limiter, no round trip for slots): the cost
    of the shared budget is (b) K=1 against that;
(c) limits on, K = 3, CLAIM_TIMEOUT_SECONDS=10: kill -9 of the process that polls once a third of the N
    arrived; seconds until another process calls getUpdates (target < 10), messages lost (target 0), and
    duplicates (target: no more than the rows the killed process had claimed, "in flight").

Prints a table and writes bench/results/scale.json. Everything listens on 127.0.0.1; every wait is bounded;
every process started is stopped by its pid, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import tempfile
import time
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
    interrupt_on_signals,
    machine,
    migrate,
    postgres_database,
)
from bench.delivery import (  # noqa: E402
    BOT,
    FIRST_USER,
    PY,
    arrivals,
    bot_env,
    insert_customers,
    make_app,
    proc_status,
    queue_updates,
    wait,
)
from devtools.tg_emulator import EmulatorClient  # noqa: E402

RESULTS = BASE / "bench" / "results" / "scale.json"
LIMIT = 30.0
KS = (1, 2, 3)
TARGETS = {"fraction_of_limit": 0.9, "rate_limited_429": 0, "conflicts_409": 0, "takeover_s": 10.0, "lost": 0}


def conflicts(emu: EmulatorClient) -> int:
    return int(emu.stats(BOT)["errors"].get("409", 0))


def start_bots(stack: ExitStack, emu: EmulatorClient, k: int, env: dict[str, str], logdir: Path, tag: str) -> list[Child]:
    """K run_bot.py processes, running once each asked getMe and one of them polls."""
    before_me = emu.stats(BOT)["calls"].get("getMe", 0)
    before_polls = emu.stats(BOT)["get_updates_calls"]
    bots = [
        stack.enter_context(child(f"run_bot.py {i}", [PY, "run_bot.py"], env, logdir / f"bot-{tag}-{i}.log")) for i in range(k)
    ]

    def check() -> None:
        for b in bots:
            b.check()

    wait(lambda: emu.stats(BOT)["calls"].get("getMe", 0) >= before_me + k, 60, f"{k} bot processes to start", 0.1, check)
    wait(lambda: emu.stats(BOT)["get_updates_calls"] > before_polls, 30, "one of them to poll", 0.1, check)
    time.sleep(1.0)  # every process's scheduler is running
    return bots


def drain(app, emu: EmulatorClient, bots: list[Child], users: list[int], prefix: str, expected_rate: float) -> dict:  # noqa: ANN001
    """Queue one update per user with all processes running; wait for all; rate between first and last arrival."""
    before = emu.stats(BOT)
    conflicts_before = conflicts(emu)
    cpu_before = sum(proc_status(b.pid)["cpu_seconds"] for b in bots)
    queue_updates(app, users, prefix)
    n = len(users)

    def check() -> None:
        for b in bots:
            b.check()

    wait(lambda: emu.stats(BOT)["sent"] >= before["sent"] + n, n / expected_rate * 3 + 60, f"{n} messages", 0.25, check)
    wait(lambda: len(arrivals(emu, prefix)) >= n, 60, f"{n} distinct messages", 1.0, check)
    time.sleep(0.5)  # a late duplicate would show
    stats = emu.stats(BOT)
    times = sorted(arrivals(emu, prefix).values())
    seconds = times[-1] - times[0]
    rate = (len(times) - 1) / seconds if seconds > 0 else float("inf")
    cpu = sum(proc_status(b.pid)["cpu_seconds"] for b in bots) - cpu_before
    return {
        "n": n,
        "delivered": len(times),
        "duplicates": stats["sent"] - before["sent"] - len(times),
        "drain_seconds": round(seconds, 2),
        "msgs_per_second": round(rate, 1),
        "fraction_of_limit": round(rate / LIMIT, 3),
        "rate_limited_429": stats["rate_limited_429"] - before["rate_limited_429"],
        "conflicts_409": conflicts(emu) - conflicts_before,
        "bots_cpu_seconds": round(cpu, 2),
        "bots_cpu_share": round(cpu / seconds, 2) if seconds > 0 else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def poller_of(app) -> str | None:  # noqa: ANN001
    """hostname:pid of the process polling the customer bot, from its heartbeat row."""
    from sqlalchemy import select

    from models import BotHeartbeat, db

    with app.app_context():
        value = db.session.scalar(select(BotHeartbeat.poller).where(BotHeartbeat.name == "customer"))
        db.session.remove()
        return value


def claimed_by(app, worker: str) -> int:  # noqa: ANN001
    from sqlalchemy import func, select

    from models import OutboxMessage, OutboxState, db

    with app.app_context():
        count = db.session.scalar(
            select(func.count()).where(OutboxMessage.state == OutboxState.SENDING, OutboxMessage.claimed_by == worker)
        )
        db.session.remove()
        return int(count or 0)


def kill_the_poller(app, emu: EmulatorClient, bots: list[Child], users: list[int], prefix: str) -> dict:  # noqa: ANN001
    """Queue N, kill -9 the poller once a third arrived; takeover time, lost, duplicates, in flight."""
    before = emu.stats(BOT)
    queue_updates(app, users, prefix)
    n = len(users)
    wait(lambda: emu.stats(BOT)["sent"] >= before["sent"] + n // 3, n / LIMIT * 3 + 60, "a third of the messages", 0.1)
    poller = poller_of(app)
    victim = next(b for b in bots if poller and poller.endswith(f":{b.pid}"))
    os.kill(victim.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    victim.popen.wait()
    polls_before = emu.stats(BOT)["get_updates_calls"]  # the killed process asks no more
    in_flight = claimed_by(app, poller or "")
    wait(lambda: emu.stats(BOT)["get_updates_calls"] > polls_before, 30, "another process to poll", 0.05)
    takeover = time.monotonic() - killed_at
    survivors = [b for b in bots if b is not victim]

    def check() -> None:
        for b in survivors:
            b.check()

    wait(lambda: emu.stats(BOT)["sent"] >= before["sent"] + n, n / LIMIT * 3 + 90, f"{n} messages after the kill", 0.5, check)
    wait(lambda: len(arrivals(emu, prefix)) >= n, 30, f"{n} distinct messages after the kill", 1.0, check)
    time.sleep(1.0)
    stats = emu.stats(BOT)
    got = arrivals(emu, prefix)
    return {
        "n": n,
        "delivered": len(got),
        "lost": n - len(got),
        "duplicates": stats["sent"] - before["sent"] - len(got),
        "in_flight_at_kill": in_flight,
        "takeover_seconds": round(takeover, 2),
        "new_poller": poller_of(app),
        "rate_limited_429": stats["rate_limited_429"] - before["rate_limited_429"],
    }


def run(args: argparse.Namespace, logdir: Path) -> dict:
    result: dict = {}
    token = f"{7_300_000_000 + secrets.randbelow(10**6)}:{secrets.token_urlsafe(32)}"
    with ExitStack() as stack:
        url, version = stack.enter_context(postgres_database(admin_database_url(), "bench_scale"))
        result["database"] = version
        users = [FIRST_USER + i for i in range(args.n)]
        print(f"{version}: migrating, {args.n} customers ...", flush=True)
        migrate(url)
        app = make_app(url)
        insert_customers(app, users)

        port = free_port()
        emu_env = {**os.environ, "TG_EMULATOR_BOTS": f"{BOT}={token}", "PYTHONPATH": str(BASE)}
        args_emu = [PY, "-m", "devtools.tg_emulator", "--host", HOST, "--port", str(port), "--rate-limit"]
        stack.enter_context(child("emulator", args_emu, emu_env, logdir / "emulator.log"))
        emu = EmulatorClient(f"http://{HOST}:{port}")
        stack.callback(emu.close)
        emu.wait_ready(15)
        for user in users:
            emu.create_user(user, f"Guest {user - FIRST_USER}", language_code="en")

        env = bot_env(url, token, emu.base_url)
        for k in KS:
            print(f"(a) K={k}: draining {args.n} with the limits on (about {args.n / LIMIT / 0.95:.0f} s) ...", flush=True)
            with ExitStack() as bots_stack:
                bots = start_bots(bots_stack, emu, k, env, logdir, f"a{k}")
                result[f"a{k}"] = drain(app, emu, bots, users, f"A{k}", LIMIT)

        print(f"(c) K=3: kill -9 of the poller while draining {args.n} ...", flush=True)
        with ExitStack() as bots_stack:
            bots = start_bots(bots_stack, emu, 3, {**env, "CLAIM_TIMEOUT_SECONDS": "10"}, logdir, "c")
            result["c"] = kill_the_poller(app, emu, bots, users, "C")

        emu.limits(enabled=False)
        off = {"TELEGRAM_GLOBAL_RATE": "0", "TELEGRAM_PER_CHAT_RATE": "0"}
        phases = [("b1_own", 1, {**off, "SHARED_SEND_BUDGET": "0"})] + [(f"b{k}", k, off) for k in KS]
        for name, k, extra in phases:
            print(f"(b) {name}: draining {args.n} with the limits off ...", flush=True)
            with ExitStack() as bots_stack:
                bots = start_bots(bots_stack, emu, k, {**env, **extra}, logdir, name)
                result[name] = drain(app, emu, bots, users, name.upper(), 300)
    return result


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_table(r: dict) -> None:
    t = TARGETS
    lines: list[tuple[str, str, str, str]] = []
    for k in KS:
        a = r[f"a{k}"]
        lines.append(
            (
                f"(a) K={k} limits on",
                f"{a['msgs_per_second']:.1f} msg/s = {a['fraction_of_limit']:.2f} of 30",
                f">= {t['fraction_of_limit']} of 30",
                verdict(a["fraction_of_limit"] >= t["fraction_of_limit"]),
            )
        )
        lines.append(
            (
                f"(a) K={k} 429s / 409s",
                f"{a['rate_limited_429']} / {a['conflicts_409']}",
                "0 / 0",
                verdict(a["rate_limited_429"] == 0 and a["conflicts_409"] == 0),
            )
        )
    own = r["b1_own"]
    lines.append(("(b) K=1 limits off, own limiter", f"{own['msgs_per_second']:.0f} msg/s", "baseline", ""))
    for k in KS:
        b = r[f"b{k}"]
        lines.append(
            (
                f"(b) K={k} limits off, shared",
                f"{b['msgs_per_second']:.0f} msg/s ({b['msgs_per_second'] / own['msgs_per_second']:.2f})",
                "figure",
                "",
            )
        )
    c = r["c"]
    lines.append(
        (
            "(c) kill -9: takeover",
            f"{c['takeover_seconds']:.1f} s",
            f"< {t['takeover_s']:.0f} s",
            verdict(c["takeover_seconds"] < t["takeover_s"]),
        )
    )
    lines.append(("(c) lost", f"{c['lost']}", "0", verdict(c["lost"] == 0)))
    lines.append(
        (
            "(c) duplicates / in flight",
            f"{c['duplicates']} / {c['in_flight_at_kill']}",
            "dup <= in flight",
            verdict(c["duplicates"] <= c["in_flight_at_kill"]),
        )
    )
    head = f"{'measure':<36}{'figure':<30}{'target':<20}"
    print("\n" + head + "result")
    print("-" * (len(head) + 6))
    for measure, figure, target, ok in lines:
        print(f"{measure:<36}{figure:<30}{target:<20}{ok}")
    print()
    for name in [f"a{k}" for k in KS] + ["b1_own"] + [f"b{k}" for k in KS]:
        p = r[name]
        print(
            f"{name}: {p['delivered']}/{p['n']} in {p['drain_seconds']} s, {p['duplicates']} duplicates, "
            f"bots' CPU {p['bots_cpu_share']:.0%} of one core, load {p['load_average_1m']}"
        )
    print(f"c: {c['delivered']}/{c['n']} delivered, {c['rate_limited_429']} x 429, new poller {c['new_poller']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 600")
    parser.add_argument("--n", type=int, help="updates (and users) per phase (default 2000, 600 with --quick)")
    args = parser.parse_args()
    args.n = args.n or (600 if args.quick else 2000)
    interrupt_on_signals()
    logdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    results: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {"n": args.n, "quick": args.quick},
        "targets": TARGETS,
    }
    m = results["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, load {m['load_average_at_start']}; logs in {logdir}", flush=True)
    try:
        results["run"] = run(args, logdir)
    except KeyboardInterrupt:
        print("interrupted: every process started was stopped", file=sys.stderr)
        return 130
    print_table(results["run"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {RESULTS.relative_to(BASE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
