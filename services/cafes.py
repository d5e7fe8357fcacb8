"""Cafes as the product knows them (issue 11): a profile per `horeca_id` with its name, timezone, contact and
its own words for each status, per language.

The profile lives on the `horecas` row the staff bot already keeps (its `name` is what customers read).
Templates are plain text with a few named placeholders, checked here when stored and split into pieces
(`pieces`) when drawn, so no template ever reaches `str.format`: no attribute access, no format specs.
The bot (bot/card.py) escapes the text for its parse mode and fills the placeholders.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from database import reading, transaction
from models import Horeca, db, utcnow
from services.errors import NotFound

# The languages the customer bot has a catalog for (bot/texts.py holds them to this list).
LANGUAGES = ("ru", "en")
PLACEHOLDERS = ("order_id", "cafe", "eta", "pickup_code", "text")
MAX_TEMPLATE = 1000
DEFAULT_TIMEZONE = "UTC"

# A template: any text but NUL and lone braces; "{{" and "}}" are literal braces; "{name}" a placeholder.
TEMPLATE_PATTERN = r"^(?:[^{}\x00]|\{\{|\}\}|\{(?:" + "|".join(PLACEHOLDERS) + r")\})*$"
_TEMPLATE = re.compile(TEMPLATE_PATTERN)


def check_template(template: str) -> str:
    """The template if it is one (only the allowed placeholders, braces doubled); ValueError saying what is wrong."""
    if _TEMPLATE.fullmatch(template):
        return template
    if "\x00" in template:
        raise ValueError("a template cannot contain NUL characters")
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(template) if f is not None or spec or conv]
    except ValueError:
        raise ValueError("a single { or } in a template must be doubled ({{ or }})") from None
    unknown = sorted({str(f) for f in fields if f not in PLACEHOLDERS})
    allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
    if unknown:
        shown = ", ".join("{" + f + "}" for f in unknown)
        raise ValueError(f"unknown placeholder {shown}; allowed: {allowed}")
    raise ValueError(f"placeholders take no format or conversion; allowed: {allowed}")


def pieces(template: str) -> list[tuple[str, str | None]]:
    """(literal text, placeholder or None) pairs of a template; unknown or malformed parts stay literal text."""
    if not _TEMPLATE.fullmatch(template):
        return [(template, None)]  # stored before a rule changed: shown as written rather than not at all
    return [(literal, name) for literal, name, _, _ in string.Formatter().parse(template)]


def uses(template: str, placeholder: str) -> bool:
    """Whether the template shows this placeholder (then the card does not repeat it on a line of its own)."""
    return any(name == placeholder for _, name in pieces(template))


# --- timezones -------------------------------------------------------------------------------------------


@cache
def timezones() -> frozenset[str]:
    """Every IANA timezone name this machine knows, and UTC (known even without a timezone database)."""
    return frozenset(available_timezones() | {DEFAULT_TIMEZONE})


def zone(name: str | None) -> tzinfo:
    """The timezone of a stored name; UTC for none, or for one this machine no longer knows."""
    if not name or name == DEFAULT_TIMEZONE:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


# --- the profile -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    phone: str | None = None
    address: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Profile:
    """A cafe's profile as `GET /horeca/<horeca_id>` shows it."""

    horeca_id: str
    name: str
    timezone: str
    contact: Contact | None
    texts: dict[str, dict[str, str]] = field(default_factory=dict)
    updated_at: datetime | None = None


def _loads(raw: str | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def templates(raw: str | None) -> dict[str, dict[str, str]]:
    """The stored texts column as {language: {status: template}}, dropping anything that is not."""
    texts = _loads(raw)
    if not isinstance(texts, dict):
        return {}
    return {
        str(lang): {str(s): t for s, t in by_status.items() if isinstance(t, str)}
        for lang, by_status in texts.items()
        if isinstance(by_status, dict)
    }


def _profile(row: Horeca) -> Profile:
    contact = _loads(row.contact)
    return Profile(
        horeca_id=row.id,
        name=row.name or row.id,
        timezone=row.timezone or DEFAULT_TIMEZONE,
        contact=Contact(**{k: contact.get(k) for k in ("phone", "address", "url")}) if isinstance(contact, dict) else None,
        texts=templates(row.texts),
        updated_at=row.profile_updated_at,
    )


def put_profile(
    horeca_id: str,
    name: str,
    timezone: str | None = None,
    contact: Contact | None = None,
    texts: Mapping[str, Mapping[str, str]] | None = None,
) -> Profile:
    """Store the whole profile (what is not given goes back to its default) and return it. Own transaction.

    The caller has checked the values (the API's schema): a known timezone, known languages and statuses,
    templates that pass `check_template`.
    """
    for attempt in range(2):
        try:
            with transaction():
                row = db.session.get(Horeca, horeca_id, with_for_update=True)
                if row is None:
                    row = Horeca(id=horeca_id, created_at=utcnow())
                    db.session.add(row)
                row.name = name
                row.timezone = timezone or DEFAULT_TIMEZONE
                row.contact = json.dumps(vars(contact), ensure_ascii=False) if contact is not None else None
                clean = {lang: dict(by_status) for lang, by_status in (texts or {}).items() if by_status}
                row.texts = json.dumps(clean, ensure_ascii=False) if clean else None
                row.profile_updated_at = utcnow()
                db.session.flush()
                return _profile(row)
        except IntegrityError:  # the first staff code of this horeca created the row at the same moment
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


def names(horeca_ids: Iterable[str]) -> dict[str, str]:
    """What customers read for each horeca: its name, else its id (one query, in the caller's session)."""
    ids = sorted(set(horeca_ids))
    found = dict(db.session.execute(select(Horeca.id, Horeca.name).where(Horeca.id.in_(ids))).tuples().all()) if ids else {}
    return {h: found.get(h) or h for h in ids}


def get_profile(horeca_id: str) -> Profile:
    """The cafe's profile; NotFound until it has one (PUT, or a name given with its first staff code)."""
    with reading() as session:
        row = session.get(Horeca, horeca_id)
        if row is None or not row.name:
            raise NotFound("this horeca has no profile yet; PUT /horeca/<horeca_id> creates it", "horeca_not_found")
        return _profile(row)
