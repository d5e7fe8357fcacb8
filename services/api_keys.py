"""API keys scoped to cafes: minted by the admin (`API_TOKEN`), shown once, stored as a SHA-256 hash.

A key reads `cbk_<id>_<secret>`: `<id>` (16 hex characters) is public and finds the row by its primary key,
so checking a key is one indexed read whatever the number of keys; `<secret>` is 32 random bytes, so a plain
SHA-256 of the whole key is enough (nothing to brute-force), compared in constant time.

No process keeps keys in memory: every request with a key reads its row, so a deleted key stops working at
once in every Gunicorn worker. `last_used_at` is written at most once a minute per key (a conditional
UPDATE), so a busy key does not turn its reads into writes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.exc import DBAPIError

from database import reading, single_statement, transaction
from models import ApiKey, db, utcnow
from services import storage
from services.errors import NotFound

log = logging.getLogger(__name__)

PREFIX = "cbk_"
_KEY = re.compile(r"cbk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
TOUCH_EVERY = timedelta(seconds=60)  # last_used_at is at most this stale

_LOOKUP = select(ApiKey.key_hash, ApiKey.horeca_ids, ApiKey.last_used_at).where(ApiKey.id == bindparam("id"))


@dataclass(frozen=True, slots=True)
class Created:
    """A new key: `key` is the only time the secret is seen."""

    id: str
    key: str
    name: str
    horeca_ids: list[str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as listed: no secret, no hash."""

    id: str
    name: str
    horeca_ids: list[str]
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class Deleted:
    id: str
    deleted_at: datetime


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a valid key acts for."""

    key_id: str
    horeca_ids: frozenset[str]


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(token: str) -> bool:
    """Whether a bearer token has the shape of a scoped key (cheap: the admin token's requests pay nothing more)."""
    return token.startswith(PREFIX)


def create(name: str, horeca_ids: list[str]) -> Created:
    """Mint a key for these cafes; the key is returned once, only its hash is stored."""
    key_id = secrets.token_hex(8)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    ids = list(dict.fromkeys(horeca_ids))  # in the order given, each once
    now = utcnow()
    with transaction() as session:
        session.add(ApiKey(id=key_id, name=name, key_hash=_hash(key), horeca_ids=json.dumps(ids), created_at=now))
    return Created(id=key_id, key=key, name=name, horeca_ids=ids, created_at=now)


def list_keys() -> list[KeyInfo]:
    """Every key, oldest first, without secrets."""
    with reading() as session:
        rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)).all()
        return [KeyInfo(r.id, r.name, json.loads(r.horeca_ids), r.created_at, r.last_used_at) for r in rows]


def delete_key(key_id: str) -> Deleted:
    """Delete a key: the next request with it is refused, in every worker."""
    with transaction() as session:
        gone = session.execute(delete(ApiKey).where(ApiKey.id == key_id))
        if not gone.rowcount:  # type: ignore[attr-defined]
            raise NotFound("no such API key", "api_key_not_found")
    return Deleted(id=key_id, deleted_at=utcnow())


def authenticate(token: str) -> Caller | None:
    """The caller a scoped key stands for; None for a malformed, unknown, deleted or wrong key."""
    match = _KEY.fullmatch(token)
    if match is None:
        return None
    key_id = match.group(1)
    row = single_statement(db.engine, _LOOKUP, {"id": key_id})
    if row is None:
        return None
    key_hash, horeca_ids, last_used_at = row
    if not hmac.compare_digest(_hash(token).encode(), key_hash.encode()):
        return None
    now = utcnow()
    if last_used_at is None or now - last_used_at >= TOUCH_EVERY:
        _touch(key_id, now)
    return Caller(key_id, frozenset(json.loads(horeca_ids)))


def _touch(key_id: str, now: datetime) -> None:
    """Record a use, unless another worker did within the minute (the condition makes racing writers harmless).

    Storage that refuses writes (read-only, full) leaves `last_used_at` as it was and the request goes on: a
    key's reads keep working whenever the admin token's do.
    """
    try:
        with transaction() as session:
            session.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id, or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - TOUCH_EVERY))
                .values(last_used_at=now)
            )
    except DBAPIError as exc:
        found = storage.diagnose(exc, storage.sqlite_path(db.engine))
        if found is None or not found.storage:
            raise
        log.warning("last use of API key %s not recorded: the database is %s", key_id, found.fault)
