"""Talking to the Telegram Bot API with pyTelegramBotAPI: building bots, keeping tokens out of logs, sorting errors.

telebot puts the token in every request URL, logs those URLs at DEBUG and requests quotes them in its
exceptions (urllib3 would log them too: `webapp.configure_logging` keeps it and requests at WARNING).
`install_redaction` masks every registered secret (the bot tokens and the process's other secrets) in every
log record, whatever logger or handler it goes through; `describe` gives a short, masked text for an exception.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from dataclasses import dataclass
from typing import Any

import requests
import telebot
from telebot import TeleBot, apihelper
from telebot.apihelper import ApiHTTPException, ApiInvalidJSONException, ApiTelegramException

ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member", "edited_message"]

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_installed = False

log = logging.getLogger(__name__)


MIN_SECRET_CHARS = 6  # shorter values are not masked: masking "pw" everywhere would garble every line


def register_secret(token: str) -> None:
    """Never let `token` (a bot token's secret half too) reach a log line or an error text.

    Any secret of the process may be registered (the API token, the webhook secret, ...): only a bot
    token keeps its numeric bot id in sight.
    """
    if len(token) < MIN_SECRET_CHARS:
        return
    global _ordered
    with _secrets_lock:
        _secrets.add(token)
        _, _, secret = token.partition(":")
        if len(secret) >= 8:
            _secrets.add(secret)
        _ordered = sorted(_secrets, key=len, reverse=True)


_ordered: list[str] = []  # the registered secrets, longest first


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***` (a bot token by `<bot id>:***`)."""
    if not text or not _ordered:
        return text
    for secret in _ordered:
        if secret in text:
            head, colon, _ = secret.partition(":")
            text = text.replace(secret, f"{head}:***" if colon and head.isdigit() else "***")
    return text


_QUERY = re.compile(r"\?[^\s'\")]*")


def describe(exc: BaseException) -> str:
    """A short, token-free description of an API or network error (query strings, which hold message texts, dropped)."""
    if isinstance(exc, ApiTelegramException):
        return f"{exc.error_code} {redact(str(exc.description))}"[:300]
    if isinstance(exc, ApiHTTPException | ApiInvalidJSONException):
        status = getattr(exc.result, "status_code", "?")
        return f"HTTP {status} without a Bot API answer ({type(exc).__name__})"
    text = _QUERY.sub("?…", redact(str(exc)))
    return f"{type(exc).__name__}: {text}"[:300]


def _scrub(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string: leave it to the handler to report
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def install_redaction() -> None:
    """Mask registered tokens in every log record, and route uncaught exceptions through logging."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _ordered:
            _scrub(record)
        return record

    logging.setLogRecordFactory(factory)
    # telebot writes to stderr through its own handler as well as propagating to ours: one line is enough.
    for handler in list(telebot.logger.handlers):
        telebot.logger.removeHandler(handler)
    # Python prints uncaught exceptions itself, unmasked: send them through logging instead.
    crash_log = logging.getLogger("crash")
    sys.excepthook = lambda kind, value, tb: crash_log.critical("uncaught exception", exc_info=(kind, value, tb))
    threading.excepthook = lambda args: crash_log.critical(
        "uncaught exception in thread %s",
        getattr(args.thread, "name", "?"),
        exc_info=args.exc_value,  # the exception carries its traceback
    )


_local = threading.local()
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _session() -> requests.Session:
    """This thread's HTTP session: keep-alive connections to Telegram, reused by every call of the thread."""
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        # Reading proxy settings from the environment on every request costs more CPU than the request itself;
        # only do it when a proxy is actually configured.
        session.trust_env = any(os.environ.get(name) for name in _PROXY_VARIABLES)
        _local.session = session
    return session


def _send(method: str, url: str, params: Any = None, files: Any = None, timeout: Any = None, proxies: Any = None) -> Any:
    return _session().request(method, url, params=params, files=files, timeout=timeout, proxies=proxies)


def configure_api(api_url: str, request_timeout: float) -> None:
    """Point telebot at `api_url` (Telegram, or the emulator) with short timeouts for every call."""
    # telebot declares these module settings as None or int; requests takes float timeouts.
    apihelper.API_URL = api_url.rstrip("/") + "/bot{0}/{1}"  # type: ignore[assignment]
    apihelper.FILE_URL = api_url.rstrip("/") + "/file/bot{0}/{1}"  # type: ignore[assignment]  # getFile downloads (media)
    apihelper.CONNECT_TIMEOUT = min(5.0, request_timeout)  # type: ignore[assignment]
    apihelper.READ_TIMEOUT = request_timeout  # type: ignore[assignment]  # getUpdates adds its long-poll timeout to this
    apihelper.RETRY_ON_ERROR = False  # the delivery job decides about retries
    apihelper.CUSTOM_REQUEST_SENDER = _send  # type: ignore[assignment]  # a persistent session per thread


def build_bot(token: str) -> TeleBot:
    """A TeleBot whose handlers run in the polling thread, one update at a time."""
    register_secret(token)
    return TeleBot(token, threaded=False, parse_mode=None)


# --- what an error means for a message -------------------------------------------------------------

RETRY = "retry"  # 5xx, timeouts, connection errors: exponential backoff up to the deadline
RATE_LIMITED = "rate_limited"  # 429: wait retry_after
BLOCKED = "blocked"  # 403: the user blocked the bot or deleted their account
FINAL = "final"  # other 4xx: this message can never go (`not_started`: not until the user starts the bot)
NOT_MODIFIED = "not_modified"  # an edit that changes nothing: as good as done


class Undeliverable(Exception):
    """Our own finding that a message can never go (not an answer of Telegram): a final failure."""


@dataclass(frozen=True)
class Failure:
    """What a failed Bot API call means for the message."""

    kind: str
    reason: str
    retry_after: float = 0.0
    deactivated: bool = False
    # FINAL because the user never started the bot: "400 chat not found" (the bot has never seen the chat)
    # or "403 bot can't initiate conversation with a user". Only sending cares; for an edit it is just final.
    not_started: bool = False


def classify(exc: BaseException) -> Failure:
    """Sort an exception from a Bot API call into retry / rate-limited / blocked / final / not-modified.

    "Chat not found" is a final failure with `not_started` rather than a kind of its own: every caller that
    edits or deletes treats it as final, and only the sending worker records the customer as never started."""
    reason = describe(exc)
    if isinstance(exc, Undeliverable):
        return Failure(FINAL, str(exc)[:300])
    if isinstance(exc, ApiTelegramException):
        code = int(exc.error_code or 0)
        description = str(exc.description or "").lower()
        if code == 429:
            params = (exc.result_json or {}).get("parameters") or {}
            try:
                retry_after = float(params.get("retry_after") or 1)
            except (TypeError, ValueError):
                retry_after = 1.0
            return Failure(RATE_LIMITED, reason, retry_after=max(retry_after, 0.5))
        if code == 400 and "message is not modified" in description:
            return Failure(NOT_MODIFIED, reason)
        if (code == 400 and "chat not found" in description) or (code == 403 and "initiate conversation" in description):
            return Failure(FINAL, reason, not_started=True)
        if code == 403:
            return Failure(BLOCKED, reason, deactivated="deactivated" in description)
        if code in (401, 404, 409) or code >= 500:
            # A revoked token or a broken gateway is not the message's fault: keep trying until the deadline.
            return Failure(RETRY, reason)
        if 400 <= code < 500:
            return Failure(FINAL, reason)
        return Failure(RETRY, reason)
    if isinstance(exc, ApiHTTPException | ApiInvalidJSONException):
        status = getattr(exc.result, "status_code", 0)
        if status == 429:
            return Failure(RATE_LIMITED, reason, retry_after=1.0)
        return Failure(RETRY, reason)
    if isinstance(exc, requests.RequestException):
        return Failure(RETRY, reason)
    return Failure(RETRY, reason)
