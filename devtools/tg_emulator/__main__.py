"""CLI: python -m devtools.tg_emulator --host 127.0.0.1 --port 8081 [--bot USERNAME=TOKEN ...] [--rate-limit]."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any

from .core import TOKEN_RE
from .server import EmulatorServer, mask_path


def _parse_bots(entries: list[str]) -> dict[str, str]:
    bots: dict[str, str] = {}
    for entry in entries:
        username, sep, token = entry.partition("=")
        username = username.strip().lstrip("@")
        token = token.strip()
        if not sep or not username or not TOKEN_RE.match(token):
            # Never echo the entry: it contains the (possibly real) token.
            raise ValueError(f"invalid bot spec for {username or '?'!r}: expected USERNAME=<digits>:<secret>")
        bots[username] = token
    return bots


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the CLI."""
    p = argparse.ArgumentParser(prog="python -m devtools.tg_emulator", description="Telegram Bot API emulator")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1; the control API has no auth)")
    p.add_argument("--port", type=int, default=8081, help="port (0 = pick a free one; the chosen one is printed)")
    p.add_argument(
        "--bot",
        action="append",
        default=[],
        metavar="USERNAME=TOKEN",
        help="configure a bot username (repeatable); TG_EMULATOR_BOTS='u1=t1,u2=t2' keeps tokens out of `ps`",
    )
    p.add_argument("--rate-limit", action="store_true", help="enable Telegram-like rate limits (off by default)")
    p.add_argument("--global-per-second", type=int, default=30, help="per-bot messages per second (default 30)")
    p.add_argument("--per-chat-per-second", type=int, default=1, help="per-chat sustained rate (default 1)")
    p.add_argument("--per-chat-burst", type=int, default=3, help="per-chat burst allowance (default 3)")
    p.add_argument("--count-edits", action="store_true", help="edits count toward the per-bot global limit")
    p.add_argument("--callback-ttl", type=float, default=15.0, help="seconds a callback query can be answered")
    p.add_argument("--log-level", default=os.environ.get("TG_EMULATOR_LOG_LEVEL", "WARNING"))
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until SIGTERM/SIGINT."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    env_bots = [e for e in os.environ.get("TG_EMULATOR_BOTS", "").split(",") if e.strip()]
    try:
        bots = _parse_bots(env_bots + args.bot)
    except ValueError as e:
        print(f"tg-emulator: {mask_path(str(e))}", file=sys.stderr)
        return 2
    server = EmulatorServer(
        args.host,
        args.port,
        bots,
        rate_limit=args.rate_limit,
        global_per_second=args.global_per_second,
        per_chat_per_second=args.per_chat_per_second,
        per_chat_burst=args.per_chat_burst,
        count_edits=args.count_edits,
        callback_ttl=args.callback_ttl,
    )
    try:
        server.start()
    except OSError as e:
        print(f"tg-emulator: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"tg-emulator listening on http://{args.host}:{server.port}", flush=True)
    while not stop.wait(0.5):  # a timed wait keeps the main thread responsive to signals
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
