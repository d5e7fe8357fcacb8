"""HTTP front of the Telegram Bot API emulator: `/bot<token>/<method>` and the `/control/` JSON API."""

from __future__ import annotations

import json
import logging
import re
import socket
import socketserver
import threading
import traceback
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .core import ControlError, DropConnection, Emulator, _ctl_int, mask_token
from .formatting import ApiError

log = logging.getLogger("devtools.tg_emulator")

MAX_BODY = 50 * 1024 * 1024
_BOT_PATH = re.compile(r"/bot([^/]*)/([A-Za-z0-9_]+)/?")
_FILE_PATH = re.compile(r"/file/bot([^/]+)/([A-Za-z0-9_./-]+)")
_BOT_PATH_ANY = re.compile(r"/bot(\d*)[^/\s]*")
# The sandbox page (`/` and `/static/<file>`): plain files, no build step.
STATIC_DIR = Path(__file__).resolve().parent / "static"
_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Bot texts end up in this page: no inline script, nothing fetched from elsewhere, no framing.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def mask_path(text: str) -> str:
    """Hide the secret part of any `/bot<token>` path (valid or not) and any bare token."""
    return mask_token(_BOT_PATH_ANY.sub(lambda m: f"/bot{m.group(1)}:***", text))


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename:
            # An uploaded file: its bytes are stored (media.py).
            fields[str(name)] = {
                "filename": filename,
                "size": len(payload),
                "data": payload,
                "content_type": part.get_content_type(),
            }
        else:
            fields[str(name)] = payload.decode(part.get_content_charset() or "utf-8", "replace")
    return fields


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Keep-alive connections idle in readline(): do not join their threads on close.
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self.control_routes = _control_routes(emulator)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._in_flight = 0
        self._idle = threading.Condition(self._connections_lock)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, connection: socket.socket, add: bool) -> None:
        """Remember open client connections so that stop() can close idle keep-alive ones."""
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def request_started(self) -> None:
        """Count a request being processed (stop() lets these finish)."""
        with self._connections_lock:
            self._in_flight += 1

    def request_done(self) -> None:
        """Uncount a request; wake stop() when none is left."""
        with self._connections_lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> None:
        """Wait until no request is being processed (e.g. released long polls have answered)."""
        with self._connections_lock:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def close_connections(self) -> None:
        """Shut down every client connection (wakes handler threads blocked reading)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries Content-Length
    server_version = "tg-emulator"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms Nagle stalls
    timeout = 300  # idle keep-alive connections are closed after this many seconds
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (signature of the base class)
        """Per-request log line at DEBUG, tokens masked."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s", self.address_string(), mask_path(format % args))

    # ------------------------------------------------------------------

    def _dispatch(self) -> None:
        self.server.request_started()
        try:
            self._dispatch_inner()
        finally:
            self.server.request_done()

    def _dispatch_inner(self) -> None:
        try:
            url = urlsplit(self.path)
            try:
                params = self._params(url.query)
            except ValueError as e:
                self._send_json(400, {"ok": False, "error_code": 400, "description": f"Bad Request: {e}"})
                return
            if url.path.startswith("/file/bot"):
                self._file(url.path)
            elif url.path.startswith("/media/"):
                self._media(url.path[len("/media/") :])
            elif url.path.startswith("/bot"):
                self._bot_api(url.path, params)
            elif url.path.startswith("/control/"):
                self._control(url.path[len("/control/") :].strip("/"), params)
            elif url.path in ("", "/"):
                self._static("index.html")
            elif url.path.startswith("/static/"):
                self._static(url.path[len("/static/") :])
            else:
                self._send_json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (e.g. its long-poll read timed out)
        except Exception:  # noqa: BLE001 (answer 500 like Telegram instead of dropping the connection)
            log.error("internal error on %s %s\n%s", self.command, mask_path(self.path), mask_path(traceback.format_exc()))
            try:
                self._send_json(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"})
            except OSError:
                self.close_connection = True

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ValueError("request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _params(self, query: str) -> dict[str, Any]:
        """Merge query string and body (JSON, urlencoded or multipart); the body wins on conflicts."""
        params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
        body = self._read_body()
        if not body:
            return params
        content_type = self.headers.get("Content-Type", "")
        main = content_type.split(";")[0].strip().lower()
        if main == "application/json" or (not main and body.lstrip()[:1] == b"{"):
            try:
                data = json.loads(body)
            except ValueError:
                raise ValueError("can't parse JSON body") from None
            if not isinstance(data, dict):
                raise ValueError("JSON body must be an object")
            params.update(data)
        elif main == "multipart/form-data":
            params.update(_multipart(content_type, body))
        else:
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return params

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._send(status, body, "application/json")

    def _static(self, name: str) -> None:
        """A file of the sandbox page; only plain names of files in STATIC_DIR (no subfolders, no `..`)."""
        path = STATIC_DIR / name
        if self.command != "GET" or "/" in name or name.startswith(".") or path.suffix not in _STATIC_TYPES or not path.is_file():
            self._send_json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        self._send(200, path.read_bytes(), _STATIC_TYPES[path.suffix], _PAGE_HEADERS)

    def _drop(self) -> None:
        """Close the connection without an answer: the client sees a connection error."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _bot_api(self, path: str, params: dict[str, Any]) -> None:
        m = _BOT_PATH.fullmatch(path)
        if not m:
            self._send_json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token, method = unquote(m.group(1)), m.group(2)
        try:
            status, body = self.server.emulator.call_api(token, method, params)
        except DropConnection:
            self._drop()
            return
        if isinstance(body, str):
            self._send(status, body.encode("utf-8"), "text/html")
        else:
            self._send_json(status, body)

    # --- files (media.py) -------------------------------------------------------------------------

    def _file(self, path: str) -> None:
        """`/file/bot<token>/<file_path>`: a file's bytes for a bot that knows it (after getFile)."""
        m = _FILE_PATH.fullmatch(path)
        emu = self.server.emulator
        stored = None
        if m is not None:
            try:
                with emu.lock:
                    bot = emu._bot_for_token(unquote(m.group(1)))
            except ApiError:
                bot = None
            stored = emu.download(bot, m.group(2)) if bot is not None else None
        if stored is None:
            self._send_json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        self._send(200, stored.data, stored.mime_type or "application/octet-stream")

    def _media(self, unique_id: str) -> None:
        """`/media/<file_unique_id>`: a file's bytes for the sandbox page (images only, shown in <img>)."""
        stored = self.server.emulator.file_by_unique_id(unique_id)
        if stored is None or self.command != "GET":
            self._send_json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        mime = stored.mime_type if (stored.mime_type or "").startswith("image/") else "application/octet-stream"
        self._send(200, stored.data, mime or "application/octet-stream", {**_PAGE_HEADERS, "Cache-Control": "max-age=3600"})

    def _control(self, route: str, params: dict[str, Any]) -> None:
        handlers = self.server.control_routes.get(route)
        if handlers is None:
            self._send_json(404, {"error": f"unknown control endpoint /control/{route}"})
            return
        handler = handlers.get(self.command)
        if handler is None:
            self._send_json(405, {"error": f"use {' or '.join(sorted(handlers))} for /control/{route}"})
            return
        try:
            result = handler(params)
        except ControlError as e:
            self._send_json(e.status, {"error": mask_path(e.message)})
            return
        self._send_json(200, result)


def _control_routes(emu: Emulator) -> dict[str, dict[str, Callable[[dict[str, Any]], Any]]]:
    return {
        "health": {"GET": lambda d: {"ok": True}},
        "bots": {"GET": lambda d: emu.list_bots()},
        "users": {"GET": lambda d: emu.list_users(), "POST": emu.create_user},
        "send": {"POST": emu.send},
        "press": {"POST": emu.press},
        "open_link": {"POST": emu.open_link},
        "keyboard": {"GET": emu.keyboard},
        "read": {"POST": emu.mark_read},
        "unread": {"GET": emu.unread},
        "block": {"POST": emu.block},
        "unblock": {"POST": emu.unblock},
        "blocked": {"GET": lambda d: _blocked(emu, d)},
        "deactivate": {"POST": emu.deactivate},
        "reactivate": {"POST": lambda d: emu.deactivate(d, active=True)},
        "messages": {"GET": emu.messages},
        "chat": {"GET": emu.chat},
        "wait": {"GET": emu.wait},
        "callback_answers": {"GET": emu.callback_answers},
        "updates": {"GET": emu.pending_updates},
        "faults": {"GET": lambda d: emu.list_faults(), "POST": emu.add_fault, "DELETE": emu.clear_faults},
        "limits": {"GET": lambda d: emu.get_limits(), "POST": emu.set_limits},
        "stats": {"GET": emu.stats},
        "reset": {"POST": lambda d: emu.reset()},
        **emu.groups.control_routes(),  # groups, topics, chat migration (groups.py)
        # media.py: the user sends a file, a location, a venue, a contact or an album; the user edits a message.
        "send_media": {"POST": emu.send_media},
        "edit": {"POST": emu.edit_by_user},
    }


def _blocked(emu: Emulator, data: dict[str, Any]) -> dict[str, Any]:
    """Whether the user has blocked the bot (the page's block/unblock switch shows it)."""
    with emu.lock:
        bot = emu.resolve_bot(data.get("bot"))
        user_id = _ctl_int(data, "user_id")
        return {"bot": bot.username, "user_id": user_id, "blocked": user_id in bot.blocked}


class EmulatorServer:
    """The emulator as an HTTP server; `start()` serves it from a background thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        bots: dict[str, str] | None = None,
        rate_limit: bool = False,
        *,
        global_per_second: int = 30,
        per_chat_per_second: int = 1,
        per_chat_burst: int = 3,
        count_edits: bool = False,
        callback_ttl: float = 15.0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.emulator = Emulator(
            bots,
            rate_limit=rate_limit,
            global_per_second=global_per_second,
            per_chat_per_second=per_chat_per_second,
            per_chat_burst=per_chat_burst,
            count_edits=count_edits,
            callback_ttl=callback_ttl,
        )
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> EmulatorServer:
        """Bind and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            raise RuntimeError("emulator already started")
        self.emulator.stopping = False
        self._httpd = _Server((self.host, self._requested_port), self.emulator)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="tg-emulator", daemon=True
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        """The bound port (useful with port=0)."""
        if self._httpd is None:
            raise RuntimeError("emulator not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:8081 (wildcard hosts map to loopback)."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Value for telebot.apihelper.API_URL."""
        return self.url + "/bot{0}/{1}"

    def stop(self, timeout: float = 5.0) -> None:
        """Release long polls, stop serving, close connections."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        self.emulator.shutdown()
        httpd.shutdown()
        # Released long polls answer [] before their connections are closed (slow faults may not).
        httpd.wait_idle(1.0)
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout)

    def __enter__(self) -> EmulatorServer:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
