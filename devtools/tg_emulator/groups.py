"""Groups in the emulator: basic groups and supergroups, forum topics, members with admin rights, chat migration.

A group's chat id is negative (a basic group -4…, a supergroup -100…); its message ids are one sequence shared by
every member, as in Telegram. Bots that are members get `message` updates for what is said there: all of it when
they are admins, else (privacy mode) only commands and service messages. A user's "Upgrade to supergroup"
(`migrate`) makes a new supergroup; the old id then answers every call with 400 and
`parameters.migrate_to_chat_id`, and both chats get their migrate_to/from_chat_id service messages.

Deviation from Telegram, kept on purpose: a closed topic refuses every sender with TOPIC_CLOSED (in Telegram an
admin may still write there), so that "a closed topic is re-opened as a new one" can be tried.

Lives apart from `core.py`: `Emulator` owns one `Groups` (`emu.groups`), which adds its Bot API methods to the
method table and answers the chat-bound ones (sendMessage, getChat, …) whenever their chat_id is a group's.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .formatting import ApiError, bad_request, command_entities, parse_reply_markup
from .media import FILE_METHODS, NO_CAPTION, Caption

if TYPE_CHECKING:
    from .core import Bot, Emulator

MEMBER_STATUSES = ("creator", "administrator", "member", "left", "kicked")
PRESENT = ("creator", "administrator", "member")
TOPIC_COLORS = (0x6FB9F0, 0xFFD67E, 0xCB86DB, 0x8EEE98, 0xFF93B2, 0xFB6F5F)
NOT_MODIFIED_TOPIC = "TOPIC_NOT_MODIFIED"


class Migrated(ApiError):
    """400 for a basic group that became a supergroup: Telegram names the new chat in `parameters`."""

    def __init__(self, new_id: int) -> None:
        super().__init__(400, "Bad Request: group chat was upgraded to a supergroup chat")
        self.new_id = new_id

    def payload(self) -> dict[str, Any]:
        body = super().payload()
        body["parameters"] = {"migrate_to_chat_id": self.new_id}
        return body


@dataclass
class Member:
    """A user or a bot in a group, with the admin rights the code asks about."""

    id: int
    is_bot: bool
    status: str = "member"
    can_manage_topics: bool = False

    def as_member(self, user: dict[str, Any]) -> dict[str, Any]:
        """Bot API ChatMember."""
        d: dict[str, Any] = {"user": user, "status": self.status}
        if self.status in ("creator", "administrator"):
            admin = self.status == "creator"
            d.update(
                is_anonymous=False,
                can_be_edited=False,
                can_manage_chat=True,
                can_delete_messages=True,
                can_manage_video_chats=admin,
                can_restrict_members=True,
                can_promote_members=admin,
                can_change_info=True,
                can_invite_users=True,
                can_post_stories=admin,
                can_edit_stories=admin,
                can_delete_stories=admin,
                can_pin_messages=True,
                can_manage_topics=admin or self.can_manage_topics,
            )
        if self.status == "kicked":
            d["until_date"] = 0
        return d


@dataclass
class Topic:
    thread_id: int
    name: str
    icon_color: int
    created_by: int
    closed: bool = False
    deleted: bool = False

    def public(self) -> dict[str, Any]:
        return {"message_thread_id": self.thread_id, "name": self.name, "icon_color": self.icon_color}


@dataclass
class GroupMessage:
    message_id: int
    sender_id: int
    from_bot: bool
    date: int
    thread_id: int | None = None
    text: str | None = None  # as sent, markup included
    plain: str | None = None  # as members see it
    entities: list[dict[str, Any]] = field(default_factory=list)
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    service: dict[str, Any] | None = None  # e.g. {"forum_topic_created": {...}}
    edits: list[dict[str, Any]] = field(default_factory=list)
    edit_date: int | None = None
    deleted: bool = False
    media: dict[str, Any] | None = None  # as media.py stores it on a private message (a file's unique id, a location…)


@dataclass
class Group:
    id: int
    title: str
    type: str  # group | supergroup
    is_forum: bool
    members: dict[int, Member] = field(default_factory=dict)
    messages: dict[int, GroupMessage] = field(default_factory=dict)
    topics: dict[int, Topic] = field(default_factory=dict)
    last_message_id: int = 0
    migrated_to: int | None = None

    def as_chat(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "title": self.title, "type": self.type}
        if self.is_forum:
            d["is_forum"] = True
        return d

    def next_id(self) -> int:
        self.last_message_id += 1
        return self.last_message_id


class Groups:
    """Every group of one emulator (state guarded by the emulator's lock)."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.chats: dict[int, Group] = {}
        self._basic_ids = itertools.count(4_000_000_001)
        self._super_ids = itertools.count(1_000_000_000_001)

    def clear(self) -> None:
        """Forget every group (control reset)."""
        self.chats.clear()

    # --- the Bot API ---------------------------------------------------------------------------------

    def methods(self) -> dict[str, Any]:
        """Bot API methods that exist for groups only."""
        return {
            "createForumTopic": self._create_topic,
            "editForumTopic": self._edit_topic,
            "closeForumTopic": lambda bot, p: self._close_topic(bot, p, True),
            "reopenForumTopic": lambda bot, p: self._close_topic(bot, p, False),
            "deleteForumTopic": self._delete_topic,
            "getChatMember": self._get_chat_member,
        }

    def route(self, method: str, params: dict[str, Any]) -> Any:
        """The group version of a chat-bound method when `chat_id` is a group's (negative) id, else None."""
        handlers = {
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "deletemessage": self._delete_message,
            "getchat": self._get_chat,
            "sendchataction": lambda bot, p: bool(self._chat(bot, p)),
        }
        handler = handlers.get(method.lower()) or self._media_route(method)
        if handler is None:
            return None
        try:
            chat_id = int(str(params.get("chat_id", "")).strip())
        except ValueError:
            return None
        return handler if chat_id < 0 else None

    def _chat(self, bot: Bot, p: dict[str, Any], member: bool = True) -> Group:
        try:
            chat_id = int(str(p.get("chat_id", "")).strip())
        except ValueError:
            raise bad_request("chat not found") from None
        group = self.chats.get(chat_id)
        if group is None:
            raise bad_request("chat not found")
        if group.migrated_to is not None:
            raise Migrated(group.migrated_to)
        if member:
            me = group.members.get(bot.id)
            if me is None or me.status not in PRESENT:
                kind = "supergroup" if group.type == "supergroup" else "group"
                if me is not None and me.status == "kicked":
                    raise ApiError(403, f"Forbidden: bot was kicked from the {kind} chat")
                raise ApiError(403, f"Forbidden: bot is not a member of the {kind} chat")
        return group

    def _thread(self, group: Group, p: dict[str, Any]) -> int | None:
        raw = p.get("message_thread_id")
        if raw in (None, "", 0, "0"):
            return None
        try:
            thread = int(raw)
        except (TypeError, ValueError):
            raise bad_request("invalid message_thread_id specified") from None
        topic = group.topics.get(thread) if group.is_forum else None
        if topic is None or topic.deleted:
            raise bad_request("message thread not found")
        if topic.closed:
            raise bad_request("TOPIC_CLOSED")
        return thread

    def _rights(self, bot: Bot, group: Group, what: str) -> None:
        me = group.members[bot.id]
        if not (me.status == "creator" or (me.status == "administrator" and me.can_manage_topics)):
            raise bad_request(f"not enough rights to {what}")

    def _topic(self, group: Group, p: dict[str, Any]) -> Topic:
        if not group.is_forum:
            raise bad_request("the chat is not a forum")
        try:
            thread = int(p.get("message_thread_id") or 0)
        except (TypeError, ValueError):
            thread = 0
        topic = group.topics.get(thread)
        if topic is None or topic.deleted:
            raise bad_request("TOPIC_ID_INVALID")
        return topic

    def _send_message(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        group = self._chat(bot, p)
        thread = self._thread(group, p)
        text, plain, entities, parse_mode = self.emu._text(p)
        markup = parse_reply_markup(p.get("reply_markup"))
        self.emu._rate_check(bot, group.id)
        msg = GroupMessage(
            message_id=group.next_id(),
            sender_id=bot.id,
            from_bot=True,
            date=int(time.time()),
            thread_id=thread,
            text=text,
            plain=plain,
            entities=entities,
            parse_mode=parse_mode,
            reply_markup=markup,
        )
        group.messages[msg.message_id] = msg
        bot.counts["sent"] += 1
        self._spread(group, msg, skip=bot.id)
        return self._json(group, msg)

    def _own_message(self, bot: Bot, group: Group, p: dict[str, Any], what: str) -> GroupMessage:
        try:
            message_id = int(p.get("message_id") or 0)
        except (TypeError, ValueError):
            message_id = 0
        msg = group.messages.get(message_id)
        if msg is None or msg.deleted:
            raise bad_request(f"message to {what} not found")
        return msg

    def _edit_message_text(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        group = self._chat(bot, p)
        msg = self._own_message(bot, group, p, "edit")
        if msg.sender_id != bot.id or msg.service is not None:
            raise bad_request("message can't be edited")
        text, plain, entities, parse_mode = self.emu._text(p)
        markup = parse_reply_markup(p.get("reply_markup"), inline_only=True)
        if plain == msg.plain and entities == msg.entities and markup == msg.reply_markup:
            raise bad_request("message is not modified: specified new message content and reply markup are exactly the same")
        msg.edits.append({"text": msg.text, "at": time.time()})
        msg.text, msg.plain, msg.entities, msg.parse_mode, msg.reply_markup = text, plain, entities, parse_mode, markup
        msg.edit_date = int(time.time())
        bot.counts["edits"] += 1
        self.emu.messages_cond.notify_all()
        return self._json(group, msg)

    def _delete_message(self, bot: Bot, p: dict[str, Any]) -> bool:
        group = self._chat(bot, p)
        msg = self._own_message(bot, group, p, "delete")
        me = group.members[bot.id]
        if msg.sender_id != bot.id and me.status not in ("creator", "administrator"):
            raise bad_request("message can't be deleted")
        msg.deleted = True
        bot.counts["deleted"] += 1
        self.emu.messages_cond.notify_all()
        return True

    def _get_chat(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        group = self._chat(bot, p)
        return {**group.as_chat(), "accent_color_id": 0, "max_reaction_count": 11}

    def _get_chat_member(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        group = self._chat(bot, p)
        try:
            user_id = int(p.get("user_id") or 0)
        except (TypeError, ValueError):
            raise bad_request("invalid user_id specified") from None
        member = group.members.get(user_id) or Member(user_id, user_id in self.emu.bots, "left")
        return member.as_member(self._user(user_id, member.is_bot))

    def _create_topic(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        group = self._chat(bot, p)
        if not group.is_forum:
            raise bad_request("the chat is not a forum")
        self._rights(bot, group, "create a topic")
        name = str(p.get("name") or "").strip()
        if not name:
            raise bad_request("TOPIC_NAME_EMPTY")
        if len(name) > 128:
            raise bad_request("TOPIC_NAME_INVALID")
        color = int(p.get("icon_color") or TOPIC_COLORS[len(group.topics) % len(TOPIC_COLORS)])
        topic = self._open(group, bot.id, True, name, color)
        return topic.public()

    def _open(self, group: Group, actor: int, actor_is_bot: bool, name: str, color: int) -> Topic:
        # As in Telegram, a topic's id is the id of the service message that created it.
        thread = group.next_id()
        topic = group.topics[thread] = Topic(thread, name, color, actor)
        service = {"forum_topic_created": {"name": name, "icon_color": color}}
        msg = GroupMessage(thread, actor, actor_is_bot, int(time.time()), thread, service=service)
        group.messages[thread] = msg
        self._spread(group, msg, skip=actor)
        return topic

    def _service(self, group: Group, actor: int, actor_is_bot: bool, thread: int | None, service: dict[str, Any]) -> None:
        msg = GroupMessage(group.next_id(), actor, actor_is_bot, int(time.time()), thread, service=service)
        group.messages[msg.message_id] = msg
        self._spread(group, msg, skip=actor)

    def _edit_topic(self, bot: Bot, p: dict[str, Any]) -> bool:
        group = self._chat(bot, p)
        topic = self._topic(group, p)
        if topic.created_by != bot.id:
            self._rights(bot, group, "edit the topic")
        name = str(p.get("name") or "").strip()
        if not name or name == topic.name:
            raise bad_request(NOT_MODIFIED_TOPIC)
        if len(name) > 128:
            raise bad_request("TOPIC_NAME_INVALID")
        topic.name = name
        self._service(group, bot.id, True, topic.thread_id, {"forum_topic_edited": {"name": name}})
        return True

    def _close_topic(self, bot: Bot, p: dict[str, Any], closed: bool) -> bool:
        group = self._chat(bot, p)
        topic = self._topic(group, p)
        if topic.created_by != bot.id:
            self._rights(bot, group, "close the topic" if closed else "reopen the topic")
        self._set_closed(group, topic, bot.id, True, closed)
        return True

    def _set_closed(self, group: Group, topic: Topic, actor: int, actor_is_bot: bool, closed: bool) -> None:
        if topic.closed == closed:
            raise bad_request(NOT_MODIFIED_TOPIC)
        topic.closed = closed
        self._service(
            group, actor, actor_is_bot, topic.thread_id, {"forum_topic_closed" if closed else "forum_topic_reopened": {}}
        )

    def _delete_topic(self, bot: Bot, p: dict[str, Any]) -> bool:
        group = self._chat(bot, p)
        topic = self._topic(group, p)
        self._rights(bot, group, "delete the topic")
        self._drop(group, topic)
        return True

    @staticmethod
    def _drop(group: Group, topic: Topic) -> None:
        topic.deleted = True
        for msg in group.messages.values():
            if msg.thread_id == topic.thread_id:
                msg.deleted = True

    # --- updates ---------------------------------------------------------------------------------------

    def _user(self, user_id: int, is_bot: bool) -> dict[str, Any]:
        if is_bot and user_id in self.emu.bots:
            return self.emu.bots[user_id].as_user()
        user = self.emu.users.get(user_id)
        return user.as_user() if user else {"id": user_id, "is_bot": is_bot, "first_name": f"User {user_id}"}

    def _json(self, group: Group, msg: GroupMessage, bot: Bot | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "message_id": msg.message_id,
            "from": self._user(msg.sender_id, msg.from_bot),
            "chat": group.as_chat(),
            "date": msg.date,
        }
        if group.is_forum and msg.thread_id is not None:
            d["message_thread_id"] = msg.thread_id
            d["is_topic_message"] = True
        if msg.edit_date:
            d["edit_date"] = msg.edit_date
        if msg.service is not None:
            d.update(msg.service)
            return d
        d["text"] = msg.plain
        if msg.entities:
            d["entities"] = msg.entities
        if msg.reply_markup and "inline_keyboard" in msg.reply_markup:
            d["reply_markup"] = msg.reply_markup
        if msg.media and bot is not None:  # the file field holds the file id of the bot that reads it
            self.emu.media_fields(bot, msg, d)  # type: ignore[arg-type]  # a GroupMessage has the fields it reads
        return d

    def _spread(self, group: Group, msg: GroupMessage, skip: int | None = None) -> None:
        """A `message` update to every bot in the group that may see it (privacy mode for non-admins)."""
        payload = self._json(group, msg)
        for member in group.members.values():
            if not member.is_bot or member.id == skip or member.status not in PRESENT:
                continue
            bot = self.emu.bots.get(member.id)
            if bot is None:
                continue
            sees_all = member.status in ("creator", "administrator")
            if sees_all or msg.service is not None or (msg.plain or "").startswith("/"):
                self.emu._enqueue(bot, "message", self._json(group, msg, bot) if msg.media else dict(payload))
        self.emu.messages_cond.notify_all()

    def _member_changed(self, group: Group, member: Member, old: dict[str, Any], actor: int) -> None:
        bot = self.emu.bots.get(member.id)
        if bot is None:
            return
        self.emu._enqueue(
            bot,
            "my_chat_member",
            {
                "chat": group.as_chat(),
                "from": self._user(actor, False),
                "date": int(time.time()),
                "old_chat_member": old,
                "new_chat_member": member.as_member(bot.as_user()),
            },
        )

    # --- control (the human side) ----------------------------------------------------------------------

    def _group(self, data: dict[str, Any]) -> Group:
        from .core import ControlError, _ctl_int

        chat_id = _ctl_int(data, "chat_id")
        group = self.chats.get(chat_id or 0)
        if group is None:
            raise ControlError(404, f"no group {chat_id}")
        if group.migrated_to is not None and not data.get("old_ok"):
            raise ControlError(409, f"group {chat_id} was upgraded to supergroup {group.migrated_to}")
        return group

    def _actor(self, group: Group, data: dict[str, Any]) -> int:
        from .core import ControlError, _ctl_int

        user_id = _ctl_int(data, "user_id")
        assert user_id is not None
        member = group.members.get(user_id)
        if member is None or member.status not in PRESENT:
            raise ControlError(409, f"user {user_id} is not a member of group {group.id}")
        return user_id

    def create(self, data: dict[str, Any]) -> dict[str, Any]:
        """A user creates a group (a supergroup with topics unless told otherwise) and is its owner."""
        from .core import ControlError, _bool, _ctl_int

        creator = _ctl_int(data, "user_id")
        assert creator is not None
        kind = str(data.get("type") or "supergroup")
        if kind not in ("group", "supergroup"):
            raise ControlError(400, "type must be group or supergroup")
        forum = _bool(data.get("is_forum", kind == "supergroup"))
        if forum and kind != "supergroup":
            raise ControlError(400, "only a supergroup can have topics")
        with self.emu.lock:
            self.emu._ensure_user(creator)
            chat_id = -next(self._super_ids) if kind == "supergroup" else -next(self._basic_ids)
            group = self.chats[chat_id] = Group(chat_id, str(data.get("title") or "Staff"), kind, forum)
            group.members[creator] = Member(creator, False, "creator")
            return self.public(group)

    def set_member(self, data: dict[str, Any]) -> dict[str, Any]:
        """Add a bot or user to a group, promote, demote or remove them (`status`, `can_manage_topics`)."""
        from .core import ControlError, _bool, _ctl_int

        status = str(data.get("status") or "member")
        if status not in MEMBER_STATUSES or status == "creator":
            raise ControlError(400, "status must be administrator, member, left or kicked")
        with self.emu.lock:
            group = self._group(data)
            if data.get("bot") not in (None, ""):
                member_id, is_bot = self.emu.resolve_bot(data["bot"]).id, True
            else:
                member_id, is_bot = _ctl_int(data, "member_id"), False
                assert member_id is not None
                self.emu._ensure_user(member_id)
            actor = next(m.id for m in group.members.values() if m.status == "creator")
            member = group.members.get(member_id) or Member(member_id, is_bot, "left")
            old = member.as_member(self._user(member_id, is_bot))
            was_present = member.status in PRESENT
            member.status = status
            member.can_manage_topics = _bool(data.get("can_manage_topics")) and status == "administrator"
            group.members[member_id] = member
            if is_bot:
                self._member_changed(group, member, old, actor)
            if status in PRESENT and not was_present:
                self._service(group, actor, False, None, {"new_chat_members": [self._user(member_id, is_bot)]})
            return self.public(group)

    def set_forum(self, data: dict[str, Any]) -> dict[str, Any]:
        """The owner switches topics on or off (supergroups only)."""
        from .core import ControlError, _bool

        with self.emu.lock:
            group = self._group(data)
            if group.type != "supergroup":
                raise ControlError(409, "a basic group has no topics: migrate it to a supergroup first")
            group.is_forum = _bool(data.get("is_forum", True))
            return self.public(group)

    def say(self, data: dict[str, Any]) -> dict[str, Any]:
        """A member writes in the group (in a topic with `message_thread_id`)."""
        from .core import ControlError

        text = data.get("text")
        if not isinstance(text, str) or not text:
            raise ControlError(400, "text is required")
        with self.emu.lock:
            group = self._group(data)
            user_id = self._actor(group, data)
            try:
                thread = self._thread(group, data)
            except ApiError as exc:
                raise ControlError(409, exc.description) from None
            msg = GroupMessage(group.next_id(), user_id, False, int(time.time()), thread, text=text, plain=text)
            msg.entities = command_entities(text)
            group.messages[msg.message_id] = msg
            self._spread(group, msg)
            return {"chat_id": group.id, "message_id": msg.message_id, "message_thread_id": thread}

    def topic(self, data: dict[str, Any]) -> dict[str, Any]:
        """A member acts on a topic: `action` create (with `name`), close, reopen, delete, rename (with `name`)."""
        from .core import ControlError, _ctl_int

        action = str(data.get("action") or "")
        with self.emu.lock:
            group = self._group(data)
            user_id = self._actor(group, data)
            if not group.is_forum:
                raise ControlError(409, "topics are off in this group")
            if action == "create":
                name = str(data.get("name") or "").strip()[:128] or "Topic"
                return self._open(group, user_id, False, name, TOPIC_COLORS[0]).public()
            thread = _ctl_int(data, "message_thread_id")
            topic = group.topics.get(thread or 0)
            if topic is None or topic.deleted:
                raise ControlError(404, f"no topic {thread} in group {group.id}")
            try:
                if action in ("close", "reopen"):
                    self._set_closed(group, topic, user_id, False, action == "close")
                elif action == "delete":
                    self._drop(group, topic)
                elif action == "rename":
                    topic.name = str(data.get("name") or topic.name)[:128]
                    self._service(group, user_id, False, topic.thread_id, {"forum_topic_edited": {"name": topic.name}})
                else:
                    raise ControlError(400, "action must be create, close, reopen, delete or rename")
            except ApiError as exc:
                raise ControlError(409, exc.description) from None
            return {**topic.public(), "closed": topic.closed, "deleted": topic.deleted}

    def migrate(self, data: dict[str, Any]) -> dict[str, Any]:
        """The owner upgrades a basic group to a supergroup (with topics when `is_forum`): a new chat id."""
        from .core import ControlError, _bool

        with self.emu.lock:
            old = self._group(data)
            if old.type != "group":
                raise ControlError(409, "only a basic group can be upgraded")
            owner = next(m.id for m in old.members.values() if m.status == "creator")
            new_id = -next(self._super_ids)
            new = self.chats[new_id] = Group(new_id, old.title, "supergroup", _bool(data.get("is_forum", False)))
            for member in old.members.values():
                new.members[member.id] = Member(member.id, member.is_bot, member.status, member.can_manage_topics)
            self._service(old, owner, False, None, {"migrate_to_chat_id": new_id})
            old.migrated_to = new_id
            self._service(new, owner, False, None, {"migrate_from_chat_id": old.id})
            return self.public(new)

    def control_routes(self) -> dict[str, dict[str, Any]]:
        """The control API's group endpoints (server.py mounts them under /control/)."""
        return {
            "groups": {"GET": self.list, "POST": self.create},
            "group": {"GET": self.get},
            "group/member": {"POST": self.set_member},
            "group/forum": {"POST": self.set_forum},
            "group/send": {"POST": self.say},
            "group/topic": {"POST": self.topic},
            "group/migrate": {"POST": self.migrate},
            "group/send_media": {"POST": self.say_media},
        }

    def public(self, group: Group) -> dict[str, Any]:
        """The control view of a group: members, topics and every message (topic by topic)."""
        members = []
        for m in group.members.values():
            user = self._user(m.id, m.is_bot)
            name = user.get("username") or user.get("first_name")
            members.append(
                {"id": m.id, "is_bot": m.is_bot, "name": name, "status": m.status, "can_manage_topics": m.can_manage_topics}
            )
        return {
            "chat_id": group.id,
            "title": group.title,
            "type": group.type,
            "is_forum": group.is_forum,
            "migrated_to": group.migrated_to,
            "members": members,
            "topics": [{**t.public(), "closed": t.closed, "deleted": t.deleted} for t in group.topics.values()],
            "messages": [self._record(group, m) for m in group.messages.values()],
        }

    def _record(self, group: Group, msg: GroupMessage) -> dict[str, Any]:
        user = self._user(msg.sender_id, msg.from_bot)
        return {
            "message_id": msg.message_id,
            "message_thread_id": msg.thread_id,
            "from_id": msg.sender_id,
            "from": "bot" if msg.from_bot else "user",
            "from_name": user.get("username") if msg.from_bot else user.get("first_name"),
            "text": msg.text,
            "plain_text": msg.plain,
            "parse_mode": msg.parse_mode,
            "service": msg.service,
            "edits": list(msg.edits),
            "deleted": msg.deleted,
            "media": self.emu.media_record(msg),  # type: ignore[arg-type]  # a GroupMessage has the field it reads
        }

    def get(self, data: dict[str, Any]) -> dict[str, Any]:
        """One group, as `public` shows it (an upgraded group too)."""
        with self.emu.lock:
            return self.public(self._group({**data, "old_ok": True}))

    def list(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Every group, without their messages."""
        with self.emu.lock:
            return [{k: v for k, v in self.public(g).items() if k != "messages"} for g in self.chats.values()]

    # --- media in groups -------------------------------------------------------------------------------------
    # The file methods, sendMediaGroup, sendLocation/Venue/Contact and editMessageCaption for a group's chat id
    # (with message_thread_id), and a member's media in the group; files, captions and checks are media.py's.

    def _media_route(self, method: str) -> Any:
        lower = method.lower()
        if lower == "sendmediagroup":
            return self._send_media_group
        if lower == "editmessagecaption":
            return self._edit_message_caption
        if lower in ("sendlocation", "sendvenue", "sendcontact"):
            kind = lower[len("send") :]
            return lambda bot, p: self._send_place(bot, p, kind)
        name = next((name for name in FILE_METHODS if name.lower() == lower), None)
        return (lambda bot, p: self._send_file(bot, p, name)) if name else None

    def _post_media(
        self, bot: Bot, group: Group, thread: int | None, media: dict[str, Any], p: dict[str, Any], caption: Caption
    ) -> GroupMessage:
        text, plain, entities, parse_mode = caption
        msg = GroupMessage(
            message_id=group.next_id(),
            sender_id=bot.id,
            from_bot=True,
            date=int(time.time()),
            thread_id=thread,
            text=text,
            plain=plain,
            entities=entities,
            parse_mode=parse_mode,
            reply_markup=parse_reply_markup(p.get("reply_markup")),
            media=media,
        )
        group.messages[msg.message_id] = msg
        bot.counts["sent"] += 1
        self._spread(group, msg, skip=bot.id)
        return msg

    def _send_file(self, bot: Bot, p: dict[str, Any], method: str) -> dict[str, Any]:
        param, kind, _, name = FILE_METHODS[method]
        group = self._chat(bot, p)
        thread = self._thread(group, p)
        stored = self.emu._input_file(bot, p, p.get(param), kind, name)
        caption = self.emu._caption(p, kind)
        self.emu._rate_check(bot, group.id)
        msg = self._post_media(bot, group, thread, {"type": kind, "unique_id": stored.unique_id}, p, caption)
        return self._json(group, msg, bot)

    def _send_place(self, bot: Bot, p: dict[str, Any], kind: str) -> dict[str, Any]:
        group = self._chat(bot, p)
        thread = self._thread(group, p)
        media = self.emu._place(p, kind)
        self.emu._rate_check(bot, group.id)
        return self._json(group, self._post_media(bot, group, thread, media, p, ("", "", [], None)), bot)

    def _send_media_group(self, bot: Bot, p: dict[str, Any]) -> list[dict[str, Any]]:
        group = self._chat(bot, p)
        thread = self._thread(group, p)
        prepared = self.emu._album_items(bot, p)
        self.emu._rate_check(bot, group.id)
        album = str(next(self.emu.media.groups))
        sent = []
        for kind, stored, caption in prepared:
            media = {"type": kind, "unique_id": stored.unique_id, "media_group_id": album}
            sent.append(self._json(group, self._post_media(bot, group, thread, media, {}, caption), bot))
        return sent

    def _edit_message_caption(self, bot: Bot, p: dict[str, Any]) -> dict[str, Any]:
        from .core import NOT_MODIFIED

        group = self._chat(bot, p)
        msg = self._own_message(bot, group, p, "edit")
        kind = (msg.media or {}).get("type")
        if msg.sender_id != bot.id:
            raise bad_request("message can't be edited")
        if kind is None or kind in NO_CAPTION or kind in ("location", "venue", "contact"):
            raise bad_request("there is no caption in the message to edit")
        text, plain, entities, parse_mode = self.emu._caption(p, kind)
        markup = parse_reply_markup(p.get("reply_markup"), inline_only=True)
        if plain == msg.plain and entities == msg.entities and markup == msg.reply_markup:
            raise bad_request(NOT_MODIFIED)
        msg.edits.append({"text": msg.text, "at": time.time()})
        msg.text, msg.plain, msg.entities, msg.parse_mode, msg.reply_markup = text, plain, entities, parse_mode, markup
        msg.edit_date = int(time.time())
        bot.counts["edits"] += 1
        self.emu.messages_cond.notify_all()
        return self._json(group, msg, bot)

    def say_media(self, data: dict[str, Any]) -> dict[str, Any]:
        """A member sends media in the group (in a topic with `message_thread_id`): `type` + base64 `data` (or `size`),
        a location/venue/contact, or `album` (a list of 2–10 items); one message update per item for the bots."""
        from .core import ControlError

        with self.emu.lock:
            group = self._group(data)
            user_id = self._actor(group, data)
            try:
                thread = self._thread(group, data)
            except ApiError as exc:
                raise ControlError(409, exc.description) from None
            album = data.get("album")
            if album is not None:
                if not isinstance(album, list) or not 2 <= len(album) <= 10:
                    raise ControlError(400, "album must be a list of 2 to 10 items")
                media_group = str(next(self.emu.media.groups))
                items = [(self.emu._user_media(None, dict(item), media_group), str(item.get("caption") or "")) for item in album]
            else:
                items = [(self.emu._user_media(None, data, None), str(data.get("caption") or ""))]
            sent = []
            for media, caption in items:
                text = caption if media["type"] not in NO_CAPTION else ""
                msg = GroupMessage(group.next_id(), user_id, False, int(time.time()), thread, text=text, plain=text, media=media)
                group.messages[msg.message_id] = msg
                self._spread(group, msg)
                sent.append({"chat_id": group.id, "message_id": msg.message_id, "message_thread_id": thread})
            return sent[0] if album is None else {"messages": sent}
