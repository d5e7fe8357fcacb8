"""The cafe profile API (issue 11): `PUT /horeca/<horeca_id>` stores a cafe's name, timezone, contact and status
texts; `GET /horeca/<horeca_id>` reads them back."""

from __future__ import annotations

from flask import Blueprint, Response

from services import cafes
from services.errors import Invalid
from webapp import schemas
from webapp.auth import require_token
from webapp.bodies import parse, reply

bp = Blueprint("cafes", __name__)
bp.before_request(require_token(lambda: None))


def _horeca(horeca_id: str) -> str:
    """The path's horeca id, checked like the body's (1 to 128 characters, no NUL)."""
    if not 0 < len(horeca_id) <= 128 or "\x00" in horeca_id:
        raise Invalid("horeca_id must be 1 to 128 characters", "invalid_horeca_id")
    return horeca_id


@bp.put("/horeca/<horeca_id>")
def put_profile(horeca_id: str) -> Response:
    """Store the cafe's whole profile (what the body leaves out goes back to its default)."""
    body = parse(schemas.HorecaProfileIn)
    contact = cafes.Contact(**body.contact.model_dump()) if body.contact is not None else None
    texts = {str(lang): {str(status): t for status, t in by_status.items()} for lang, by_status in body.texts.items()}
    return reply(schemas.HorecaProfileOut, cafes.put_profile(_horeca(horeca_id), body.name, body.timezone, contact, texts))


@bp.get("/horeca/<horeca_id>")
def get_profile(horeca_id: str) -> Response:
    """The cafe's profile; 404 horeca_not_found until it has one."""
    return reply(schemas.HorecaProfileOut, cafes.get_profile(_horeca(horeca_id)))
