"""What a scoped API key may call: one rule for the whole app, default deny.

Runs before every request (an app-level `before_request`, ahead of the blueprints' token checks). A bearer
token that is not a scoped key (`cbk_…`) passes untouched: the admin key (`API_TOKEN`) and the operator
tokens keep their checks in `webapp.auth`. A scoped key is looked up (`services.api_keys.authenticate`, one
indexed read, no cache: a deleted key is refused by the next request in every worker) and then:

- the customer endpoints (`CUSTOMER`) answer it for any user: the backend needs them before an order exists;
- `POST /provide_message_to_user/` answers only for a `horeca_id` (in the JSON body) the key holds;
- every route whose URL rule starts with `/horeca/<horeca_id>` or `/orders/<horeca_id>` — whoever adds it,
  in whichever blueprint — answers only for a `horeca_id` the key holds;
- another cafe's id is answered 404, as if it did not exist (`order_not_found` under /orders, else
  `horeca_not_found`), so a key cannot tell which cafes exist;
- `GET /healthz` answers as it does without a token, and so do `/healthz/bot` and `/openapi.json` when a
  setting opens them to anyone (PUBLIC_HEALTH_DETAILS, PUBLIC_OPENAPI);
- everything else (`/api-keys`, `/admin/*`, `/metrics`, `/healthz/bot`, `/openapi.json`, and any route added
  later that none of the rules above covers) is 403 `forbidden`.

A path that matches no route answers 404/405 as usual (after the key was checked).
"""

from __future__ import annotations

import json

from flask import Flask, current_app, g, request
from flask.typing import ResponseReturnValue

from services import api_keys
from webapp.auth import bearer, token_matches
from webapp.bodies import raw_body
from webapp.errors import error_response

CUSTOMER = frozenset({"api.subscribe_status", "api.issue_code", "api.verification", "api.enter_key_from_user"})
PUBLIC = frozenset({"health.healthz"})  # answers without a token; a key changes nothing there
# Opened to anyone by a setting (then answered to a key as to anyone), else operator-only: 403 for a key.
PUBLIC_BY_SETTING = {"health.healthz_bot": "PUBLIC_HEALTH_DETAILS", "openapi.openapi_json": "PUBLIC_OPENAPI"}
BODY_SCOPED = frozenset({"api.provide_message_to_user"})  # the horeca_id is in the JSON body
PATH_SCOPED = ("/horeca/<horeca_id>", "/orders/<horeca_id>")  # every rule under these, whoever adds it
NOT_FOUND = {"/orders/": ("order_not_found", "no such order")}  # else horeca_not_found


def install(app: Flask) -> None:
    """Check every request's scoped key against the rule above."""
    app.before_request(check)


def check() -> ResponseReturnValue | None:
    """None to go on; a 401 for a bad key, a 403 or 404 for a route the key may not call."""
    token = bearer()
    if token is None or not api_keys.looks_like_key(token) or token_matches(current_app.config["API_TOKEN"]):
        return None
    caller = api_keys.authenticate(token)
    if caller is None:
        return error_response(401, "unauthorized", "unknown or deleted API key")
    g.api_key = caller
    rule = request.url_rule
    if rule is None:  # no such route (404) or method (405): answered as for anyone
        return None
    endpoint = request.endpoint or ""
    if endpoint in CUSTOMER or endpoint in PUBLIC:
        return None
    if endpoint in PUBLIC_BY_SETTING and current_app.config.get(PUBLIC_BY_SETTING[endpoint]):
        return None
    if endpoint in BODY_SCOPED:
        return _held(_body_horeca(), caller.horeca_ids, "/horeca/")
    path = rule.rule
    if any(path == prefix or path.startswith(prefix + "/") for prefix in PATH_SCOPED):
        horeca_id = (request.view_args or {}).get("horeca_id")
        return _held(str(horeca_id), caller.horeca_ids, path)
    return error_response(403, "forbidden", "this API key may not call this endpoint; the admin key (API_TOKEN) may")


def _held(horeca_id: str | None, held: frozenset[str], path: str) -> ResponseReturnValue | None:
    """None when the key holds `horeca_id` (or the body has none: the view answers its 400); else the route's 404."""
    if horeca_id is None or horeca_id in held:
        return None
    code, message = next(
        (found for prefix, found in NOT_FOUND.items() if path.startswith(prefix)), ("horeca_not_found", "no such horeca")
    )
    return error_response(404, code, message)


def _body_horeca() -> str | None:
    """The body's `horeca_id` when it is a string; None otherwise (the view then refuses the body with a 400)."""
    try:
        body = json.loads(raw_body())
    except (ValueError, RecursionError):  # not JSON, or nested too deep: the view's parser says so
        return None
    horeca_id = body.get("horeca_id") if isinstance(body, dict) else None
    return horeca_id if isinstance(horeca_id, str) else None
