"""HoReCa staff: codes that make a Telegram account staff of a horeca, membership, the cabinet's current horeca."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from database import reading, transaction
from models import (
    BotHeartbeat,
    BotName,
    DialogSelection,
    Horeca,
    OutboxKind,
    OutboxMessage,
    OutboxState,
    PromptEnd,
    StaffMember,
    StaffMode,
    StaffState,
    db,
    utcnow,
)
from services import linking
from services.customers import Profile
from services.errors import Conflict, Invalid, NotFound, ServiceError

MODES = tuple(StaffMode)


class NotStaff(ServiceError):
    """The Telegram account is not (or no longer) staff of any horeca, or not of this one."""

    status = 403
    code = "not_staff"


class PromptClosed(Conflict):
    """A button of a prompt that is no longer open was pressed; `end` says how it ended."""

    code = "prompt_closed"

    def __init__(self, end: PromptEnd) -> None:
        super().__init__(f"this prompt is no longer open ({end})")
        self.end = end


@dataclass(frozen=True)
class Joined:
    horeca_id: str
    horeca_name: str
    rejoined: bool  # was staff before and had been removed
    already: bool  # was staff already; nothing changed but the current horeca


@dataclass(frozen=True)
class Cabinet:
    """Who is using the staff bot, for which horeca, and what their next text means."""

    telegram_user_id: int
    staff_member_id: int
    horeca_id: str
    horeca_name: str
    mode: str
    language_code: str | None
    memberships: int  # how many horecas this account serves


@dataclass(frozen=True)
class Member:
    """A current staff member of a horeca, as the backend lists them."""

    telegram_user_id: int
    first_name: str | None
    last_name: str | None
    username: str | None
    name: str  # name, @username or the id: what colleagues see
    joined_at: datetime


@dataclass(frozen=True)
class Removed:
    horeca_id: str
    telegram_user_id: int
    removed_at: datetime


@dataclass(frozen=True)
class Membership:
    """A horeca this account serves."""

    horeca_id: str
    name: str
    current: bool


def horeca_name(horeca_id: str) -> str:
    """The name customers see for a horeca: its display name, or its id."""
    row = db.session.get(Horeca, horeca_id)
    return (row.name if row is not None and row.name else None) or horeca_id


def ensure_horeca(horeca_id: str, name: str | None = None) -> Horeca:
    """The horeca row, created if new, its name updated when given (inside the caller's transaction)."""
    row = db.session.get(Horeca, horeca_id)
    if row is None:
        row = Horeca(id=horeca_id, name=name or None, created_at=utcnow())
        try:
            with db.session.begin_nested():
                db.session.add(row)
        except IntegrityError:  # created meanwhile by another request
            row = db.session.get(Horeca, horeca_id)
            assert row is not None
    if name:
        row.name = name
    return row


def issue_code(horeca_id: str, name: str | None = None, *, ttl_seconds: int = linking.DEFAULT_TTL_SECONDS) -> linking.IssuedCode:
    """A one-time code that makes whoever opens the staff bot with it staff of `horeca_id`."""
    with transaction():
        ensure_horeca(horeca_id, name)
    return linking.issue(purpose="staff", horeca_id=horeca_id, ttl_seconds=ttl_seconds)


def bot_username(configured: str | None) -> str | None:
    """The staff bot's username: the configured one, else the one the running staff bot reported in its heartbeat."""
    if configured:
        return configured
    with reading():
        beat = db.session.get(BotHeartbeat, BotName.HORECA.value)
        return beat.username if beat is not None else None


def membership(horeca_id: str, telegram_user_id: int, lock: bool = False) -> StaffMember | None:
    """The account's membership row for a horeca, removed or not (inside the caller's transaction)."""
    stmt = select(StaffMember).where(StaffMember.horeca_id == horeca_id, StaffMember.telegram_user_id == telegram_user_id)
    if lock:
        stmt = stmt.with_for_update()
    return db.session.scalar(stmt)


def _active_memberships(telegram_user_id: int) -> list[StaffMember]:
    return list(
        db.session.scalars(
            select(StaffMember)
            .where(StaffMember.telegram_user_id == telegram_user_id, StaffMember.removed_at.is_(None))
            .order_by(StaffMember.joined_at, StaffMember.id)
        )
    )


def lock_state(telegram_user_id: int) -> StaffState:
    """The account's cabinet state row, locked, created if new (inside the caller's transaction)."""
    state = db.session.get(StaffState, telegram_user_id, with_for_update=True)
    if state is None:
        state = StaffState(telegram_user_id=telegram_user_id, mode=StaffMode.IDLE, updated_at=utcnow())
        try:
            with db.session.begin_nested():
                db.session.add(state)
        except IntegrityError:
            state = db.session.get(StaffState, telegram_user_id, with_for_update=True)
            assert state is not None
    return state


# --- prompts: what the account's next text means, numbered so that their buttons can tell a stale press -------


def open_prompt(state: StaffState, mode: StaffMode) -> int:
    """Open a new prompt (inside the caller's transaction): the next text means `mode`; returns its number."""
    state.mode = mode
    state.prompt_no = (state.prompt_no or 0) + 1
    state.prompt_end = None
    state.updated_at = utcnow()
    return state.prompt_no


def end_prompt(state: StaffState, end: PromptEnd) -> None:
    """Close the open prompt, if any, recording how it ended; the next text means nothing (idle)."""
    if state.mode != StaffMode.IDLE:
        state.prompt_end = end
    state.mode = StaffMode.IDLE
    state.updated_at = utcnow()


def prompt_end(state: StaffState, prompt_no: int) -> PromptEnd | None:
    """None while prompt `prompt_no` is the open one; else how it ended (REPLACED for an older prompt)."""
    if prompt_no != state.prompt_no:
        return PromptEnd.REPLACED
    if state.mode == StaffMode.IDLE:
        return PromptEnd(state.prompt_end) if state.prompt_end in tuple(PromptEnd) else PromptEnd.CLOSED
    return None


def check_prompt(state: StaffState, prompt_no: int) -> None:
    """PromptClosed unless prompt `prompt_no` is the open one."""
    end = prompt_end(state, prompt_no)
    if end is not None:
        raise PromptClosed(end)


def cancel_prompt(telegram_user_id: int, prompt_no: int) -> PromptEnd | None:
    """✖️ under prompt `prompt_no`: cancel it if it is the open one (None); else how it had ended, changing nothing."""
    with transaction():
        state, _, _ = current_member(telegram_user_id, lock=True)
        end = prompt_end(state, prompt_no)
        if end is None:
            end_prompt(state, PromptEnd.CANCELLED)
        return end


def add_reply_prompt(telegram_user_id: int) -> int:
    """➕ under the quick replies: the next text is a new quick reply; returns the prompt's number."""
    with transaction():
        state, _, _ = current_member(telegram_user_id, lock=True)
        return open_prompt(state, StaffMode.ADDING_REPLY)


def _apply_profile(member: StaffMember, chat_id: int | None, profile: Profile | None) -> None:
    if chat_id:
        member.chat_id = chat_id
    if profile is not None:
        for field in ("first_name", "last_name", "username", "language_code"):
            value = getattr(profile, field)
            if value is not None:
                setattr(member, field, value)


def join(code: str, telegram_user_id: int, chat_id: int, profile: Profile | None = None) -> Joined:
    """Claim a staff code: this account becomes (again) staff of the code's horeca, which becomes its current one."""
    with transaction():
        row = linking.claim_staff_code(code, telegram_user_id)
        horeca_id = row.horeca_id
        if not horeca_id:
            raise NotFound("unknown or expired code", "code_not_found")
        ensure_horeca(horeca_id)
        now = utcnow()
        member = membership(horeca_id, telegram_user_id, lock=True)
        rejoined = already = False
        if member is None:
            member = StaffMember(horeca_id=horeca_id, telegram_user_id=telegram_user_id, chat_id=chat_id, joined_at=now)
            db.session.add(member)
        elif member.removed_at is not None:
            member.removed_at = None
            member.joined_at = now
            rejoined = True
        else:
            already = True
        _apply_profile(member, chat_id, profile)
        state = lock_state(telegram_user_id)
        state.current_horeca_id = horeca_id
        end_prompt(state, PromptEnd.CLOSED)
        return Joined(horeca_id=horeca_id, horeca_name=horeca_name(horeca_id), rejoined=rejoined, already=already)


def list_staff(horeca_id: str) -> list[Member]:
    """The horeca's current staff, in the order they joined."""
    with reading():
        rows = db.session.scalars(
            select(StaffMember)
            .where(StaffMember.horeca_id == horeca_id, StaffMember.removed_at.is_(None))
            .order_by(StaffMember.joined_at, StaffMember.id)
        )
        return [Member(m.telegram_user_id, m.first_name, m.last_name, m.username, m.display_name, m.joined_at) for m in rows]


def active_staff(horeca_id: str) -> list[StaffMember]:
    """The horeca's current staff rows (inside the caller's transaction)."""
    return list(
        db.session.scalars(
            select(StaffMember)
            .where(StaffMember.horeca_id == horeca_id, StaffMember.removed_at.is_(None))
            .order_by(StaffMember.id)
        )
    )


def queue_notice(member: StaffMember, payload: dict[str, Any], horeca_id: str | None = None) -> OutboxMessage:
    """Queue a message of the staff bot to one staff member (kind staff_notice; the bot renders `payload`).

    `horeca_id`: the horeca whose dialog the notice carries (a customer's message); removing the member from
    that horeca fails the ones still pending.
    """
    now = utcnow()
    notice = OutboxMessage(
        kind=OutboxKind.STAFF_NOTICE,
        bot=BotName.HORECA,
        chat_id=member.chat_id,
        horeca_id=horeca_id,
        payload=json.dumps({**payload, "lang": member.language_code}, ensure_ascii=False, separators=(",", ":")),
        state=OutboxState.PENDING,
        created_at=now,
        next_attempt_at=now,
    )
    db.session.add(notice)
    return notice


def remove(horeca_id: str, telegram_user_id: int) -> Removed:
    """Remove a staff member: no more customer messages, the cabinet refuses them. Repeating it changes nothing."""
    with transaction():
        member = membership(horeca_id, telegram_user_id, lock=True)
        if member is None:
            raise NotFound("this Telegram user is not staff of this horeca", "staff_not_found")
        if member.removed_at is None:
            now = utcnow()
            member.removed_at = now
            db.session.execute(delete(DialogSelection).where(DialogSelection.staff_member_id == member.id))
            state = lock_state(telegram_user_id)
            if state.current_horeca_id == horeca_id:
                others = [m for m in _active_memberships(telegram_user_id) if m.id != member.id]
                state.current_horeca_id = others[0].horeca_id if others else None
                end_prompt(state, PromptEnd.CLOSED)
            # Customer messages of this horeca still waiting for delivery to them are not theirs any more.
            db.session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.horeca_id == horeca_id,
                    OutboxMessage.state == OutboxState.PENDING,
                    OutboxMessage.bot == BotName.HORECA,
                    OutboxMessage.chat_id == member.chat_id,
                )
                .values(state=OutboxState.FAILED, last_error="the staff member was removed")
            )
            queue_notice(member, {"type": "removed", "horeca": horeca_name(horeca_id)})
        assert member.removed_at is not None
        return Removed(horeca_id=horeca_id, telegram_user_id=telegram_user_id, removed_at=member.removed_at)


def _current(telegram_user_id: int, lock: bool = False) -> tuple[StaffState, StaffMember] | None:
    """The account's state and current active membership, falling back to another one it still has."""
    memberships = _active_memberships(telegram_user_id)
    if not memberships:
        return None
    state = lock_state(telegram_user_id) if lock else db.session.get(StaffState, telegram_user_id)
    if state is None:
        state = lock_state(telegram_user_id)
    member = next((m for m in memberships if m.horeca_id == state.current_horeca_id), None)
    if member is None:
        member = memberships[0]
        state.current_horeca_id = member.horeca_id
        end_prompt(state, PromptEnd.CLOSED)
    return state, member


def current_member(telegram_user_id: int, lock: bool = False) -> tuple[StaffState, StaffMember, int]:
    """(state, current membership, number of memberships) inside the caller's transaction; NotStaff if none."""
    found = _current(telegram_user_id, lock=lock)
    if found is None:
        raise NotStaff("you are not staff of any horeca; ask your manager for a staff code", "not_staff")
    state, member = found
    count = len(_active_memberships(telegram_user_id))
    return state, member, count


def _cabinet(state: StaffState, member: StaffMember, count: int) -> Cabinet:
    return Cabinet(
        telegram_user_id=member.telegram_user_id,
        staff_member_id=member.id,
        horeca_id=member.horeca_id,
        horeca_name=horeca_name(member.horeca_id),
        mode=state.mode,
        language_code=member.language_code,
        memberships=count,
    )


def cabinet(telegram_user_id: int, chat_id: int | None = None, profile: Profile | None = None) -> Cabinet | None:
    """The cabinet of this account (None when it is nobody's staff); refreshes chat id and names on the way."""
    with transaction():
        found = _current(telegram_user_id, lock=True)
        if found is None:
            return None
        state, member = found
        for m in _active_memberships(telegram_user_id):
            _apply_profile(m, chat_id, profile)
        return _cabinet(state, member, len(_active_memberships(telegram_user_id)))


def is_staff(telegram_user_id: int) -> bool:
    """Whether this account is staff of at least one horeca."""
    with reading():
        return bool(_active_memberships(telegram_user_id))


def memberships(telegram_user_id: int) -> list[Membership]:
    """The horecas this account serves, in the order it joined them."""
    with transaction():  # _current may repair the account's state
        found = _current(telegram_user_id)
        current = found[1].horeca_id if found else None
        return [
            Membership(m.horeca_id, horeca_name(m.horeca_id), m.horeca_id == current)
            for m in _active_memberships(telegram_user_id)
        ]


def switch_horeca(telegram_user_id: int, horeca_id: str) -> Cabinet:
    """Make `horeca_id` the account's current horeca; NotStaff unless it serves it."""
    with transaction():
        member = membership(horeca_id, telegram_user_id)
        if member is None or member.removed_at is not None:
            raise NotStaff("you are not staff of this horeca", "not_staff")
        state = lock_state(telegram_user_id)
        state.current_horeca_id = horeca_id
        end_prompt(state, PromptEnd.CLOSED)
        return _cabinet(state, member, len(_active_memberships(telegram_user_id)))


def set_mode(telegram_user_id: int, mode: str) -> Cabinet:
    """Set what the account's next text means: idle cancels the open prompt, another mode opens a new one."""
    if mode not in MODES:
        raise Invalid(f"mode must be one of {', '.join(MODES)}", "invalid_mode")
    with transaction():
        state, member, count = current_member(telegram_user_id, lock=True)
        if mode == StaffMode.IDLE:
            end_prompt(state, PromptEnd.CANCELLED)
        else:
            open_prompt(state, StaffMode(mode))
        return _cabinet(state, member, count)
