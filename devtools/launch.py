"""`make run`: the web app and the bot process; without TELEGRAM_BOT_TOKEN, a local sandbox.

The sandbox adds the Telegram Bot API emulator (devtools/tg_emulator) with a browser page that plays
the customer's Telegram, a development API token, and a SQLite database under instance/.

Stopping (Ctrl-C or SIGTERM) is one path, whatever the moment: each child runs in a session of its own, so a
terminal's Ctrl-C reaches this launcher only and every child gets exactly one signal, from here. A second
signal to a Gunicorn worker is what used to deadlock it (gthread's handle_quit re-entering its pool's
shutdown) and leave it listening after the master was killed. The launcher SIGTERMs the children newest
first, waits longer than each one's own graceful stop (Gunicorn's graceful timeout and then some), and
SIGKILLs by process group whatever is left, Gunicorn's workers included.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import requests

from config import ConfigError, check_database_url, default_database_url  # also reads .env, as the children will

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

# Bot tokens the emulator accepts; built here so nothing token-shaped sits in the repository.
SANDBOX_CUSTOMER_TOKEN = "7000000001:" + "SandboxCustomerBot".ljust(35, "x")
SANDBOX_HORECA_TOKEN = "7000000002:" + "SandboxHorecaBot".ljust(35, "x")
# The sandbox's Gunicorn stops its workers within this many seconds (production: gunicorn.conf.py's 20).
SANDBOX_GRACEFUL_TIMEOUT = "5"
MIGRATE = "flask --app wsgi db upgrade"
# "sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection failed: ...", "KeyError: 'x'"
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b(: |$)")
STOP_MARGIN = 5.0  # seconds beyond a child's own graceful stop before it is killed
BOT_STOP_SECONDS = 10.0  # run_bot.py exits within this after SIGTERM (its SHUTDOWN_GRACE is 9 s)


@dataclass
class Child:
    """A process we started, in a session (and process group) of its own; `grace`: its own stop time."""

    name: str
    proc: subprocess.Popen
    grace: float


class Launcher:
    """Starts the children and stops them all, once, however the run ends."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: list[Child] = []
        self.stopping = False

    def on_signal(self, signum: int, frame: object) -> None:
        """The first SIGINT/SIGTERM asks to stop; later ones are ignored (the stop is already under way)."""
        if not self.stopping:
            print(f"\n{signal.Signals(signum).name} received: stopping", file=sys.stderr, flush=True)
        self.stopping = True

    def start(self, name: str, args: list[str], grace: float, output: IO[bytes] | None = None) -> Child:
        """Popen in a new session: a terminal's Ctrl-C reaches the launcher, not the child. `output`: where its
        stdout and stderr go (the terminal by default)."""
        streams = {"stdout": output, "stderr": subprocess.STDOUT} if output is not None else {}
        child = Child(name, subprocess.Popen(args, cwd=ROOT, env=self.env, start_new_session=True, **streams), grace)
        self.children.append(child)
        return child

    def wait_http(self, url: str, timeout: float = 20.0) -> bool:
        """Poll `url` until it answers (any status), the timeout passes or a stop is asked for."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            try:
                requests.get(url, timeout=1)
                return True
            except requests.RequestException:
                time.sleep(0.2)
        return False

    def run_to_end(self, name: str, args: list[str], grace: float, output: IO[bytes] | None = None) -> int | None:
        """Run a short-lived child to its end; None when a stop was asked for meanwhile."""
        child = self.start(name, args, grace, output)
        while child.proc.poll() is None:
            if self.stopping:
                return None
            time.sleep(0.1)
        self.children.remove(child)
        return child.proc.returncode

    def exited(self) -> Child | None:
        """A long-running child that exited on its own, if any."""
        return next((c for c in self.children if c.proc.poll() is not None), None)

    def stop(self) -> None:
        """SIGTERM every child, newest first; wait past each one's graceful stop; SIGKILL what is left."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        children = list(reversed(self.children))
        for child in children:
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)  # the child only: Gunicorn's master stops its workers
        for child in children:
            try:
                child.proc.wait(timeout=child.grace + STOP_MARGIN)
            except subprocess.TimeoutExpired:
                print(f"{child.name} did not stop within {child.grace + STOP_MARGIN:.0f} s: killing it", file=sys.stderr)
            # Its process group is its session: the child and whatever it forked (Gunicorn's workers), even
            # those whose parent is gone. Nothing else is in it.
            try:
                os.killpg(child.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.proc.wait()
        self.children.clear()


def last_error(output: str) -> str:
    """The one line that says why a Python command failed: the last exception's line of its traceback, or
    the last line it printed (a one-line error such as wsgi.py's)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if "Traceback (most recent call last):" in output:
        errors = [line for line in lines if EXCEPTION_LINE.match(line)]
        if errors:
            return errors[-1]
    return lines[-1] if lines else "no output"


# The sandbox's cafe: a profile (issue 11) so the chat shows a name, the cafe's own words and a pickup code.
SANDBOX_CAFE_ID = "cafe-1"
SANDBOX_CAFE = {
    "name": "Bean There",
    "timezone": "Europe/Moscow",
    "contact": {"phone": "+7 495 000-00-00", "address": "Tverskaya 1, Moscow", "url": "https://example.com/bean-there"},
    "texts": {
        "ru": {"ready": "☕ {cafe}: заказ {order_id} готов! Код выдачи {pickup_code}"},
        "en": {"ready": "☕ {cafe}: order {order_id} is ready! Pickup code {pickup_code}"},
    },
}


def seed_cafe(web_url: str, token: str) -> str | None:
    """Give the sandbox's cafe its profile unless it has one (a kept database keeps yours); its name, or None."""
    url = f"{web_url}/horeca/{SANDBOX_CAFE_ID}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        found = requests.get(url, headers=headers, timeout=5)
        if found.status_code == 404:
            found = requests.put(url, headers=headers, json=SANDBOX_CAFE, timeout=5)
        return str(found.json()["name"]) if found.status_code == 200 else None
    except (requests.RequestException, ValueError, KeyError):
        return None


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:`port` (so what answers there later is ours)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def main() -> int:
    env = dict(os.environ)
    launcher = Launcher(env)
    # From the first moment: a Ctrl-C during start-up stops what was started so far.
    signal.signal(signal.SIGINT, launcher.on_signal)
    signal.signal(signal.SIGTERM, launcher.on_signal)
    try:
        return run(launcher, env)
    finally:
        launcher.stop()


def run(launcher: Launcher, env: dict[str, str]) -> int:
    """Start everything, print where it is, and wait for a stop or a child's exit."""
    sandbox = not env.get("TELEGRAM_BOT_TOKEN")
    web_port = int(env.get("WEB_PORT", "8000"))
    emulator_port = int(env.get("EMULATOR_PORT", "8081"))
    env.setdefault("GUNICORN_BIND", f"127.0.0.1:{web_port}")
    for name, port in (("WEB_PORT", web_port), ("EMULATOR_PORT", emulator_port)):
        if (name == "WEB_PORT" or sandbox) and not port_is_free(port):
            print(f"port {port} is already in use (another `make run`?); stop it or set {name}=<free port>", file=sys.stderr)
            return 1

    try:
        check_database_url(env.get("DATABASE_URL") or default_database_url())
    except ConfigError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 2

    if sandbox:
        env.setdefault("DEV_MODE", "1")
        env.setdefault("API_TOKEN", "dev-token")
        env.setdefault("BOT_USERNAME", "SandboxCafeBot")
        env.setdefault("HORECA_BOT_USERNAME", "SandboxCafeStaffBot")
        env.setdefault("GUNICORN_GRACEFUL_TIMEOUT", SANDBOX_GRACEFUL_TIMEOUT)
        env["TELEGRAM_BOT_TOKEN"] = SANDBOX_CUSTOMER_TOKEN
        env.setdefault("HORECA_BOT_TOKEN", SANDBOX_HORECA_TOKEN)
        emulator_url = f"http://127.0.0.1:{emulator_port}"
        env["TELEGRAM_API_URL"] = emulator_url
        launcher.start(
            "the Telegram emulator",
            [
                PY,
                "-m",
                "devtools.tg_emulator",
                "--host",
                "127.0.0.1",
                "--port",
                str(emulator_port),
                "--bot",
                f"{env['BOT_USERNAME']}={env['TELEGRAM_BOT_TOKEN']}",
                "--bot",
                f"{env['HORECA_BOT_USERNAME']}={env['HORECA_BOT_TOKEN']}",
            ],
            grace=5.0,
        )

    # The migrations run while the emulator starts.
    print(f"applying database migrations ({MIGRATE})", flush=True)
    with tempfile.TemporaryFile() as output:
        migrated = launcher.run_to_end("the migrations", [PY, "-m", "flask", *MIGRATE.split()[1:]], grace=5.0, output=output)
        output.seek(0)
        said = output.read().decode(errors="replace")
    if migrated is None:
        return 130
    if migrated != 0:
        print(f"make run: the migrations failed: {last_error(said)} (run `{MIGRATE}` for the whole story)", file=sys.stderr)
        return migrated
    print(said, end="", flush=True)
    if sandbox and not launcher.wait_http(env["TELEGRAM_API_URL"] + "/control/bots"):
        if launcher.stopping:
            return 130
        print("the Telegram emulator did not start", file=sys.stderr)
        return 1

    graceful = float(env.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
    launcher.start("gunicorn", [PY, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], grace=graceful)
    launcher.start("run_bot.py", [PY, "run_bot.py"], grace=BOT_STOP_SECONDS)
    web_url = f"http://127.0.0.1:{web_port}"
    launcher.wait_http(web_url + "/healthz")
    if launcher.stopping:
        return 130

    if sandbox:
        cafe = seed_cafe(web_url, env["API_TOKEN"])
        named = f"  Cafe:         {SANDBOX_CAFE_ID} is “{cafe}” (GET /horeca/{SANDBOX_CAFE_ID})\n" if cafe else ""
        print(
            "\n"
            "  Sandbox is running (no real Telegram involved).\n"
            f"  API:          {web_url}   (API token: {env['API_TOKEN']} — for development only)\n"
            f"{named}"
            f"  Telegram:     http://127.0.0.1:{emulator_port}/   (open in a browser: the customer's chat)\n"
            f"  Try:          curl -s -X POST -H 'Authorization: Bearer {env['API_TOKEN']}' {web_url}/verification-codes\n"
            "  Stop:         Ctrl-C\n",
            flush=True,
        )
    else:
        print(f"\n  Web app on {web_url}, bot process running. Stop with Ctrl-C.\n", flush=True)

    while not launcher.stopping:
        child = launcher.exited()
        if child is not None:
            print(f"{child.name} exited (code {child.proc.returncode}); stopping the rest", file=sys.stderr)
            return child.proc.returncode or 1
        time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
