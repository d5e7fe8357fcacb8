"""Python client of the emulator's control API (plays the human user in tests)."""

from __future__ import annotations

import base64
import time
from typing import Any

import requests


class EmulatorError(RuntimeError):
    """A control API call was refused (HTTP status >= 400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class EmulatorClient:
    """Requests-based client of `/control/*`; `bot` arguments take a username or a token."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    # ----------------------------------------------------------- plumbing

    def _call(self, method: str, path: str, timeout: float | None = None, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base_url}/control/{path}", timeout=timeout or self.timeout, **kwargs)
        try:
            payload = response.json()
        except ValueError:
            payload = {"error": response.text}
        if response.status_code >= 400:
            message = payload.get("error") if isinstance(payload, dict) else None
            raise EmulatorError(response.status_code, str(message or payload))
        return payload

    def _get(self, path: str, timeout: float | None = None, **params: Any) -> Any:
        return self._call("GET", path, timeout, params={k: v for k, v in params.items() if v is not None})

    def _post(self, path: str, **body: Any) -> Any:
        return self._call("POST", path, json={k: v for k, v in body.items() if v is not None})

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def __enter__(self) -> EmulatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def api_url(self) -> str:
        """Value for telebot.apihelper.API_URL."""
        return self.base_url + "/bot{0}/{1}"

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Poll /control/health until the emulator answers (e.g. after starting it as a subprocess)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._get("health", timeout=1.0)
                return
            except (requests.ConnectionError, requests.Timeout):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    # -------------------------------------------------------------- users

    def create_user(
        self,
        user_id: int,
        first_name: str = "Test",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> dict[str, Any]:
        """Create or update a user; they can then be messaged by every bot."""
        return self._post(
            "users",
            id=user_id,
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
        )

    def users(self) -> list[dict[str, Any]]:
        """All users."""
        return self._get("users")

    def send(self, bot: str, user_id: int, text: str) -> dict[str, Any]:
        """The user writes to the bot; returns {"update_id", "message_id"}."""
        return self._post("send", bot=bot, user_id=user_id, text=text)

    def press(
        self,
        bot: str,
        user_id: int,
        message_id: int,
        callback_data: str | None = None,
        button_text: str | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """The user presses an inline button; returns {"update_id", "callback_query_id"}."""
        return self._post(
            "press",
            bot=bot,
            user_id=user_id,
            message_id=message_id,
            callback_data=callback_data,
            button_text=button_text,
            force=force or None,
        )

    def block(self, bot: str, user_id: int) -> dict[str, Any]:
        """The user blocks the bot."""
        return self._post("block", bot=bot, user_id=user_id)

    def unblock(self, bot: str, user_id: int, send_start: bool = False) -> dict[str, Any]:
        """The user unblocks (restarts) the bot; send_start also sends "/start"."""
        return self._post("unblock", bot=bot, user_id=user_id, send_start=send_start or None)

    def deactivate(self, user_id: int) -> dict[str, Any]:
        """The user deletes their account."""
        return self._post("deactivate", user_id=user_id)

    def reactivate(self, user_id: int) -> dict[str, Any]:
        """Undo deactivate()."""
        return self._post("reactivate", user_id=user_id)

    # -------------------------------------------------------------- reads

    def bots(self) -> list[dict[str, Any]]:
        """Known bots: [{"id", "username", "configured"}] (never tokens)."""
        return self._get("bots")

    def messages(self, bot: str, chat_id: int | None = None, since_message_id: int | None = None) -> list[dict[str, Any]]:
        """Messages the bot sent (to one chat, or all)."""
        return self._get("messages", bot=bot, chat_id=chat_id, since_message_id=since_message_id)

    def last_message(self, bot: str, chat_id: int) -> dict[str, Any] | None:
        """The bot's latest message to the chat, or None."""
        msgs = self.messages(bot, chat_id)
        return msgs[-1] if msgs else None

    def chat(self, bot: str, chat_id: int, since_message_id: int | None = None) -> list[dict[str, Any]]:
        """The conversation in both directions ("from": "bot" | "user")."""
        return self._get("chat", bot=bot, chat_id=chat_id, since_message_id=since_message_id)

    def callback_answers(self, bot: str, callback_query_id: str | None = None) -> list[dict[str, Any]]:
        """Recorded answerCallbackQuery calls."""
        return self._get("callback_answers", bot=bot, callback_query_id=callback_query_id)

    def pending_updates(self, bot: str) -> list[dict[str, Any]]:
        """Updates not yet confirmed by the bot."""
        return self._get("updates", bot=bot)

    def stats(self, bot: str | None = None) -> dict[str, Any]:
        """Counters of a bot (or of all bots keyed by username)."""
        return self._get("stats", bot=bot)

    def wait_for_messages(
        self,
        bot: str,
        chat_id: int | None,
        count: int = 1,
        timeout: float = 10.0,
        since_message_id: int | None = None,
        raise_on_timeout: bool = True,
    ) -> list[dict[str, Any]]:
        """Wait until the bot has sent >= count messages to the chat; TimeoutError otherwise (by default)."""
        params = {"bot": bot, "chat_id": chat_id, "count": count, "timeout": timeout, "since_message_id": since_message_id}
        # The HTTP timeout must outlast the server-side wait.
        result = self._call("GET", "wait", timeout + 10.0, params={k: v for k, v in params.items() if v is not None})
        messages: list[dict[str, Any]] = result["messages"]
        if result["timed_out"] and raise_on_timeout:
            texts = [m["plain_text"] for m in messages]
            raise TimeoutError(
                f"bot {bot} sent {len(messages)} of {count} expected message(s) to chat {chat_id} within {timeout}s: {texts}"
            )
        return messages

    # ------------------------------------------------------ faults/limits

    def faults(
        self,
        kind: str,
        bot: str | None = None,
        method: str | None = None,
        chat_id: int | None = None,
        count: int | None = None,
        probability: float | None = None,
        retry_after: int | None = None,
        delay: float | None = None,
    ) -> dict[str, Any]:
        """Inject a fault: kind in 429|403|500|502|502_html|slow|drop|drop_after; returns the rule."""
        return self._post(
            "faults",
            kind=kind,
            bot=bot,
            method=method,
            chat_id=chat_id,
            count=count,
            probability=probability,
            retry_after=retry_after,
            delay=delay,
        )

    inject_fault = faults

    def list_faults(self) -> list[dict[str, Any]]:
        """Active fault rules (with remaining counts)."""
        return self._get("faults")

    def clear_faults(self, fault_id: int | None = None) -> dict[str, Any]:
        """Remove all fault rules (or one by id)."""
        params = {"id": fault_id} if fault_id is not None else None
        return self._call("DELETE", "faults", params=params)

    def limits(
        self,
        enabled: bool | None = None,
        global_per_second: int | None = None,
        per_chat_per_second: int | None = None,
        per_chat_burst: int | None = None,
        count_edits: bool | None = None,
        callback_ttl: float | None = None,
    ) -> dict[str, Any]:
        """Change rate-limit settings (None = unchanged); returns the current settings."""
        return self._post(
            "limits",
            enabled=enabled,
            global_per_second=global_per_second,
            per_chat_per_second=per_chat_per_second,
            per_chat_burst=per_chat_burst,
            count_edits=count_edits,
            callback_ttl=callback_ttl,
        )

    def reset(self) -> None:
        """Forget users, messages, updates, faults and stats (bots stay)."""
        self._post("reset")

    # ------------------------------------------------------------- media

    def send_media(self, bot: str, user_id: int, type: str, data: bytes | None = None, **fields: Any) -> dict[str, Any]:  # noqa: A002
        """The user sends a file (`data`; or `size=N` for a filler file), a location, a venue or a contact."""
        body: dict[str, Any] = {"bot": bot, "user_id": user_id, "type": type, **fields}
        if data is not None:
            body["data"] = base64.b64encode(data).decode()
        return self._post("send_media", **body)

    def send_album(self, bot: str, user_id: int, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The user sends an album: items of {type, data (bytes), caption}; one update per item, one media_group_id."""
        album = [{**item, "data": base64.b64encode(item["data"]).decode()} if "data" in item else item for item in items]
        return self._post("send_media", bot=bot, user_id=user_id, album=album)["messages"]

    def edit(
        self, bot: str, user_id: int, message_id: int, text: str | None = None, caption: str | None = None
    ) -> dict[str, Any]:
        """The user edits their message (text, or the caption of a media message): an edited_message update."""
        return self._post("edit", bot=bot, user_id=user_id, message_id=message_id, text=text, caption=caption)

    def file_bytes(self, file_unique_id: str) -> bytes:
        """The bytes of a stored file (what a user sees in a media message)."""
        response = self.session.get(f"{self.base_url}/media/{file_unique_id}", timeout=self.timeout)
        if response.status_code != 200:
            raise EmulatorError(response.status_code, "no such file")
        return response.content

    # ------------------------------------------------------------- helpers

    @staticmethod
    def buttons(message: dict[str, Any]) -> list[tuple[str, str | None]]:
        """(text, callback_data) of each button of the message's current inline keyboard."""
        markup = message.get("reply_markup") or {}
        return [(b.get("text", ""), b.get("callback_data")) for row in markup.get("inline_keyboard", []) for b in row]

    # ------------------------------------------------- groups and topics (groups.py)

    def create_group(
        self, user_id: int, title: str = "Staff", kind: str = "supergroup", is_forum: bool | None = None
    ) -> dict[str, Any]:
        """`user_id` creates a group (`kind` supergroup, with topics unless told otherwise, or group) and owns it."""
        return self._post("groups", user_id=user_id, title=title, type=kind, is_forum=is_forum)

    def group(self, chat_id: int) -> dict[str, Any]:
        """A group's members, topics and messages."""
        return self._get("group", chat_id=chat_id)

    def groups(self) -> list[dict[str, Any]]:
        return self._get("groups")

    def set_member(
        self,
        chat_id: int,
        *,
        bot: str | None = None,
        member_id: int | None = None,
        status: str = "member",
        can_manage_topics: bool | None = None,
    ) -> dict[str, Any]:
        """Add, promote, demote or remove a bot (by username or token) or a user in a group."""
        return self._post(
            "group/member", chat_id=chat_id, bot=bot, member_id=member_id, status=status, can_manage_topics=can_manage_topics
        )

    def set_forum(self, chat_id: int, is_forum: bool = True) -> dict[str, Any]:
        return self._post("group/forum", chat_id=chat_id, is_forum=is_forum)

    def group_send(self, chat_id: int, user_id: int, text: str, message_thread_id: int | None = None) -> dict[str, Any]:
        """A member writes in the group (in a topic with `message_thread_id`)."""
        return self._post("group/send", chat_id=chat_id, user_id=user_id, text=text, message_thread_id=message_thread_id)

    def topic(
        self, chat_id: int, user_id: int, action: str, message_thread_id: int | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """A member creates, closes, reopens, deletes or renames a topic."""
        return self._post(
            "group/topic", chat_id=chat_id, user_id=user_id, action=action, message_thread_id=message_thread_id, name=name
        )

    def migrate(self, chat_id: int, is_forum: bool = False) -> dict[str, Any]:
        """The owner upgrades a basic group to a supergroup: returns the new group."""
        return self._post("group/migrate", chat_id=chat_id, is_forum=is_forum)

    # ------------------------------------------------- media in groups (groups.py)

    def group_send_media(
        self,
        chat_id: int,
        user_id: int,
        type: str,  # noqa: A002
        data: bytes | None = None,
        message_thread_id: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A member sends a file (`data`; or `size=N`), a location, a venue or a contact in the group (in a topic)."""
        body: dict[str, Any] = {"chat_id": chat_id, "user_id": user_id, "type": type, "message_thread_id": message_thread_id}
        if data is not None:
            body["data"] = base64.b64encode(data).decode()
        return self._post("group/send_media", **body, **fields)

    def group_send_album(
        self, chat_id: int, user_id: int, items: list[dict[str, Any]], message_thread_id: int | None = None
    ) -> list[dict[str, Any]]:
        """A member sends an album in the group: items of {type, data (bytes), caption}; one update per item."""
        album = [{**item, "data": base64.b64encode(item["data"]).decode()} if "data" in item else item for item in items]
        return self._post("group/send_media", chat_id=chat_id, user_id=user_id, album=album, message_thread_id=message_thread_id)[
            "messages"
        ]
