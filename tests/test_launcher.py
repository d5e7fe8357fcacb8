"""`make run` stops cleanly on Ctrl-C, every time: a terminal's Ctrl-C, ten times, and the ports are free after each.

The test is the terminal: `make run` gets a pseudo-terminal as its controlling terminal, and the test types
Ctrl-C into it, so the kernel sends SIGINT to the terminal's foreground process group (make and the launcher)
exactly as a shell would. The interrupts land at different moments: during start-up and once the sandbox is up.
"""

from __future__ import annotations

import os
import pty
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.e2e import free_port, wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
READY = "Sandbox is running"
# When each of the ten Ctrl-Cs comes: None = once the sandbox is up; a number = that many seconds after start.
MOMENTS = [None, 0.5, None, 1.5, None, 3.0, None, None, 2.0, None]


class Terminal:
    """`make run` on a pseudo-terminal of its own (its controlling terminal, make in the foreground)."""

    def __init__(self, env: dict[str, str], marker: str) -> None:
        self.marker = marker
        master, slave = pty.openpty()
        self.master = master
        self.output = bytearray()
        # `setsid --ctty`: a new session whose controlling terminal is the pty (stdin); make stays in the
        # foreground process group, as `make run` typed into a shell is.
        # -o .venv/.installed: use the virtualenv as it is (this test is about stopping, not installing).
        self.proc = subprocess.Popen(
            ["setsid", "--ctty", "make", "--no-print-directory", "-o", ".venv/.installed", "run", f"PYTHON={sys.executable}"],
            cwd=ROOT,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.output.extend(chunk)

    def text(self) -> str:
        return self.output.decode(errors="replace")

    def ctrl_c(self) -> None:
        """What pressing Ctrl-C does: the pty's line discipline sends SIGINT to the foreground process group."""
        os.write(self.master, b"\x03")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        os.close(self.master)
        self._reader.join(2)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def leftovers(marker: str) -> list[str]:
    """Processes still alive that were started for this run (they carry its marker in their environment)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            if f"LAUNCH_TEST_MARKER={marker}".encode() in environ.split(b"\0"):
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{entry.name}: {cmdline}")
        except OSError:
            continue
    return found


@pytest.mark.skipif(not shutil.which("make") or not shutil.which("setsid"), reason="needs make and setsid (util-linux)")
def test_ctrl_c_on_make_run_frees_the_ports_every_time(tmp_path: Path):
    web_port, emulator_port = free_port(), free_port()
    marker = f"{os.getpid()}-{time.monotonic_ns()}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "HORECA_", "BACKEND_WEBHOOK", "GUNICORN_", "PROMETHEUS_", "MAKE", "MFLAGS"))
        and k not in ("API_TOKEN", "BOT_USERNAME", "DEV_MODE", "DATABASE_URL")
    }
    env.update(
        WEB_PORT=str(web_port),
        EMULATOR_PORT=str(emulator_port),
        DATABASE_URL=f"sqlite:///{tmp_path / 'sandbox.db'}",
        LAUNCH_TEST_MARKER=marker,
        GUNICORN_WORKERS="2",  # fewer workers boot faster on a shared machine; two still share the listening socket
        PYTHONUNBUFFERED="1",
    )
    for attempt, moment in enumerate(MOMENTS, 1):
        terminal = Terminal(env, marker)
        try:
            if moment is None:
                wait_until(lambda: READY in terminal.text() or terminal.proc.poll() is not None, 60, 0.1, what="the sandbox")
                assert terminal.proc.poll() is None, f"make run exited early (try {attempt}):\n{terminal.text()[-3000:]}"
                assert listening(web_port) and listening(emulator_port)
            else:
                time.sleep(moment)
            started = time.monotonic()
            terminal.ctrl_c()
            try:
                terminal.proc.wait(40)
            except subprocess.TimeoutExpired:
                pytest.fail(f"make run still running 40 s after Ctrl-C (try {attempt}):\n{terminal.text()[-3000:]}")
            took = time.monotonic() - started
            print(f"try {attempt}: Ctrl-C {'once up' if moment is None else f'after {moment} s'}, stopped in {took:.1f} s")
            left = leftovers(marker)
            assert not left, f"try {attempt}: processes left after Ctrl-C: {left}\n{terminal.text()[-3000:]}"
            assert not listening(web_port), f"try {attempt}: port {web_port} still answers after Ctrl-C"
            assert not listening(emulator_port), f"try {attempt}: port {emulator_port} still answers after Ctrl-C"
            assert took < 20, f"try {attempt}: stopping took {took:.1f} s"
            if moment is None:
                assert "SIGINT received: stopping" in terminal.text()
                assert "Traceback" not in terminal.text(), terminal.text()[-3000:]
        finally:
            terminal.close()
