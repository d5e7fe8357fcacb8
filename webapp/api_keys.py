"""The admin's endpoints for API keys scoped to cafes (issue 11): mint, list, delete. Admin key only.

What a scoped key may call is decided in one place, `webapp.scopes`.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response

from services import api_keys
from services.errors import NotFound
from webapp import schemas
from webapp.auth import require_admin
from webapp.bodies import parse, reply

bp = Blueprint("api_keys", __name__)
bp.before_request(require_admin(lambda: None))

_KEY_ID = re.compile(r"[0-9a-f]{16}")


@bp.post("/api-keys")
def create_key() -> Response:
    """A new key for these cafes; the key is in this answer only."""
    body = parse(schemas.ApiKeyIn)
    return reply(schemas.ApiKeyCreatedOut, api_keys.create(body.name, body.horeca_ids), 201)


@bp.get("/api-keys")
def list_keys() -> Response:
    """Every key, without secrets, with when it was last used."""
    return reply(schemas.ApiKeyListOut, {"keys": api_keys.list_keys()})


@bp.delete("/api-keys/<key_id>")
def delete_key(key_id: str) -> Response:
    """Delete a key: it is refused from the next request on."""
    if _KEY_ID.fullmatch(key_id) is None:
        raise NotFound("no such API key", "api_key_not_found")
    return reply(schemas.ApiKeyDeletedOut, api_keys.delete_key(key_id))
