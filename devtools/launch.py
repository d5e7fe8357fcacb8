"""`make run`: the web app and the bot process; without TELEGRAM_BOT_TOKEN, a local sandbox.

The sandbox adds the Telegram Bot API emulator (devtools/tg_emulator) with a browser page that plays
the customer's Telegram, a development API token, and a SQLite database under instance/.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

# Bot tokens the emulator accepts; built here so nothing token-shaped sits in the repository.
SANDBOX_CUSTOMER_TOKEN = "7000000001:" + "SandboxCustomerBot".ljust(35, "x")
SANDBOX_HORECA_TOKEN = "7000000002:" + "SandboxHorecaBot".ljust(35, "x")


def wait_http(url: str, timeout: float = 20.0) -> bool:
    """Poll `url` until it answers (any status) or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return True
        except requests.RequestException:
            time.sleep(0.2)
    return False


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:`port` (so what answers there later is ours)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def main() -> int:
    env = dict(os.environ)
    sandbox = not env.get("TELEGRAM_BOT_TOKEN")
    web_port = int(env.get("WEB_PORT", "8000"))
    emulator_port = int(env.get("EMULATOR_PORT", "8081"))
    env.setdefault("GUNICORN_BIND", f"127.0.0.1:{web_port}")
    procs: list[subprocess.Popen] = []
    for name, port in (("WEB_PORT", web_port), ("EMULATOR_PORT", emulator_port)):
        if (name == "WEB_PORT" or sandbox) and not port_is_free(port):
            print(f"port {port} is already in use (another `make run`?); stop it or set {name}=<free port>", file=sys.stderr)
            return 1

    if sandbox:
        env.setdefault("DEV_MODE", "1")
        env.setdefault("API_TOKEN", "dev-token")
        env.setdefault("BOT_USERNAME", "SandboxCafeBot")
        env.setdefault("HORECA_BOT_USERNAME", "SandboxCafeStaffBot")
        env["TELEGRAM_BOT_TOKEN"] = SANDBOX_CUSTOMER_TOKEN
        env.setdefault("HORECA_BOT_TOKEN", SANDBOX_HORECA_TOKEN)
        emulator_url = f"http://127.0.0.1:{emulator_port}"
        env["TELEGRAM_API_URL"] = emulator_url
        procs.append(
            subprocess.Popen(
                [PY, "-m", "devtools.tg_emulator", "--host", "127.0.0.1", "--port", str(emulator_port),
                 "--bot", f"{env['BOT_USERNAME']}={env['TELEGRAM_BOT_TOKEN']}",
                 "--bot", f"{env['HORECA_BOT_USERNAME']}={env['HORECA_BOT_TOKEN']}"],
                cwd=ROOT, env=env,
            )
        )
        if not wait_http(emulator_url + "/control/bots"):
            print("the Telegram emulator did not start", file=sys.stderr)
            return stop(procs, 1)

    print("applying database migrations (flask --app wsgi db upgrade)", flush=True)
    migrated = subprocess.run([PY, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env)
    if migrated.returncode != 0:
        return stop(procs, migrated.returncode)

    procs.append(subprocess.Popen([PY, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=env))
    procs.append(subprocess.Popen([PY, "run_bot.py"], cwd=ROOT, env=env))
    web_url = f"http://127.0.0.1:{web_port}"
    wait_http(web_url + "/healthz")

    if sandbox:
        print(
            "\n"
            "  Sandbox is running (no real Telegram involved).\n"
            f"  API:          {web_url}   (API token: {env['API_TOKEN']} — for development only)\n"
            f"  Telegram:     http://127.0.0.1:{emulator_port}/   (open in a browser: the customer's chat)\n"
            f"  Try:          curl -s -X POST -H 'Authorization: Bearer {env['API_TOKEN']}' {web_url}/verification-codes\n"
            "  Stop:         Ctrl-C\n",
            flush=True,
        )
    else:
        print(f"\n  Web app on {web_url}, bot process running. Stop with Ctrl-C.\n", flush=True)

    stopping = False

    def on_signal(signum, frame):  # noqa: ANN001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stopping:
        for proc in procs:
            if proc.poll() is not None:
                print(f"a process exited ({proc.args[1:3]}, code {proc.returncode}); stopping the rest", file=sys.stderr)
                return stop(procs, proc.returncode or 1)
        time.sleep(0.5)
    return stop(procs, 0)


def stop(procs: list[subprocess.Popen], code: int) -> int:
    """SIGTERM everything we started (newest first), then wait; kill what lingers."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in reversed(procs):
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return code


if __name__ == "__main__":
    sys.exit(main())
