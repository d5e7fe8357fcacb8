"""State and Telegram Bot API semantics of the emulator, independent of HTTP.

One `Emulator` holds every bot, user, message, update queue, fault rule and counter behind a
single re-entrant lock. Long waits (getUpdates, /control/wait) use conditions on that lock, so
they release it while waiting.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import math
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .formatting import (
    ApiError,
    bad_request,
    command_entities,
    json_param,
    parse_reply_markup,
    render_text,
    utf16_len,
)
from .groups import Groups
from .media import MediaMixin, MediaState

TOKEN_RE = re.compile(r"^(\d{1,20}):([A-Za-z0-9_-]{30,64})$")
MAX_TEXT = 4096
# A bot's deep link (https://t.me/<bot>?start=<parameter>), as the user pastes or clicks it.
_DEEP_LINK = re.compile(
    r"(?:https?://)?(?:t\.me|telegram\.me)/(?P<bot>[A-Za-z][A-Za-z0-9_]{2,63})/?(?:\?start=(?P<start>[A-Za-z0-9_-]{1,64}))?"
)
MAX_LONG_POLL = 60.0
MAX_CONTROL_WAIT = 120.0
# Delivered only when listed explicitly in allowed_updates (Telegram's default excludes them).
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
FAULT_KINDS = ("429", "403", "500", "502", "502_html", "slow", "drop", "drop_after")
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
)
BLOCKED = "Forbidden: bot was blocked by the user"
DEACTIVATED = "Forbidden: user is deactivated"
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)


class ControlError(Exception):
    """An error of the control API: becomes {"error": message} with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class DropConnection(Exception):
    """Tells the HTTP layer to close the connection without answering (simulated network error)."""


def mask_token(text: str) -> str:
    """Replace bot tokens in a string by "<id>:***" so that they never reach logs or errors."""
    return re.sub(r"(\d{1,20}):[A-Za-z0-9_-]{20,}", r"\1:***", text)


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _opt_int(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {name} specified") from None


def _opt_float(params: dict[str, Any], name: str) -> float | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {name} specified") from None


def _ctl_int(data: dict[str, Any], name: str, required: bool = True) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise ControlError(400, f"{name} is required")
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ControlError(400, f"{name} must be an integer") from None


def _ctl_float(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ControlError(400, f"{name} must be a number") from None


@dataclass
class User:
    """A Telegram user; their private chat with any bot has chat id == user id."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    deactivated: bool = False

    def as_user(self) -> dict[str, Any]:
        """Bot API User object."""
        d: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                d[key] = getattr(self, key)
        return d

    def as_chat(self) -> dict[str, Any]:
        """Bot API Chat object of the private chat with this user."""
        d: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        for key in ("last_name", "username"):
            if getattr(self, key):
                d[key] = getattr(self, key)
        return d


@dataclass
class Message:
    """A message in a private chat, sent by the bot (outgoing) or by the user."""

    chat_id: int
    message_id: int
    outgoing: bool
    text: str  # as sent, markup included (e.g. "<b>Hi</b>")
    plain: str  # as the user sees it (e.g. "Hi")
    entities: list[dict[str, Any]]
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    date: int
    received_at: float
    options: dict[str, Any] = field(default_factory=dict)
    edits: list[dict[str, Any]] = field(default_factory=list)
    original: dict[str, Any] | None = None
    edit_date: int | None = None
    deleted: bool = False
    deleted_at: float | None = None
    media: dict[str, Any] | None = None  # media.py: a file, location, venue or contact (the text is then the caption)

    @property
    def inline_markup(self) -> dict[str, Any] | None:
        """The inline keyboard attached to the message, if any (reply keyboards are not part of it)."""
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            return self.reply_markup
        return None


@dataclass
class CallbackQuery:
    """A button press waiting for (or having got) answerCallbackQuery."""

    id: str
    user_id: int
    message_id: int
    data: str | None
    created_at: float
    answers: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Fault:
    """A fault-injection rule: the next `remaining` matching calls (or each with `probability`) fail."""

    id: int
    kind: str
    bot_id: int | None = None
    bot: str | None = None
    method: str | None = None
    chat_id: str | None = None
    remaining: int | None = 1
    probability: float | None = None
    retry_after: int = 5
    delay: float = 1.0
    fired: int = 0

    def matches(self, bot_id: int, method: str, params: dict[str, Any]) -> bool:
        """Whether this rule applies to a call (ignoring probability)."""
        if self.bot_id is not None and self.bot_id != bot_id:
            return False
        if self.method is not None and self.method != method.lower():
            return False
        if self.chat_id is not None and str(params.get("chat_id", "")).strip() != self.chat_id:
            return False
        return self.remaining is None or self.remaining > 0

    def public(self) -> dict[str, Any]:
        """Control-side view."""
        d = asdict(self)
        d.pop("bot_id")
        return d


@dataclass
class Limits:
    """Rate-limit settings (see README: sliding windows, per bot)."""

    enabled: bool = False
    global_per_second: int = 30
    per_chat_per_second: int = 1
    per_chat_burst: int = 3
    count_edits: bool = False
    callback_ttl: float = 15.0


class Bot:
    """One bot: identity, bot-side settings, and its conversations."""

    def __init__(self, bot_id: int, username: str, token: str | None, lock: threading.RLock) -> None:
        self.id = bot_id
        self.username = username
        self.first_name = username
        self.token = token  # only for configured bots, to reject other secrets with the same id
        self.updates_cond = threading.Condition(lock)
        # Never reset: a running bot keeps its offset / stored message ids across /control/reset.
        self.next_update_id = 1
        self.message_counters: dict[int, int] = {}
        # Bot-side settings survive /control/reset (the bot process set them once at startup).
        self.allowed_updates: list[str] | None = None
        self.webhook_url = ""
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.poll_seq = 0
        self.clear()

    def clear(self) -> None:
        """Forget conversations, queues and counters."""
        self.updates: deque[dict[str, Any]] = deque()
        self.messages: dict[int, dict[int, Message]] = {}
        self.blocked: set[int] = set()
        self.callbacks: dict[str, CallbackQuery] = {}
        self.send_times: deque[float] = deque()
        self.chat_send_times: dict[int, deque[float]] = {}
        self.calls: Counter[str] = Counter()
        self.errors: Counter[int] = Counter()
        self.counts: Counter[str] = Counter()
        # chat_id -> the reply keyboard the bot last sent there (ReplyKeyboardMarkup), until one removes it.
        self.reply_keyboards: dict[int, dict[str, Any]] = {}
        # chat_id -> the newest message id the user has seen (the page's unread badges, like Telegram's).
        self.read_up_to: dict[int, int] = {}

    def as_user(self) -> dict[str, Any]:
        """Bot API User object of the bot."""
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}

    def public(self) -> dict[str, Any]:
        """Control-side view: never includes the token."""
        return {"id": self.id, "username": self.username, "configured": self.token is not None}


Handler = Callable[[Bot, dict[str, Any]], Any]


class Emulator(MediaMixin):
    """All emulator state plus the Bot API methods and control operations on it."""

    def __init__(
        self,
        bots: dict[str, str] | None = None,
        rate_limit: bool = False,
        global_per_second: int = 30,
        per_chat_per_second: int = 1,
        per_chat_burst: int = 3,
        count_edits: bool = False,
        callback_ttl: float = 15.0,
    ) -> None:
        self.lock = threading.RLock()
        self.messages_cond = threading.Condition(self.lock)
        self._initial_limits = Limits(
            enabled=rate_limit,
            global_per_second=global_per_second,
            per_chat_per_second=per_chat_per_second,
            per_chat_burst=per_chat_burst,
            count_edits=count_edits,
            callback_ttl=callback_ttl,
        )
        self.limits = replace(self._initial_limits)
        self.bots: dict[int, Bot] = {}
        self.users: dict[int, User] = {}
        self.faults: list[Fault] = []
        self._fault_ids = itertools.count(1)
        # Telegram callback query ids are long numeric strings.
        self._callback_ids = itertools.count(random.randrange(10**17, 10**18))
        self.stopping = False
        for username, token in (bots or {}).items():
            self.add_bot(username, token)
        self._methods: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "logOut": self._true,
                "close": self._true,
                "getUpdates": self._get_updates,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "deleteMessage": self._delete_message,
                "answerCallbackQuery": self._answer_callback_query,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "setChatMenuButton": self._set_chat_menu_button,
                "getChatMenuButton": self._get_chat_menu_button,
                "getChat": self._get_chat,
                "sendChatAction": self._send_chat_action,
            }.items()
        }
        # Groups, supergroups and forum topics live in groups.py: its own methods, and the group side of the others.
        self.groups = Groups(self)
        self._methods.update({name.lower(): (name, handler) for name, handler in self.groups.methods().items()})
        # Media, files and edits (media.py).
        self.media = MediaState()
        self._methods.update({name.lower(): (name, handler) for name, handler in self.media_methods().items()})

    # ------------------------------------------------------------------ bots

    def add_bot(self, username: str, token: str) -> Bot:
        """Configure a bot with a fixed username; only this exact token is accepted for its id."""
        m = TOKEN_RE.match(token)
        if not m:
            raise ValueError(f"invalid token for bot {username!r}")
        bot_id = int(m.group(1))
        with self.lock:
            bot = self.bots.get(bot_id)
            if bot is None:
                bot = self.bots[bot_id] = Bot(bot_id, username.lstrip("@"), token, self.lock)
            else:
                bot.username = bot.first_name = username.lstrip("@")
                bot.token = token
            return bot

    def _bot_for_token(self, token: str) -> Bot:
        m = TOKEN_RE.match(token)
        if not m:
            raise ApiError(401, "Unauthorized")
        bot_id = int(m.group(1))
        bot = self.bots.get(bot_id)
        if bot is None:
            bot = self.bots[bot_id] = Bot(bot_id, f"emu_{bot_id}_bot", None, self.lock)
        elif bot.token is not None and not hmac.compare_digest(bot.token, token):
            raise ApiError(401, "Unauthorized")
        return bot

    def resolve_bot(self, ref: Any) -> Bot:
        """Find a bot by username (with or without @), token, or numeric id."""
        text = str(ref if ref is not None else "").strip()
        if not text:
            raise ControlError(400, "bot is required")
        with self.lock:
            if ":" in text:
                try:
                    return self._bot_for_token(text)
                except ApiError:
                    raise ControlError(404, "unknown bot (invalid token)") from None
            name = text.lstrip("@").lower()
            for bot in self.bots.values():
                if bot.username.lower() == name:
                    return bot
            m = re.fullmatch(r"emu_(\d{1,20})_bot", name)
            bot_id = int(m.group(1)) if m else int(text) if text.isdigit() else None
            if bot_id is None:
                raise ControlError(404, f"unknown bot {text!r}")
            bot = self.bots.get(bot_id)
            if bot is None:
                bot = self.bots[bot_id] = Bot(bot_id, f"emu_{bot_id}_bot", None, self.lock)
            return bot

    # --------------------------------------------------------------- Bot API

    def call_api(self, token: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any] | str]:
        """Run one Bot API call; returns (HTTP status, JSON body or raw HTML) or raises DropConnection."""
        bot: Bot | None = None
        try:
            with self.lock:
                bot = self._bot_for_token(token)
                entry = self._methods.get(method.lower())
                name = entry[0] if entry else method
                bot.calls[name] += 1
                if entry is None:
                    raise ApiError(404, "Not Found: method not found")
                fault = self._pick_fault(bot, name, params)
            drop_after = False
            if fault is not None:
                if fault.kind == "slow":
                    time.sleep(fault.delay)
                elif fault.kind == "drop":
                    raise DropConnection()
                elif fault.kind == "drop_after":
                    drop_after = True  # process, then lose the answer: the "did it go through?" case
                elif fault.kind == "502_html":
                    with self.lock:
                        bot.errors[502] += 1
                    return 502, NGINX_502
                else:
                    raise {
                        "429": ApiError(429, f"Too Many Requests: retry after {fault.retry_after}", fault.retry_after),
                        "403": ApiError(403, BLOCKED),
                        "500": ApiError(500, "Internal Server Error"),
                        "502": ApiError(502, "Bad Gateway"),
                    }[fault.kind]
            with self.lock:
                result = (self.groups.route(name, params) or entry[1])(bot, params)
            if drop_after:
                raise DropConnection()
            return 200, {"ok": True, "result": result}
        except ApiError as e:
            if bot is not None:
                with self.lock:
                    bot.errors[e.code] += 1
            return e.code, e.payload()

    def _pick_fault(self, bot: Bot, method: str, params: dict[str, Any]) -> Fault | None:
        for fault in self.faults:
            if not fault.matches(bot.id, method, params):
                continue
            if fault.probability is not None and random.random() >= fault.probability:
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
            fault.fired += 1
            bot.counts["faults_injected"] += 1
            self.faults = [f for f in self.faults if f.remaining is None or f.remaining > 0]
            return fault
        return None

    def _true(self, bot: Bot, p: dict[str, Any]) -> bool:
        return True

    def _get_me(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        return {
            **bot.as_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _enqueue(self, bot: Bot, kind: str, payload: dict[str, Any]) -> int | None:
        # Like Telegram, updates of types the bot did not ask for are never stored.
        allowed = bot.allowed_updates
        if (kind in OPT_IN_UPDATES) if allowed is None else (kind not in allowed):
            bot.counts["dropped_updates"] += 1
            return None
        update_id = bot.next_update_id
        bot.next_update_id += 1
        bot.updates.append({"update_id": update_id, kind: payload})
        bot.updates_cond.notify_all()
        return update_id

    def _confirm(self, bot: Bot, offset: int | None) -> None:
        if offset is None or offset == 0:
            return
        if offset < 0:
            while len(bot.updates) > -offset:
                bot.updates.popleft()
            return
        if offset > bot.next_update_id:
            # The bot confirms ids never issued: it kept its offset from an earlier emulator run.
            # Renumber what is pending instead of silently discarding it forever.
            first = bot.updates[0]["update_id"] if bot.updates else bot.next_update_id
            shift = offset - first
            for update in bot.updates:
                update["update_id"] += shift
            bot.next_update_id += shift
            return
        while bot.updates and bot.updates[0]["update_id"] < offset:
            bot.updates.popleft()

    def _get_updates(self, bot: Bot, p: dict[str, Any]) -> list[dict[str, Any]]:
        if bot.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            )
        offset = _opt_int(p, "offset")
        limit = min(max(_opt_int(p, "limit") or 100, 1), 100)
        timeout = min(max(_opt_float(p, "timeout") or 0.0, 0.0), MAX_LONG_POLL)
        if p.get("allowed_updates") not in (None, ""):
            allowed = json_param(p["allowed_updates"], "allowed_updates")
            if isinstance(allowed, list):
                # An empty list means "the default set"; absence means "keep the previous setting".
                bot.allowed_updates = [str(a) for a in allowed] or None
        self._confirm(bot, offset)
        bot.poll_seq += 1
        seq = bot.poll_seq
        bot.updates_cond.notify_all()  # an older poll still waiting must now answer 409
        deadline = time.monotonic() + timeout
        while not bot.updates and not self.stopping and bot.poll_seq == seq:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            bot.updates_cond.wait(remaining)
        if bot.poll_seq != seq:
            raise ApiError(
                409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
            )
        return [dict(u) for u in itertools.islice(bot.updates, limit)]

    def _set_webhook(self, bot: Bot, p: dict[str, Any]) -> bool:
        bot.webhook_url = str(p.get("url") or "")
        if _bool(p.get("drop_pending_updates")):
            bot.updates.clear()
        return True

    def _delete_webhook(self, bot: Bot, p: dict[str, Any]) -> bool:
        bot.webhook_url = ""
        if _bool(p.get("drop_pending_updates")):
            bot.updates.clear()
        return True

    def _get_webhook_info(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": bot.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(bot.updates),
        }
        if bot.allowed_updates is not None:
            info["allowed_updates"] = list(bot.allowed_updates)
        return info

    def _chat_user(self, bot: Bot, p: dict[str, Any], check_access: bool = True) -> User:
        raw = p.get("chat_id")
        if raw is None or str(raw).strip() == "":
            raise bad_request("chat_id is empty")
        try:
            chat_id = int(str(raw).strip())
        except ValueError:
            raise bad_request("chat not found") from None  # e.g. "@username": not resolvable for private chats
        user = self.users.get(chat_id)
        if user is None:
            raise bad_request("chat not found")
        if check_access:
            if user.deactivated:
                raise ApiError(403, DEACTIVATED)
            if chat_id in bot.blocked:
                raise ApiError(403, BLOCKED)
        return user

    def _message_json(self, bot: Bot, msg: Message) -> dict[str, Any]:
        user = self.users.get(msg.chat_id) or User(msg.chat_id, f"User {msg.chat_id}")
        d: dict[str, Any] = {
            "message_id": msg.message_id,
            "from": bot.as_user() if msg.outgoing else user.as_user(),
            "chat": user.as_chat(),
            "date": msg.date,
        }
        if msg.edit_date:
            d["edit_date"] = msg.edit_date
        d["text"] = msg.plain
        if msg.entities:
            d["entities"] = msg.entities
        if isinstance(msg.options.get("link_preview_options"), dict):
            d["link_preview_options"] = msg.options["link_preview_options"]
        if msg.inline_markup:
            d["reply_markup"] = msg.inline_markup
        self.media_fields(bot, msg, d)
        return d

    def _next_message_id(self, bot: Bot, chat_id: int) -> int:
        n = bot.message_counters.get(chat_id, 0) + 1
        bot.message_counters[chat_id] = n
        return n

    def _rate_check(self, bot: Bot, chat_id: int | None) -> None:
        """Sliding windows: G sends per bot per 1 s; per chat `burst` sends per burst/C seconds."""
        lim = self.limits
        if not lim.enabled:
            return
        now = time.monotonic()
        window = bot.send_times
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= lim.global_per_second:
            self._too_many(bot, window[0] + 1.0 - now)
        chat_window = None
        if chat_id is not None:
            burst = max(lim.per_chat_burst, lim.per_chat_per_second)
            span = burst / lim.per_chat_per_second
            chat_window = bot.chat_send_times.setdefault(chat_id, deque())
            while chat_window and chat_window[0] <= now - span:
                chat_window.popleft()
            if len(chat_window) >= burst:
                self._too_many(bot, chat_window[0] + span - now)
            chat_window.append(now)
        window.append(now)

    def _too_many(self, bot: Bot, wait: float) -> None:
        bot.counts["rate_limited_429"] += 1
        retry = max(1, math.ceil(wait))
        raise ApiError(429, f"Too Many Requests: retry after {retry}", retry)

    def _text(self, p: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]], str | None]:
        text = p.get("text")
        if text is None or str(text) == "":
            raise bad_request("message text is empty")
        text = str(text)
        parse_mode = p.get("parse_mode") or None
        plain, entities = render_text(text, parse_mode, p.get("entities"))
        if not plain.strip():
            raise bad_request("message text is empty")
        if utf16_len(plain) > MAX_TEXT:
            raise bad_request("message is too long")
        return text, plain, entities, parse_mode

    def _send_message(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        user = self._chat_user(bot, p)
        text, plain, entities, parse_mode = self._text(p)
        markup = parse_reply_markup(p.get("reply_markup"))
        options: dict[str, Any] = {}
        for key in ("disable_notification", "protect_content"):
            if p.get(key) not in (None, ""):
                options[key] = _bool(p[key])
        for key in ("link_preview_options", "reply_parameters"):
            if p.get(key) not in (None, ""):
                options[key] = json_param(p[key], key)
        for key in ("reply_to_message_id", "message_thread_id"):
            if p.get(key) not in (None, ""):
                options[key] = _opt_int(p, key)
        self._rate_check(bot, user.id)
        now = time.time()
        msg = Message(
            chat_id=user.id,
            message_id=self._next_message_id(bot, user.id),
            outgoing=True,
            text=text,
            plain=plain,
            entities=entities,
            parse_mode=parse_mode,
            reply_markup=markup,
            date=int(now),
            received_at=now,
            options=options,
        )
        msg.original = {"text": text, "parse_mode": parse_mode, "reply_markup": markup}
        bot.messages.setdefault(user.id, {})[msg.message_id] = msg
        # Like Telegram: a reply keyboard stays under the input field until another one or a removal comes.
        if markup and "keyboard" in markup:
            bot.reply_keyboards[user.id] = {**markup, "message_id": msg.message_id, "hidden": False}
        elif markup and markup.get("remove_keyboard"):
            bot.reply_keyboards.pop(user.id, None)
        bot.counts["sent"] += 1
        self.messages_cond.notify_all()
        return self._message_json(bot, msg)

    def _message_to_edit(self, bot: Bot, p: dict[str, Any]) -> Message:
        if p.get("inline_message_id") and not p.get("chat_id"):
            raise bad_request("MESSAGE_ID_INVALID")  # inline messages are not emulated
        user = self._chat_user(bot, p)
        message_id = _opt_int(p, "message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        msg = bot.messages.get(user.id, {}).get(message_id)
        if msg is None or msg.deleted:
            raise bad_request("message to edit not found")
        if not msg.outgoing:
            raise bad_request("message can't be edited")
        return msg

    def _apply_edit(self, bot: Bot, msg: Message, **changes: Any) -> dict[str, Any]:
        if self.limits.count_edits:
            self._rate_check(bot, None)
        now = time.time()
        for key, value in changes.items():
            setattr(msg, key, value)
        msg.edit_date = int(now)
        msg.edits.append({"text": msg.text, "parse_mode": msg.parse_mode, "reply_markup": msg.reply_markup, "at": now})
        bot.counts["edits"] += 1
        self.messages_cond.notify_all()
        return self._message_json(bot, msg)

    def _edit_message_text(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        msg = self._message_to_edit(bot, p)
        if msg.media:
            raise bad_request("there is no text in the message to edit")
        text, plain, entities, parse_mode = self._text(p)
        # Like Telegram: an edit without reply_markup removes the inline keyboard.
        markup = parse_reply_markup(p.get("reply_markup"), inline_only=True)
        if plain == msg.plain and entities == msg.entities and markup == msg.inline_markup:
            raise bad_request(NOT_MODIFIED)
        return self._apply_edit(bot, msg, text=text, plain=plain, entities=entities, parse_mode=parse_mode, reply_markup=markup)

    def _edit_message_reply_markup(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        msg = self._message_to_edit(bot, p)
        markup = parse_reply_markup(p.get("reply_markup"), inline_only=True)
        if markup == msg.inline_markup:
            raise bad_request(NOT_MODIFIED)
        return self._apply_edit(bot, msg, reply_markup=markup)

    def _delete_message(self, bot: Bot, p: dict[str, Any]) -> bool:
        user = self._chat_user(bot, p, check_access=False)
        message_id = _opt_int(p, "message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        msg = bot.messages.get(user.id, {}).get(message_id)
        if msg is None or msg.deleted:
            raise bad_request("message to delete not found")
        msg.deleted = True
        msg.deleted_at = time.time()
        bot.counts["deleted"] += 1
        self.messages_cond.notify_all()
        return True

    def _answer_callback_query(self, bot: Bot, p: dict[str, Any]) -> bool:
        query = bot.callbacks.get(str(p.get("callback_query_id") or ""))
        now = time.time()
        # Telegram accepts one answer per query, within a short time after the press.
        if query is None or query.answers or now - query.created_at > self.limits.callback_ttl:
            raise bad_request(QUERY_TOO_OLD)
        text = p.get("text")
        if text is not None and len(str(text)) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        query.answers.append(
            {
                "callback_query_id": query.id,
                "user_id": query.user_id,
                "message_id": query.message_id,
                "data": query.data,
                "text": None if text is None else str(text),
                "show_alert": _bool(p.get("show_alert")),
                "url": p.get("url") or None,
                "cache_time": _opt_int(p, "cache_time"),
                "at": now,
            }
        )
        bot.counts["callback_answers"] += 1
        return True

    def _commands_key(self, p: dict[str, Any]) -> tuple[str, str]:
        scope = json_param(p.get("scope") or {"type": "default"}, "scope")
        if not isinstance(scope, dict) or "type" not in scope:
            raise bad_request("can't parse BotCommandScope JSON object")
        key = ",".join(f"{k}={scope[k]}" for k in sorted(scope))
        return key, str(p.get("language_code") or "")

    def _set_my_commands(self, bot: Bot, p: dict[str, Any]) -> bool:
        commands = json_param(p.get("commands") or [], "commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        clean = []
        for c in commands:
            if not isinstance(c, dict) or not re.fullmatch(r"[a-z0-9_]{1,32}", str(c.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description") or "")) <= 256:
                raise bad_request("command description must be non-empty")
            clean.append({"command": c["command"], "description": str(c["description"])})
        bot.commands[self._commands_key(p)] = clean
        return True

    def _get_my_commands(self, bot: Bot, p: dict[str, Any]) -> list[dict[str, Any]]:
        return list(bot.commands.get(self._commands_key(p), []))

    def _delete_my_commands(self, bot: Bot, p: dict[str, Any]) -> bool:
        bot.commands.pop(self._commands_key(p), None)
        return True

    def _set_chat_menu_button(self, bot: Bot, p: dict[str, Any]) -> bool:
        chat_id = None
        if p.get("chat_id") not in (None, ""):
            chat_id = self._chat_user(bot, p, check_access=False).id
        button = json_param(p.get("menu_button") or {"type": "default"}, "menu_button")
        if not isinstance(button, dict) or "type" not in button:
            raise bad_request("can't parse menu button JSON object")
        bot.menu_buttons[chat_id] = button
        return True

    def _get_chat_menu_button(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = None
        if p.get("chat_id") not in (None, ""):
            chat_id = self._chat_user(bot, p, check_access=False).id
        return dict(bot.menu_buttons.get(chat_id) or bot.menu_buttons.get(None) or {"type": "default"})

    def _get_chat(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        user = self._chat_user(bot, p, check_access=False)
        return {**user.as_chat(), "accent_color_id": user.id % 7, "max_reaction_count": 11}

    def _send_chat_action(self, bot: Bot, p: dict[str, Any]) -> bool:
        self._chat_user(bot, p)
        if str(p.get("action") or "") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    # --------------------------------------------------------------- control

    def _ensure_user(self, user_id: int) -> User:
        user = self.users.get(user_id)
        if user is None:
            user = self.users[user_id] = User(user_id, f"User {user_id}")
        return user

    def create_user(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create or update a user (who thereby has started every bot)."""
        user_id = _ctl_int(data, "id")
        assert user_id is not None
        if user_id <= 0:
            raise ControlError(400, "id must be a positive integer (private chats only)")
        with self.lock:
            user = self.users.get(user_id)
            if user is None:
                if not data.get("first_name"):
                    raise ControlError(400, "first_name is required")
                user = self.users[user_id] = User(user_id, str(data["first_name"]))
            if data.get("first_name"):
                user.first_name = str(data["first_name"])
            for key in ("last_name", "username", "language_code"):
                if data.get(key) is not None:
                    setattr(user, key, str(data[key]).lstrip("@") or None)  # "" clears the field
            return asdict(user)

    def list_users(self) -> list[dict[str, Any]]:
        """All users."""
        with self.lock:
            return [asdict(u) for u in sorted(self.users.values(), key=lambda u: u.id)]

    def _active_user(self, bot: Bot, user_id: int) -> User:
        user = self._ensure_user(user_id)
        if user.deactivated:
            raise ControlError(409, f"user {user_id} is deactivated")
        if user_id in bot.blocked:
            raise ControlError(409, f"user {user_id} has blocked the bot; unblock first")
        return user

    def send(self, data: dict[str, Any]) -> dict[str, Any]:
        """The user writes `text` to the bot: enqueue a message update."""
        text = data.get("text")
        if not isinstance(text, str) or not text:
            raise ControlError(400, "text is required")
        with self.lock:
            bot = self.resolve_bot(data.get("bot"))
            user_id = _ctl_int(data, "user_id")
            assert user_id is not None
            user = self._active_user(bot, user_id)
            return self._user_message(bot, user, text)

    def _user_message(self, bot: Bot, user: User, text: str) -> dict[str, Any]:
        now = time.time()
        entities = command_entities(text)
        msg = Message(
            chat_id=user.id,
            message_id=self._next_message_id(bot, user.id),
            outgoing=False,
            text=text,
            plain=text,
            entities=entities,
            parse_mode=None,
            reply_markup=None,
            date=int(now),
            received_at=now,
        )
        bot.messages.setdefault(user.id, {})[msg.message_id] = msg
        keyboard = bot.reply_keyboards.get(user.id)
        if keyboard and keyboard.get("one_time_keyboard"):
            keyboard["hidden"] = True  # a one-time keyboard folds away once the user has written
        update_id = self._enqueue(bot, "message", self._message_json(bot, msg))
        self.messages_cond.notify_all()
        return {"update_id": update_id, "message_id": msg.message_id}

    def open_link(self, data: dict[str, Any]) -> dict[str, Any]:
        """The user opens a `t.me/<bot>?start=<param>` link: the bot it names gets `/start <param>`.

        As in Telegram, the link goes to the bot in its path, whichever chat it was pasted or clicked in.
        """
        url = data.get("url")
        match = _DEEP_LINK.fullmatch(url.strip()) if isinstance(url, str) else None
        if match is None:
            raise ControlError(400, "url must be a t.me link to a bot, like https://t.me/<bot>?start=<parameter>")
        with self.lock:
            bot = self.resolve_bot(match.group("bot"))
            if bot.token is None:
                raise ControlError(404, f"unknown bot {match.group('bot')!r}")
            user_id = _ctl_int(data, "user_id")
            assert user_id is not None
            user = self._active_user(bot, user_id)
            text = f"/start {match.group('start')}" if match.group("start") else "/start"
            return {"bot": bot.username, "text": text, **self._user_message(bot, user, text)}

    def keyboard(self, data: dict[str, Any]) -> dict[str, Any]:
        """The reply keyboard shown under the chat's input field (None when there is none or it folded away)."""
        with self.lock:
            bot = self.resolve_bot(data.get("bot"))
            chat_id = _ctl_int(data, "chat_id")
            assert chat_id is not None
            keyboard = bot.reply_keyboards.get(chat_id)
            return {"bot": bot.username, "chat_id": chat_id, "keyboard": None if not keyboard or keyboard["hidden"] else keyboard}

    def mark_read(self, data: dict[str, Any]) -> dict[str, Any]:
        """The user has seen the chat up to `message_id` (default: its newest message)."""
        with self.lock:
            bot = self.resolve_bot(data.get("bot"))
            user_id = _ctl_int(data, "user_id")
            assert user_id is not None
            newest = max(bot.messages.get(user_id, {}), default=0)
            up_to = min(_ctl_int(data, "message_id", False) or newest, newest)
            bot.read_up_to[user_id] = max(bot.read_up_to.get(user_id, 0), up_to)
            return {"bot": bot.username, "user_id": user_id, "read_up_to": bot.read_up_to[user_id]}

    def unread(self, data: dict[str, Any]) -> dict[str, int]:
        """Per bot, how many of its messages to the user the user has not seen yet."""
        with self.lock:
            user_id = _ctl_int(data, "user_id")
            assert user_id is not None
            counts = {}
            for bot in sorted(self.bots.values(), key=lambda b: b.id):
                seen = bot.read_up_to.get(user_id, 0)
                chat = bot.messages.get(user_id, {}).values()
                counts[bot.username] = sum(1 for m in chat if m.outgoing and not m.deleted and m.message_id > seen)
            return counts

    def press(self, data: dict[str, Any]) -> dict[str, Any]:
        """The user presses an inline button: enqueue a callback_query update."""
        callback_data = data.get("callback_data")
        button_text = data.get("button_text")
        force = _bool(data.get("force"))
        with self.lock:
            bot = self.resolve_bot(data.get("bot"))
            user_id = _ctl_int(data, "user_id")
            message_id = _ctl_int(data, "message_id")
            assert user_id is not None and message_id is not None
            user = self._active_user(bot, user_id)
            msg = bot.messages.get(user_id, {}).get(message_id)
            live = msg if msg is not None and not msg.deleted and msg.outgoing else None
            if not force:
                if callback_data is None and button_text is None:
                    raise ControlError(400, "callback_data or button_text is required")
                if live is None:
                    raise ControlError(400, f"bot message {message_id} not found in chat {user_id}")
                button = self._find_button(live, callback_data, button_text)
                if "callback_data" not in button:
                    raise ControlError(400, f"button {button.get('text')!r} is not a callback button")
                callback_data = button["callback_data"]
            elif callback_data is None and button_text is not None and live is not None:
                callback_data = self._find_button(live, None, button_text).get("callback_data")
            if live is not None:
                message = self._message_json(bot, live)
            else:
                # Telegram's InaccessibleMessage: date 0 marks it.
                message = {"chat": user.as_chat(), "message_id": message_id, "date": 0}
            query_id = str(next(self._callback_ids))
            payload: dict[str, Any] = {
                "id": query_id,
                "from": user.as_user(),
                "message": message,
                "chat_instance": self._chat_instance(bot, user_id),
            }
            if callback_data is not None:
                payload["data"] = str(callback_data)
            update_id = self._enqueue(bot, "callback_query", payload)
            bot.callbacks[query_id] = CallbackQuery(query_id, user_id, message_id, payload.get("data"), time.time())
            return {"update_id": update_id, "callback_query_id": query_id}

    @staticmethod
    def _find_button(msg: Message, callback_data: Any, button_text: Any) -> dict[str, Any]:
        rows = (msg.inline_markup or {}).get("inline_keyboard", [])
        for row in rows:
            for button in row:
                if callback_data is not None and button.get("callback_data") == str(callback_data):
                    return button
                if callback_data is None and button_text is not None and button.get("text") == str(button_text):
                    return button
        current = [(b.get("text"), b.get("callback_data")) for row in rows for b in row]
        wanted = f"callback_data={callback_data!r}" if callback_data is not None else f"text={button_text!r}"
        raise ControlError(400, f"message {msg.message_id} has no inline button with {wanted}; current buttons: {current}")

    @staticmethod
    def _chat_instance(bot: Bot, chat_id: int) -> str:
        digest = hashlib.blake2b(f"{bot.id}:{chat_id}".encode(), digest_size=8).hexdigest()
        return str(int(digest[:15], 16))

    def _member_update(self, bot: Bot, user: User, old: str, new: str) -> int | None:
        def member(status: str) -> dict[str, Any]:
            d: dict[str, Any] = {"user": bot.as_user(), "status": status}
            if status == "kicked":
                d["until_date"] = 0
            return d

        payload = {
            "chat": user.as_chat(),
            "from": user.as_user(),
            "date": int(time.time()),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }
        return self._enqueue(bot, "my_chat_member", payload)

    def block(self, data: dict[str, Any]) -> dict[str, Any]:
        """The user blocks the bot: my_chat_member update, later sends get 403."""
        with self.lock:
            bot = self.resolve_bot(data.get("bot"))
            user_id = _ctl_int(data, "user_id")
            assert user_id is not None
            user = self._ensure_user(user_id)
            if user_id in bot.blocked:
                return {"update_id": None, "changed": False}
            bot.blocked.add(user_id)
            return {"update_id": self._member_update(bot, user, "member", "kicked"), "changed": True}

    def unblock(self, data: dict[str, Any]) -> dict[str, Any]:
        """The user unblocks (restarts) the bot: my_chat_member back to member; optionally a /start."""
        with self.lock:
            bot = self.resolve_bot(data.get("bot"))
            user_id = _ctl_int(data, "user_id")
            assert user_id is not None
            user = self._ensure_user(user_id)
            result: dict[str, Any] = {"update_id": None, "changed": False}
            if user_id in bot.blocked:
                bot.blocked.discard(user_id)
                result = {"update_id": self._member_update(bot, user, "kicked", "member"), "changed": True}
            if _bool(data.get("send_start")):
                result["start"] = self._user_message(bot, user, "/start")
            return result

    def deactivate(self, data: dict[str, Any], active: bool = False) -> dict[str, Any]:
        """Delete (or, with active=True, restore) the user's account: sends get 403 user is deactivated."""
        with self.lock:
            user_id = _ctl_int(data, "user_id")
            assert user_id is not None
            user = self._ensure_user(user_id)
            user.deactivated = not active
            return asdict(user)

    def _record(self, bot: Bot, msg: Message) -> dict[str, Any]:
        return {
            "bot": bot.username,
            "chat_id": msg.chat_id,
            "message_id": msg.message_id,
            "from": "bot" if msg.outgoing else "user",
            "text": msg.text,
            "plain_text": msg.plain,
            "parse_mode": msg.parse_mode,
            "entities": msg.entities,
            "reply_markup": msg.reply_markup,
            "date": msg.date,
            "received_at": msg.received_at,
            "edits": [dict(e) for e in msg.edits],
            "edit_date": msg.edit_date,
            "original": msg.original,
            "deleted": msg.deleted,
            "deleted_at": msg.deleted_at,
            "options": dict(msg.options),
            "media": self.media_record(msg),
        }

    def _outgoing(self, bot: Bot, chat_id: int | None, since: int | None) -> list[Message]:
        if chat_id is not None:
            msgs = [m for m in bot.messages.get(chat_id, {}).values() if m.outgoing]
        else:
            msgs = sorted(
                (m for chat in bot.messages.values() for m in chat.values() if m.outgoing),
                key=lambda m: (m.received_at, m.chat_id, m.message_id),
            )
        if since is not None:
            msgs = [m for m in msgs if m.message_id > since]
        return msgs

    def messages(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Messages the bot sent (to one chat ordered by message_id, or all chronologically)."""
        with self.lock:
            bot = self.resolve_bot(data.get("bot"))
            msgs = self._outgoing(bot, _ctl_int(data, "chat_id", False), _ctl_int(data, "since_message_id", False))
            return [self._record(bot, m) for m in msgs]

    def chat(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """The whole conversation in one chat, both directions, by message_id."""
        with self.lock:
            bot = self.resolve_bot(data.get("bot"))
            chat_id = _ctl_int(data, "chat_id")
            assert chat_id is not None
            since = _ctl_int(data, "since_message_id", False) or 0
            return [self._record(bot, m) for m in bot.messages.get(chat_id, {}).values() if m.message_id > since]

    def wait(self, data: dict[str, Any]) -> dict[str, Any]:
        """Block until the bot has sent >= count messages (to chat_id, after since_message_id) or timeout."""
        count = _ctl_int(data, "count", False) or 1
        timeout = min(max(_ctl_float(data, "timeout") or 10.0, 0.0), MAX_CONTROL_WAIT)
        deadline = time.monotonic() + timeout
        with self.lock:
            bot = self.resolve_bot(data.get("bot"))
            chat_id = _ctl_int(data, "chat_id", False)
            since = _ctl_int(data, "since_message_id", False)
            while True:
                msgs = self._outgoing(bot, chat_id, since)
                remaining = deadline - time.monotonic()
                if len(msgs) >= count or remaining <= 0 or self.stopping:
                    break
                self.messages_cond.wait(remaining)
            return {"messages": [self._record(bot, m) for m in msgs], "timed_out": len(msgs) < count}

    def callback_answers(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Recorded answerCallbackQuery calls (optionally of one query)."""
        with self.lock:
            bot = self.resolve_bot(data.get("bot"))
            wanted = data.get("callback_query_id")
            queries = [bot.callbacks[str(wanted)]] if wanted and str(wanted) in bot.callbacks else []
            if not wanted:
                queries = list(bot.callbacks.values())
            answers = [dict(a) for q in queries for a in q.answers]
            return sorted(answers, key=lambda a: a["at"])

    def pending_updates(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Updates queued for the bot and not yet confirmed."""
        with self.lock:
            return [dict(u) for u in self.resolve_bot(data.get("bot")).updates]

    def add_fault(self, data: dict[str, Any]) -> dict[str, Any]:
        """Register a fault-injection rule."""
        kind = str(data.get("kind") or "")
        if kind not in FAULT_KINDS:
            raise ControlError(400, f"kind must be one of {', '.join(FAULT_KINDS)}")
        count = _ctl_int(data, "count", False)
        probability = _ctl_float(data, "probability")
        if probability is not None and not 0.0 <= probability <= 1.0:
            raise ControlError(400, "probability must be within [0, 1]")
        if count is not None and count < 1:
            raise ControlError(400, "count must be >= 1")
        retry_after = _ctl_int(data, "retry_after", False)
        delay = _ctl_float(data, "delay")
        with self.lock:
            bot = self.resolve_bot(data["bot"]) if data.get("bot") not in (None, "") else None
            fault = Fault(
                id=next(self._fault_ids),
                kind=kind,
                bot_id=bot.id if bot else None,
                bot=bot.username if bot else None,
                method=str(data["method"]).lower() if data.get("method") else None,
                chat_id=str(data["chat_id"]).strip() if data.get("chat_id") not in (None, "") else None,
                # Without count: one call, or unlimited when probabilistic (until cleared).
                remaining=count if count is not None else (None if probability is not None else 1),
                probability=probability,
                retry_after=max(1, retry_after if retry_after is not None else 5),
                delay=max(0.0, delay if delay is not None else 1.0),
            )
            self.faults.append(fault)
            return fault.public()

    def list_faults(self) -> list[dict[str, Any]]:
        """Active fault rules."""
        with self.lock:
            return [f.public() for f in self.faults]

    def clear_faults(self, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Remove all fault rules (or one, by id)."""
        with self.lock:
            fault_id = _ctl_int(data or {}, "id", False)
            before = len(self.faults)
            if fault_id is None:
                self.faults = []
            else:
                self.faults = [f for f in self.faults if f.id != fault_id]
            return {"removed": before - len(self.faults)}

    def set_limits(self, data: dict[str, Any]) -> dict[str, Any]:
        """Switch rate limiting on/off and change its numbers at runtime."""
        with self.lock:
            lim = replace(self.limits)
            if data.get("enabled") is not None:
                lim.enabled = _bool(data["enabled"])
            if data.get("count_edits") is not None:
                lim.count_edits = _bool(data["count_edits"])
            for key in ("global_per_second", "per_chat_per_second", "per_chat_burst"):
                value = _ctl_int(data, key, False)
                if value is not None:
                    if value < 1:
                        raise ControlError(400, f"{key} must be >= 1")
                    setattr(lim, key, value)
            ttl = _ctl_float(data, "callback_ttl")
            if ttl is not None:
                lim.callback_ttl = ttl
            self.limits = lim
            return asdict(lim)

    def get_limits(self) -> dict[str, Any]:
        """Current rate-limit settings."""
        with self.lock:
            return asdict(self.limits)

    def stats(self, data: dict[str, Any]) -> dict[str, Any]:
        """Counters of one bot (or of every bot, keyed by username, without `bot`)."""
        with self.lock:
            if data.get("bot") in (None, ""):
                return {b.username: self._bot_stats(b) for b in self.bots.values()}
            return self._bot_stats(self.resolve_bot(data["bot"]))

    @staticmethod
    def _bot_stats(bot: Bot) -> dict[str, Any]:
        c = bot.counts
        return {
            "sent": c["sent"],
            "edits": c["edits"],
            "deleted": c["deleted"],
            "calls": dict(bot.calls),
            "rate_limited_429": c["rate_limited_429"],
            "faults_injected": c["faults_injected"],
            "get_updates_calls": bot.calls["getUpdates"],
            "pending_updates": len(bot.updates),
            "dropped_updates": c["dropped_updates"],
            "callback_answers": c["callback_answers"],
            "uploads": c["uploads"],
            "downloads": c["downloads"],
            "errors": {str(code): n for code, n in sorted(bot.errors.items())},
        }

    def list_bots(self) -> list[dict[str, Any]]:
        """Known bots (configured ones and those seen via a token); never their tokens."""
        with self.lock:
            return [b.public() for b in sorted(self.bots.values(), key=lambda b: b.id)]

    def reset(self) -> dict[str, Any]:
        """Forget users, messages, updates, faults, stats; keep bots and their own settings."""
        with self.lock:
            for bot in self.bots.values():
                bot.clear()
            self.users.clear()
            self.groups.clear()
            self.faults.clear()
            self.limits = replace(self._initial_limits)
            self.messages_cond.notify_all()
            return {"ok": True}

    def shutdown(self) -> None:
        """Release every long poll and wait so that the server can stop promptly."""
        with self.lock:
            self.stopping = True
            self.messages_cond.notify_all()
            for bot in self.bots.values():
                bot.updates_cond.notify_all()
