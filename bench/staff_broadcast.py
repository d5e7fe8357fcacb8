"""Benchmark: one staff message to N selected customers, against the emulator with Telegram's rate limits on.

    python bench/staff_broadcast.py            # N = 200, SQLite
    python bench/staff_broadcast.py --n 500 --postgres
    python bench/staff_broadcast.py --photo    # one photo (with the text as its caption) to the 200

Starts the Telegram emulator (`--rate-limit`: 30 messages/s per bot, 1/s per chat, as Telegram) with the
customer bot and the staff bot, migrates a fresh database, links N customers with an order each, and starts
`run_bot.py` with both tokens and its production delivery settings. A barista joins by a staff code,
opens the cabinet, presses "Select all", "Write to selected (N)" and sends one text — every step through
the emulator, as in Telegram. Measured:

- drain rate: (N - 1) / (arrival of the last customer message - arrival of the first), at the emulator,
  as a fraction of the 30 messages/s limit (target >= 0.9) and the 429s provoked (target 0);
- end to end: from the barista's text reaching the emulator to the last customer message, and to the
  delivery summary in the barista's chat.

With `--photo` the barista sends a photo with the text as its caption: the staff bot received it, so the
customer bot must download it (getFile) and upload it; also measured, at the emulator: uploads through the
customer bot (target 1: later sends reuse the file_id) and downloads through the staff bot.

Prints the figures and writes bench/results/staff_broadcast.json (staff_broadcast_photo.json with --photo).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE))

from bench.common import admin_database_url, free_port, postgres_database  # noqa: E402
from devtools.tg_emulator import EmulatorClient  # noqa: E402

RESULTS = BASE / "bench" / "results" / "staff_broadcast.json"
PY = sys.executable
LIMIT = 30.0  # messages per second per bot: Telegram's, and the emulator's with --rate-limit
TARGET = 0.9
CUSTOMER_BOT, STAFF_BOT = "BenchCafeBot", "BenchCafeStaffBot"
BARISTA = 6_000_000_001
FIRST_CUSTOMER = 7_000_000_001
TEXT = "The coffee machine is down, ten more minutes. Sorry!"
PHOTO = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 200  # 51 KB: what the barista attaches with --photo


def token(bot_id: int) -> str:
    return f"{bot_id}:{secrets.token_urlsafe(32)}"


def wait(predicate, timeout: float, what: str, interval: float = 0.05):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def seed(url: str, n: int) -> str:
    """Migrate, link N customers with an order at cafe-1 (their status messages count as delivered), issue a staff code."""
    from flask_migrate import upgrade
    from sqlalchemy import update

    from config import Config
    from models import OutboxMessage, db
    from services import linking, orders, staff
    from services.customers import Profile
    from webapp import create_app

    app = create_app(Config(DATABASE_URL=url, LOG_LEVEL="WARNING"), web=False)
    with app.app_context():
        upgrade()
        for i in range(n):
            user_id = FIRST_CUSTOMER + i
            code = linking.issue().code
            linking.claim(code, user_id, chat_id=user_id, profile=Profile(first_name=f"Guest {i + 1:03d}", language_code="en"))
            orders.record_status(user_id, "cafe-1", f"B-{i + 1:03d}", "preparing")
        # The status messages were delivered long ago: only the broadcast is measured.
        db.session.execute(update(OutboxMessage).values(state="sent"))
        db.session.commit()
        code = staff.issue_code("cafe-1", "Bench Beans").code
        db.engine.dispose()
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="selected customers (default 200)")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL (TEST_DATABASE_URL) instead of SQLite")
    parser.add_argument("--photo", action="store_true", help="a photo with the text as its caption instead of the text")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-staff-"))
    databases = ExitStack()  # a PostgreSQL database of the run's own, dropped at the end
    if args.postgres:
        url, _ = databases.enter_context(postgres_database(admin_database_url(), "bench_staff"))
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    procs: list[subprocess.Popen] = []
    try:
        code = seed(url, args.n)
        customer_token, staff_token = token(7_200_000_001), token(7_200_000_002)
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(BASE),
            "PYTHONUNBUFFERED": "1",
            "TG_EMULATOR_BOTS": f"{CUSTOMER_BOT}={customer_token},{STAFF_BOT}={staff_token}",
        }
        procs.append(subprocess.Popen([PY, "-m", "devtools.tg_emulator", "--port", str(port), "--rate-limit"], cwd=BASE, env=env))
        emu = EmulatorClient(f"http://127.0.0.1:{port}")
        emu.wait_ready(15)
        for i in range(args.n):
            emu.create_user(FIRST_CUSTOMER + i, f"Guest {i + 1:03d}", language_code="en")
        emu.create_user(BARISTA, "Olga", language_code="en")

        bot_env = {k: v for k, v in env.items() if not k.startswith(("TELEGRAM_", "HORECA_", "DELIVERY_"))}
        bot_env.update(
            DATABASE_URL=url,
            TELEGRAM_BOT_TOKEN=customer_token,
            BOT_USERNAME=CUSTOMER_BOT,
            HORECA_BOT_TOKEN=staff_token,
            HORECA_BOT_USERNAME=STAFF_BOT,
            TELEGRAM_API_URL=emu.base_url,
            LOG_LEVEL="WARNING",
        )
        log = open(tmp / "run_bot.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen([PY, "run_bot.py"], cwd=BASE, env=bot_env, stdout=log, stderr=subprocess.STDOUT))
        wait(lambda: emu.stats(STAFF_BOT)["get_updates_calls"] > 0, 30, "the staff bot to poll")

        def say(text: str, count: int = 1) -> list[dict]:
            since = max((m["message_id"] for m in emu.chat(STAFF_BOT, BARISTA)), default=0)
            emu.send(STAFF_BOT, BARISTA, text)
            return emu.wait_for_messages(STAFF_BOT, BARISTA, count, timeout=20, since_message_id=since)

        def press(message: dict, starts: str) -> None:
            current = next(m for m in emu.messages(STAFF_BOT, BARISTA) if m["message_id"] == message["message_id"])
            data = next(d for t, d in EmulatorClient.buttons(current) if t.startswith(starts))
            query = emu.press(STAFF_BOT, BARISTA, message["message_id"], callback_data=data)["callback_query_id"]
            wait(lambda: emu.callback_answers(STAFF_BOT, query), 20, f"an answer to {starts!r}")

        _, cabinet = say(f"/start {code}", 2)
        press(cabinet, "Select all")
        press(cabinet, f"✏️ Write to selected ({args.n})")
        wait(lambda: "Write your message" in emu.messages(STAFF_BOT, BARISTA)[-1]["plain_text"], 20, "the prompt")
        before_429 = emu.stats(CUSTOMER_BOT)["rate_limited_429"]
        if args.photo:
            sent_at = emu.send_media(STAFF_BOT, BARISTA, "photo", PHOTO, caption=TEXT)
        else:
            sent_at = emu.send(STAFF_BOT, BARISTA, TEXT)
        sent_clock = next(m for m in emu.chat(STAFF_BOT, BARISTA) if m["message_id"] == sent_at["message_id"])["received_at"]

        def broadcast() -> list[dict]:
            kind = "photo" if args.photo else None
            return [
                m for m in emu.messages(CUSTOMER_BOT) if TEXT in m["plain_text"] and (m.get("media") or {}).get("type") == kind
            ]

        got = wait(lambda: (lambda ms: ms if len(ms) >= args.n else None)(broadcast()), args.n / LIMIT * 4 + 30, "the broadcast")
        summary = wait(
            lambda: next((m for m in emu.messages(STAFF_BOT, BARISTA) if "Delivered" in m["plain_text"]), None),
            30,
            "the delivery summary",
        )
        arrivals = sorted(m["received_at"] for m in got)
        rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
        result = {
            "n": args.n,
            "backend": "postgresql" if args.postgres else "sqlite",
            "drain_seconds": round(arrivals[-1] - arrivals[0], 3),
            "rate_per_second": round(rate, 2),
            "fraction_of_limit": round(rate / LIMIT, 3),
            "target_fraction": TARGET,
            "rate_limited_429": emu.stats(CUSTOMER_BOT)["rate_limited_429"] - before_429,
            "text_to_first_delivery_seconds": round(arrivals[0] - sent_clock, 3),
            "text_to_last_delivery_seconds": round(arrivals[-1] - sent_clock, 3),
            "text_to_summary_seconds": round(next(m["received_at"] for m in [summary]) - sent_clock, 3),
            "summary": summary["plain_text"],
            "duplicates": len(got) - len({m["chat_id"] for m in got}),
        }
        if args.photo:
            result["case"] = "photo"
            result["uploads_customer_bot"] = emu.stats(CUSTOMER_BOT)["uploads"]
            result["downloads_staff_bot"] = emu.stats(STAFF_BOT)["downloads"]
            result["photo_bytes_ok"] = all(emu.file_bytes(m["media"]["file_unique_id"]) == PHOTO for m in got[:3])
        ok = result["fraction_of_limit"] >= TARGET and result["rate_limited_429"] == 0 and result["duplicates"] == 0
        if args.photo:
            ok = ok and result["uploads_customer_bot"] == 1 and result["photo_bytes_ok"]
        result["ok"] = ok
        results = RESULTS.with_name("staff_broadcast_photo.json") if args.photo else RESULTS
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        if args.photo:
            print(f"\nphoto: {result['uploads_customer_bot']} upload(s) through the customer bot (target 1)", end="")
        print(
            f"\n{args.n} customers: {result['rate_per_second']} msg/s = {result['fraction_of_limit']:.2f} of {LIMIT:.0f}/s "
            f"(target >= {TARGET}), {result['rate_limited_429']} x 429, summary {result['text_to_summary_seconds']} s after "
            f"the text: {'OK' if ok else 'BELOW TARGET'}"
        )
        return 0 if ok else 1
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        databases.close()


if __name__ == "__main__":
    sys.exit(main())
