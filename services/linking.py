"""One-time verification codes: issue, register, claim, look up; and the limits on guessing them in the bots.

Guessing is slowed twice: a user who typed MAX_WRONG_CODES wrong codes within WRONG_CODE_WINDOW is refused
for the rest of the window, and once all users together typed `per_minute` wrong codes within a minute
(WRONG_CODES_PER_MINUTE), every code typed in either bot is refused until the minute has passed, with one
log line per minute. A code the backend registers itself must be long enough not to be guessed within that.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Generic, NamedTuple, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from database import reading, transaction
from models import CodeAttempt, VerificationCode, db, utcnow
from services import customers, events
from services.errors import Conflict, Invalid, NotFound

# No 0/O, 1/I/L: a person can read the code off a screen and type it without confusing letters.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
GENERATED_LENGTH = 10  # 10 * log2(31) ≈ 49.5 bits from `secrets`
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")  # a valid Telegram /start payload (what a typed code may look like)
REGISTERED_PATTERN = re.compile(r"^[A-Za-z0-9_-]{12,64}$")  # a backend's own code: at least 12 characters
MAX_WRONG_CODES = 5
WRONG_CODE_WINDOW = timedelta(minutes=15)
GLOBAL_WINDOW = timedelta(minutes=1)
DEFAULT_WRONG_CODES_PER_MINUTE = 30  # config.Config's WRONG_CODES_PER_MINUTE default; the bots pass the configured one

log = logging.getLogger(__name__)
DEFAULT_TTL_SECONDS = 600  # config.Config's CODE_TTL_SECONDS default; the API passes the configured one


@dataclass(frozen=True)
class IssuedCode:
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class Claim:
    code: str
    user_id: int
    newly_linked: bool  # False when the same user claimed it before


class Verification(NamedTuple):
    """A live customer code as issued, and who claimed it (None while pending)."""

    code: str
    user_id: int | None


def normalize(code: str) -> str:
    """The form codes are compared in: trimmed, upper case."""
    return code.strip().upper()


def looks_like_code(text: str) -> bool:
    return bool(CODE_PATTERN.match(text.strip()))


def generate() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(GENERATED_LENGTH))


def issue(
    code: str | None = None,
    purpose: str = "customer",
    horeca_id: str | None = None,
    *,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
) -> IssuedCode:
    """Issue a new code valid for `ttl_seconds` (or register the backend's own); Conflict if it exists."""
    if code is not None and not REGISTERED_PATTERN.match(code):
        raise Invalid("code must be 12 to 64 characters of A-Z, a-z, 0-9, _ and -", "invalid_code")
    now = utcnow()
    expires_at = now + timedelta(seconds=ttl_seconds)
    for _ in range(5):
        value = code if code is not None else generate()
        row = VerificationCode(
            code=value, code_norm=normalize(value), purpose=purpose, horeca_id=horeca_id, created_at=now, expires_at=expires_at
        )
        try:
            with transaction() as session:
                session.add(row)
            return IssuedCode(code=value, expires_at=expires_at)
        except IntegrityError:
            if code is not None:
                raise Conflict("this code already exists; issue another one", "code_exists") from None
    raise Conflict("could not issue a unique code, try again", "code_exists")  # pragma: no cover


def _live_code(code: str, purpose: str, lock: bool = False) -> VerificationCode:
    stmt = select(VerificationCode).where(VerificationCode.code_norm == normalize(code), VerificationCode.purpose == purpose)
    if lock:
        stmt = stmt.with_for_update()
    row = db.session.scalar(stmt)
    if row is None or row.expires_at <= utcnow():
        raise NotFound("unknown or expired code", "code_not_found")
    return row


def verification_status(code: str) -> Verification:
    """The code as issued and the claiming user's id (None while pending); NotFound if unknown or expired."""
    with reading():
        row = _live_code(code, "customer")
        return Verification(row.code, row.claimed_by)


def claim(code: str, telegram_user_id: int, chat_id: int | None = None, profile: customers.Profile | None = None) -> Claim:
    """A Telegram user claims a customer code: links the user, exactly once. Used by the API and the bot."""
    with transaction():
        row = _live_code(code, "customer", lock=True)
        if row.claimed_by is not None and row.claimed_by != telegram_user_id:
            raise Conflict("this code was already used by another Telegram user", "code_already_claimed")
        customer = customers.get_or_create(telegram_user_id, chat_id, profile)
        newly = row.claimed_by is None
        now = utcnow()
        if newly:
            row.claimed_by = telegram_user_id
            row.claimed_at = now
            events.emit("user.linked", {"telegram_user_id": telegram_user_id, "verification_code": row.code})
        if customer.linked_at is None:
            customer.linked_at = now
            customer.state_changed_at = now
        if chat_id is not None:  # typed in the bot: they are talking to it right now (the API proves nothing)
            customers.heard_from(customer)
        return Claim(code=row.code, user_id=telegram_user_id, newly_linked=newly)


def claim_staff_code(code: str, telegram_user_id: int) -> VerificationCode:
    """Look up (and lock) a live staff code for the staff bot; the caller records the membership and commits."""
    row = _live_code(code, "staff", lock=True)
    if row.claimed_by is not None and row.claimed_by != telegram_user_id:
        raise Conflict("this code was already used", "code_already_claimed")
    if row.claimed_by is None:
        row.claimed_by = telegram_user_id
        row.claimed_at = utcnow()
    return row


def claim_group_code(code: str, telegram_user_id: int) -> VerificationCode:
    """Look up (and lock) a live group code sent in a group; the caller links the group and commits."""
    row = _live_code(code, "group", lock=True)
    if row.claimed_by is not None and row.claimed_by != telegram_user_id:
        raise Conflict("this code was already used", "code_already_claimed")
    if row.claimed_by is None:
        row.claimed_by = telegram_user_id
        row.claimed_at = utcnow()
    return row


class WrongCodes(NamedTuple):
    """Wrong codes typed lately: by this user within WRONG_CODE_WINDOW, by everyone within GLOBAL_WINDOW."""

    user: int
    everyone: int


def wrong_codes(telegram_user_id: int) -> WrongCodes:
    """Both counts in one statement (two index ranges)."""
    now = utcnow()
    by_user = (
        select(func.count())
        .select_from(CodeAttempt)
        .where(CodeAttempt.telegram_user_id == telegram_user_id, CodeAttempt.created_at > now - WRONG_CODE_WINDOW)
        .scalar_subquery()
    )
    by_all = select(func.count()).select_from(CodeAttempt).where(CodeAttempt.created_at > now - GLOBAL_WINDOW).scalar_subquery()
    with reading() as session:
        user, everyone = session.execute(select(by_user, by_all)).one()
    return WrongCodes(int(user or 0), int(everyone or 0))


def too_many_wrong_codes(telegram_user_id: int) -> bool:
    """True once a user typed MAX_WRONG_CODES wrong codes within the window."""
    return wrong_codes(telegram_user_id).user >= MAX_WRONG_CODES


def record_wrong_code(telegram_user_id: int) -> None:
    """Count one wrong code, and forget everyone's attempts older than the longest window."""
    now = utcnow()
    with transaction() as session:
        session.execute(delete(CodeAttempt).where(CodeAttempt.created_at <= now - WRONG_CODE_WINDOW))
        session.add(CodeAttempt(telegram_user_id=telegram_user_id, created_at=now))


_busy_logged_at = 0.0  # time.monotonic() of the last "limit across users" log line of this process
_busy_lock = threading.Lock()


def _log_busy(count: int, per_minute: int) -> None:
    """One warning per minute while the limit across users holds, however many attempts it refuses."""
    global _busy_logged_at
    with _busy_lock:
        now = time.monotonic()
        if _busy_logged_at and now - _busy_logged_at < GLOBAL_WINDOW.total_seconds():
            return
        _busy_logged_at = now
    log.warning(
        "wrong-code limit across users reached: %d wrong codes in the last minute (WRONG_CODES_PER_MINUTE=%d); "
        "codes typed in the bots are refused until the minute has passed",
        count,
        per_minute,
    )


class Typed(StrEnum):
    """What became of a code typed in a bot."""

    ACCEPTED = "accepted"
    UNKNOWN = "unknown"  # no such live code
    USED = "used"  # another Telegram user claimed it
    TOO_MANY = "too_many"  # too many wrong codes lately: not even looked at
    BUSY = "busy"  # too many wrong codes from everyone in the last minute: not even looked at


T = TypeVar("T")


@dataclass(frozen=True)
class TypedCode(Generic[T]):
    outcome: Typed
    value: T | None = None  # what `claim` returned, when accepted


def claim_typed(telegram_user_id: int, claim: Callable[[], T], per_minute: int = DEFAULT_WRONG_CODES_PER_MINUTE) -> TypedCode[T]:
    """A code typed in either bot, under both wrong-code limits: refused while over one; a wrong code counts.

    `per_minute` is the limit across all users (WRONG_CODES_PER_MINUTE; 0 turns it off)."""
    counts = wrong_codes(telegram_user_id)
    if counts.user >= MAX_WRONG_CODES:
        return TypedCode(Typed.TOO_MANY)
    if per_minute > 0 and counts.everyone >= per_minute:
        _log_busy(counts.everyone, per_minute)
        return TypedCode(Typed.BUSY)
    try:
        value = claim()
    except NotFound:
        record_wrong_code(telegram_user_id)
        return TypedCode(Typed.UNKNOWN)
    except Conflict:
        record_wrong_code(telegram_user_id)
        return TypedCode(Typed.USED)
    return TypedCode(Typed.ACCEPTED, value)
