"""Request and response shapes of the API (pydantic): validation, and the source of /openapi.json."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator
from pydantic.config import JsonDict

from services.orders import STATUSES


def _integral_number(value: object) -> object:
    """JSON Schema counts 1001.0 as an integer, so the API does too (1.5 and "1001" stay errors)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# PostgreSQL text cannot hold NUL characters: refuse them up front (400) on every backend.
NO_NUL = r"^[^\x00]*$"
TelegramId = Annotated[
    int, Field(strict=True, gt=0, lt=2**63, description="Telegram user id (64-bit)"), BeforeValidator(_integral_number)
]
Ident = Annotated[str, Field(strict=True, min_length=1, max_length=128, pattern=NO_NUL)]
CodeStr = Annotated[
    str, Field(strict=True, min_length=1, max_length=64, pattern=NO_NUL, description="A verification code (case-insensitive)")
]
Status = Literal["created", "accepted", "preparing", "ready", "completed", "cancelled", "rejected"]
assert get_args(Status) == STATUSES  # one list of statuses


def _iso(value: datetime | str) -> str:
    """A time as the API writes it: ISO-8601 with a "Z" (columns hold naive UTC; an aware time is converted)."""
    if isinstance(value, str):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


# Out models take the services' datetimes (or ISO strings, parsed) and write them in one format.
Timestamp = Annotated[
    datetime,
    PlainSerializer(_iso, return_type=str),
    Field(description="ISO-8601, UTC", json_schema_extra={"format": "date-time"}),
]


class In(BaseModel):
    """Request bodies: unknown fields are ignored, types are strict."""

    model_config = ConfigDict(extra="ignore")


class IssueCodeIn(In):
    code: Annotated[str, Field(strict=True, min_length=12, max_length=64, pattern=r"^[A-Za-z0-9_-]{12,64}$")] | None = Field(
        None, description="Register the backend's own code (12 to 64 of A-Z a-z 0-9 _ -) instead of having one issued"
    )


class VerificationIn(In):
    code: CodeStr


class EnterKeyIn(In):
    # One of the two ids must be an integer; documented so that schema-valid bodies are accepted.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "integer"}}}
                for name in ("telegram_user_id", "teleram_user_id")
            ]
        }
    )

    telegram_user_id: TelegramId | None = None
    teleram_user_id: TelegramId | None = Field(None, description="The seed's spelling, accepted too")
    verification_code: CodeStr

    @model_validator(mode="after")
    def _one_user_id(self) -> EnterKeyIn:
        if self.telegram_user_id is None:
            if self.teleram_user_id is None:
                raise ValueError("telegram_user_id is required")
            self.telegram_user_id = self.teleram_user_id
        return self


class StatusIn(In):
    user_id: TelegramId
    order_id: Ident
    horeca_id: Ident
    status: Status
    text: Annotated[str, Field(strict=True, max_length=1000, pattern=NO_NUL)] | None = None


class Out(BaseModel):
    pass


class ErrorOut(Out):
    error: str = Field(description="Machine-readable code")
    message: str = Field(description="What went wrong, for a person")
    details: list[dict[str, Any]] | None = None


class SubscribeStatusOut(Out):
    user_id: int
    known: bool = Field(description="The user has linked the bot")
    subscribed: bool = Field(description="Linked and reachable: the same as `reachable`")
    reachable: bool = Field(
        description="The bot can write to them: they started it (wrote to it) or a message went through, and have not blocked it"
    )
    reason: Literal["not_linked", "never_started", "blocked", "deactivated"] | None = Field(
        description="Why not reachable (null when reachable): not_linked → show the deep link with a code; "
        "never_started → offer the bot with /start (statuses wait and are sent once they start it); "
        "blocked → ask them to open the bot and press Restart; deactivated → the Telegram account is gone"
    )
    is_bot_blocked: bool
    is_deactivated: bool
    linked_at: Timestamp | None
    state_changed_at: Timestamp | None
    bot_url: str


class IssuedCodeOut(Out):
    code: str
    deep_link: str
    expires_at: Timestamp


class ClaimedOut(Out):
    code: str
    user_id: int


class PendingOut(Out):
    code: str
    user_id: None
    status: Literal["pending"]


class RecordedOut(Out):
    update_id: int
    order_id: str
    horeca_id: str
    status: Status
    delivery: Literal["pending", "sending", "sent", "failed", "blocked"]


class UpdateOut(Out):
    update_id: int
    status: Status
    delivery: Literal["pending", "sent", "failed", "blocked"]
    created_at: Timestamp
    sent_at: Timestamp | None
    last_error: str | None


class OrderOut(Out):
    order_id: str
    horeca_id: str
    user_id: int
    status: Status
    cancellable: bool
    cancel_requested: bool
    cancel_requested_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    updates: list[UpdateOut]


# --- health and the admin API (operations) -------------------------------------------------------


class BotOut(Out):
    status: Literal["ok", "stale", "never_seen"] = Field(description="stale: silent for longer than BOT_STALE_SECONDS")
    last_seen: Timestamp | None
    seconds_since: float | None = Field(description="Seconds since the last heartbeat")
    username: str | None
    started_at: Timestamp | None
    last_get_updates_ok: Timestamp | None
    last_delivery_tick: Timestamp | None
    poller: str | None = Field(
        None, description="hostname:pid of the bot process polling this bot (one per bot across all processes)"
    )


class OutboxBacklogOut(Out):
    pending: int = Field(description="Not delivered yet (pending or being sent)")
    oldest_pending_age_seconds: float | None
    failed: int = Field(description="Given up on; `flask --app wsgi outbox retry` or POST /admin/outbox/retry")
    blocked: int = Field(description="Not sent because the user blocked the bot")


class WebhookBacklogOut(Out):
    pending: int
    oldest_pending_age_seconds: float | None
    failed: int


class HealthStatusOut(Out):
    """/healthz without a token: whether the web app can serve, nothing more (issue 13)."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["ok", "error"]


class HealthOut(Out):
    model_config = ConfigDict(extra="allow")
    status: Literal["ok", "error"]
    database: str = Field(
        description='"ok", or why the database cannot serve: "unreachable: <error>", "read_only", "full", "not_migrated"'
    )
    bot: BotOut | None = Field(None, description="The customer bot's heartbeat (absent when the database is down)")
    bots: dict[str, BotOut] | None = Field(None, description="Every bot by name: customer, and horeca when it runs")
    outbox: OutboxBacklogOut | None = None
    webhooks: WebhookBacklogOut | None = None


RowId = Annotated[int, Field(strict=True, gt=0, lt=2**63), BeforeValidator(_integral_number)]
Limit = Annotated[int, Field(ge=1, le=500, description="At most this many rows, newest first")]


class OutboxQuery(In):
    state: Literal["all", "failed", "blocked", "pending", "sent"] = "all"
    limit: Limit = 50


class WebhookQuery(In):
    state: Literal["all", "failed", "pending", "sent"] = "all"
    limit: Limit = 50


def _no_default(schema: JsonDict) -> None:
    schema.pop("default", None)


class RetryIn(In):
    """Queue rows again: these ids, or every failed one (or both)."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": ["ids"]}, {"required": ["all_failed"]}]})

    # Absent rather than null: no `default: null` in the schema, which says "array".
    ids: Annotated[list[RowId], Field(min_length=1, max_length=1000)] = Field(
        None,  # type: ignore[arg-type]  # None means absent; the schema says "array"
        json_schema_extra=_no_default,
    )
    all_failed: Annotated[bool, Field(strict=True)] = False

    @model_validator(mode="after")
    def _something(self) -> RetryIn:
        if self.ids is None and "all_failed" not in self.model_fields_set:
            raise ValueError("send ids (a list of row ids) or all_failed: true")
        return self


class OutboxItemOut(Out):
    id: int = Field(description="The outbox row id (the update_id of a status update)")
    kind: str
    bot: str
    chat_id: int
    horeca_id: str | None
    order_id: str | None
    status: str | None = Field(description="The order status this message announces")
    state: Literal["pending", "sending", "sent", "failed", "blocked"]
    attempts: int
    last_error: str | None
    created_at: Timestamp
    next_attempt_at: Timestamp | None
    sent_at: Timestamp | None


class OutboxListOut(Out):
    state: str
    items: list[OutboxItemOut]


class WebhookItemOut(Out):
    id: int
    event_id: str = Field(description="The webhook-id header")
    type: str
    state: Literal["pending", "sent", "failed"]
    attempts: int
    last_error: str | None
    created_at: Timestamp
    next_attempt_at: Timestamp | None
    delivered_at: Timestamp | None


class WebhookListOut(Out):
    state: str
    items: list[WebhookItemOut]


class SkippedOut(Out):
    id: int
    reason: str = Field(description="not_found, or the state the row is in")


class RetryOut(Out):
    retried: list[int] = Field(description="Rows now pending again")
    skipped: list[SkippedOut]


# --- The HoReCa staff bot (issue 4) ------------------------------------------------------------------


class StaffCodeIn(In):
    horeca_name: Annotated[str, Field(strict=True, min_length=1, max_length=128, pattern=r"^[^\x00]*$")] | None = Field(
        None, description='The name customers see in staff messages ("Message from <name>"); the horeca id when never set'
    )


class StaffCodeOut(Out):
    code: str
    deep_link: str | None = Field(
        description="https://t.me/<staff bot>?start=<code>; null while the staff bot's username is unknown"
    )
    expires_at: Timestamp


class StaffMemberOut(Out):
    telegram_user_id: int
    first_name: str | None
    last_name: str | None
    username: str | None
    name: str = Field(description="Name, @username or the id: what colleagues see")
    joined_at: Timestamp


class StaffListOut(Out):
    horeca_id: str
    staff: list[StaffMemberOut]


class StaffRemovedOut(Out):
    horeca_id: str
    telegram_user_id: int
    removed_at: Timestamp


class DialogCustomerOut(Out):
    name: str
    username: str | None
    is_bot_blocked: bool


class DialogStaffOut(Out):
    telegram_user_id: int
    name: str


class DialogMessageOut(Out):
    id: int
    direction: Literal["in", "out"] = Field(description="in: customer → staff; out: staff → customer")
    text: str
    created_at: Timestamp
    staff: DialogStaffOut | None = Field(description="Who wrote an outgoing message")
    order_id: str | None = Field(description="The customer's active order at the horeca when the message was written")
    delivery: Literal["received", "awaiting_horeca", "pending", "sent", "failed", "blocked"] = Field(
        description="in: received (relayed to the staff) or awaiting_horeca (the customer is choosing the horeca); "
        "out: the customer bot's delivery state"
    )


class DialogOut(Out):
    horeca_id: str
    user_id: int
    customer: DialogCustomerOut
    unread: int = Field(description="Customer messages no staff member has opened or answered yet")
    has_more: bool = Field(description="Older messages exist: ask again with before=<the first id>")
    messages: list[DialogMessageOut]
