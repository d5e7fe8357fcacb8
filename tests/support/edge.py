"""The edge under attack: deploy/nginx.conf run as shipped, hostile sockets, and the load balancer's probe.

Shared by tests/e2e/test_nginx.py (through nginx: a failure below 99 %) and bench/edge.py (the same run
straight at Gunicorn too: a figure). Everything talks plain TCP to 127.0.0.1, as an attacker on the host would.
"""

from __future__ import annotations

import http.client
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


# --- deploy/nginx.conf, moved to a directory and ports of our own ------------------------------------------------


# What the shipped file says → what a run under `prefix` needs; each must occur in the file (as many times as
# given), so a change to the file that this rewrite would silently miss fails instead.
def _rewrites(listen_port: int, upstream_port: int, prefix: Path) -> list[tuple[str, str, int]]:
    return [
        ("listen 80 default_server;", f"listen {HOST}:{listen_port} default_server;", 1),
        ("proxy_pass http://127.0.0.1:8000;", f"proxy_pass http://{HOST}:{upstream_port};", 1),
        ("/var/lib/nginx/", f"{prefix}/temp/", 5),
        ("/var/log/nginx/", f"{prefix}/logs/", 2),
        ("pid /run/nginx.pid;", f"pid {prefix}/nginx.pid;", 1),
        # As root the workers would switch to www-data, which cannot enter pytest's private directories.
        ("user www-data;", "user root root;" if os.geteuid() == 0 else "", 1),
    ]


def nginx_config(listen_port: int, upstream_port: int, prefix: Path) -> str:
    text = NGINX_CONF.read_text()
    for old, new, count in _rewrites(listen_port, upstream_port, prefix):
        found = text.count(old)
        assert found == count, f"deploy/nginx.conf: expected {count} × {old!r}, found {found}"
        text = text.replace(old, new)
    return text


class Nginx:
    """`nginx -c <rewritten deploy/nginx.conf> -p <prefix> -g 'daemon off;'` in front of `upstream_port`."""

    def __init__(self, upstream_port: int, prefix: Path, port: int | None = None) -> None:
        binary = nginx_binary()
        assert binary is not None, "nginx is not installed (Debian package: nginx; .ci/run installs it)"
        self.port = port or free_port()
        self.prefix = prefix
        for sub in ("temp", "logs"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(nginx_config(self.port, upstream_port, prefix))
        self.log = prefix / "logs" / "stderr.log"
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                [binary, "-e", "stderr", "-c", str(self.conf), "-p", str(prefix), "-g", "daemon off;"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_port(self.port, 15, self.check)

    def check(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(f"nginx exited with {self.popen.returncode}:\n{self.output()}")

    def output(self) -> str:
        parts = [self.log, self.prefix / "logs" / "error.log"]
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in parts if p.exists())

    def access_log(self) -> str:
        path = self.prefix / "logs" / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)  # fast shutdown: the master stops its workers
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)


@contextmanager
def nginx(upstream_port: int, prefix: Path) -> Iterator[Nginx]:
    proxy = Nginx(upstream_port, prefix)
    try:
        yield proxy
    finally:
        proxy.stop()


# --- Gunicorn as deployed, on a migrated SQLite database ---------------------------------------------------------


def web_env(database_url: str, port: int, api_token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "TELEGRAM_", "HORECA_", "BACKEND_"))}
    env.update(
        DATABASE_URL=database_url,
        API_TOKEN=api_token,
        BOT_USERNAME="EdgeBot",
        GUNICORN_BIND=f"{HOST}:{port}",
        GUNICORN_ACCESS_LOG="",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.pop("DEV_MODE", None)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


class Gunicorn:
    """`gunicorn -c gunicorn.conf.py wsgi:app`, as the web unit runs it (2 × cores workers, 2 threads each)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = int(env["GUNICORN_BIND"].rpartition(":")[2])
        self.log = log
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while request(self.port, "GET", "/healthz", timeout=2)[0] != 200:
            if self.popen.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.popen.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer /healthz within 60 s:\n{self.output()}")
            time.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)


def wait_for_port(port: int, timeout: float, check: object = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if callable(check):
            check()
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout} s") from None
            time.sleep(0.05)


def request(
    port: int, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None, timeout: float = 3.0
) -> tuple[int | None, float]:
    """One request on a new connection: (status or None when unanswered, seconds taken)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    except (OSError, http.client.HTTPException):
        return None, time.monotonic() - started
    finally:
        conn.close()


def raw(port: int, data: bytes, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send `data` as is on a new connection; the first response's status, headers (lower-case names) and body."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received and (chunk := sock.recv(65536)):
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", -1))
        while (length < 0 or len(body) < length) and (chunk := sock.recv(65536)):
            body += chunk
    return status, headers, body[:length] if length >= 0 else body


# --- the attack: sockets that hold a server's attention and give it nothing useful ------------------------------


@dataclass
class _Sock:
    kind: str
    sock: socket.socket
    payload: bytes  # all it will send, a byte at a time (a slow body's head at once)
    next_send: float
    offset: int = 0  # how much of it is sent


@dataclass
class HostileLoad:
    """`idle` sockets that send nothing, `slowloris` ones sending a request head a byte every `interval` seconds,
    `slow_body` ones sending a POST with a valid token whose body trickles the same way. A socket the server
    closes is opened again at once, so the pressure stays on for as long as the load runs."""

    port: int
    api_token: str
    idle: int = 200
    slowloris: int = 200
    slow_body: int = 50
    interval: float = 3.0
    opened: dict[str, int] = field(default_factory=dict)
    closed_by_server: dict[str, int] = field(default_factory=dict)
    bytes_sent: int = 0
    open_now: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _payloads: dict[str, bytes] = field(default_factory=dict)

    def _payload(self, kind: str) -> bytes:
        if kind not in self._payloads:
            self._payloads[kind] = self._build(kind)
        return self._payloads[kind]

    def _build(self, kind: str) -> bytes:
        if kind == "idle":
            return b""
        if kind == "slowloris":
            # A request head that never ends: header after header, never the empty line.
            return b"GET /healthz HTTP/1.1\r\nHost: edge\r\n" + b"".join(b"X-Slow-%d: x\r\n" % i for i in range(10_000))
        head = (
            "POST /provide_message_to_user/ HTTP/1.1\r\nHost: edge\r\n"
            f"Authorization: Bearer {self.api_token}\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n"
        ).encode()
        return head + b'{"user_id": 1, "order_id": "x", "status": "' + b"a" * 59_900

    def _open(self, kind: str, now: float) -> _Sock:
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex((HOST, self.port))
        self.opened[kind] = self.opened.get(kind, 0) + 1
        # Slowloris sockets start spread over one interval, so their bytes do not all arrive at once.
        first = now + (self.interval * (self.opened[kind] % 100) / 100 if kind == "slowloris" else 0.0)
        return _Sock(kind, sock, self._payload(kind), first)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hostile-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        socks: list[_Sock] = []
        now = time.monotonic()
        for kind, count in (("idle", self.idle), ("slowloris", self.slowloris), ("slow_body", self.slow_body)):
            for _ in range(count):
                s = self._open(kind, now)
                socks.append(s)
                sel.register(s.sock, selectors.EVENT_READ, s)
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                # Anything readable is either the server closing (EOF, reset) or an answer: either way, this
                # socket is done; a new one takes its place.
                for key, _ in sel.select(timeout=0.1):
                    s = key.data
                    try:
                        data = s.sock.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data or s.kind != "idle":
                        self._replace(sel, socks, s, now)
                for s in list(socks):
                    if s.offset >= len(s.payload) or now < s.next_send:
                        continue
                    size = 1
                    if s.kind == "slow_body" and s.offset == 0:
                        size = s.payload.index(b"\r\n\r\n") + 4  # the request head in one go, then the body trickles
                    try:
                        sent = s.sock.send(s.payload[s.offset : s.offset + size])
                    except BlockingIOError:
                        continue
                    except OSError:
                        self._replace(sel, socks, s, now)
                        continue
                    self.bytes_sent += sent
                    s.offset += sent
                    s.next_send = now + self.interval
                self.open_now = len(socks)
        finally:
            for s in socks:
                sel.unregister(s.sock)
                s.sock.close()
            sel.close()
            self.open_now = 0

    def _replace(self, sel: selectors.BaseSelector, socks: list[_Sock], s: _Sock, now: float) -> None:
        self.closed_by_server[s.kind] = self.closed_by_server.get(s.kind, 0) + 1
        sel.unregister(s.sock)
        s.sock.close()
        socks.remove(s)
        fresh = self._open(s.kind, now)
        socks.append(fresh)
        sel.register(fresh.sock, selectors.EVENT_READ, fresh)


@contextmanager
def hostile_load(port: int, api_token: str, **counts: int) -> Iterator[HostileLoad]:
    load = HostileLoad(port, api_token, **counts)
    load.start()
    try:
        yield load
    finally:
        load.stop()


# --- the load balancer's probe -----------------------------------------------------------------------------------


@dataclass
class ProbeResult:
    sent: int
    answered: int  # a 200 within the client timeout
    within: int  # a 200 within `deadline` seconds
    deadline: float
    latencies: list[float]
    statuses: dict[str, int]

    @property
    def answered_pct(self) -> float:
        return 100.0 * self.answered / self.sent if self.sent else 0.0

    @property
    def within_pct(self) -> float:
        return 100.0 * self.within / self.sent if self.sent else 0.0


def probe(
    port: int, api_token: str, duration: float, every: float = 0.5, timeout: float = 3.0, deadline: float = 1.0
) -> ProbeResult:
    """GET /healthz and an authenticated GET /subscribe-status, each on a new connection every `every` seconds
    (started on schedule even while earlier ones still wait), for `duration` seconds."""
    paths = [
        ("/healthz", {}),
        ("/subscribe-status?user_id=1", {"Authorization": f"Bearer {api_token}"}),
    ]
    results: list[tuple[int | None, float]] = []
    lock = threading.Lock()

    def one(path: str, headers: dict[str, str]) -> None:
        outcome = request(port, "GET", path, headers, timeout=timeout)
        with lock:
            results.append(outcome)

    threads = []
    start = time.monotonic()
    tick = 0
    while (at := start + tick * every) < start + duration:
        time.sleep(max(0.0, at - time.monotonic()))
        for path, headers in paths:
            t = threading.Thread(target=one, args=(path, headers), daemon=True)
            t.start()
            threads.append(t)
        tick += 1
    for t in threads:
        t.join(timeout + 5)
    statuses: dict[str, int] = {}
    for status, _ in results:
        key = str(status) if status is not None else "no answer"
        statuses[key] = statuses.get(key, 0) + 1
    ok = [seconds for status, seconds in results if status == 200]
    return ProbeResult(
        sent=len(threads),
        answered=len(ok),
        within=sum(1 for s in ok if s <= deadline),
        deadline=deadline,
        latencies=sorted(ok),
        statuses=statuses,
    )
