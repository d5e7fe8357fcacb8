"""Request and response shapes of the API (pydantic): validation, and the source of /openapi.json."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic.config import JsonDict

from services import cafes
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


def _no_default(schema: JsonDict) -> None:
    schema.pop("default", None)


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
    # A status, or a text alone (the seed's body: a message about the order that leaves its status as it is).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["status"]},
                {"required": ["text"], "properties": {"text": {"type": "string", "minLength": 1}}},
            ]
        }
    )

    user_id: TelegramId
    order_id: Ident
    horeca_id: Ident
    # Absent rather than null: no `default: null` in the schema, which names the statuses.
    status: Status = Field(None, json_schema_extra=_no_default)  # type: ignore[arg-type]  # None means absent
    text: Annotated[str, Field(strict=True, max_length=1000, pattern=NO_NUL)] | None = None
    # The order card's details (issue 11): each one absent keeps what the order had.
    items: Annotated[list[ItemIn], Field(max_length=50)] | None = None
    total: Annotated[str, Field(strict=True, min_length=1, max_length=32, pattern=NO_NUL)] | None = Field(
        None, description="Shown as given"
    )
    eta: Annotated[AwareDatetime, Field(strict=True), AfterValidator(_utc)] | None = Field(
        None, description="ISO 8601 with an offset; the customer sees it in their own time"
    )
    pickup_code: Annotated[str, Field(strict=True, min_length=1, max_length=16, pattern=NO_NUL)] | None = None
    message_id: Annotated[str, Field(strict=True, min_length=1, max_length=64, pattern=NO_NUL)] | None = Field(
        None, description="With a text and no status: the same message_id again is the same message (200, same update_id)"
    )

    @model_validator(mode="after")
    def _status_or_text(self) -> StatusIn:
        if self.status is None and not self.text:
            raise ValueError("send status, text or both (a text alone is a message about the order)")
        return self


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
    status: Status | None = Field(description="null for a text without a status")
    delivery: Literal["pending", "sending", "sent", "failed", "blocked", "superseded"]


class UpdateOut(Out):
    update_id: int
    status: Status | None = Field(description="null for a text sent without a status")
    delivery: Literal["pending", "sent", "failed", "blocked", "superseded"] = Field(
        description="superseded: a newer status of the order was due at the same time and went out instead"
    )
    created_at: Timestamp
    sent_at: Timestamp | None
    last_error: str | None


class RatingOut(Out):
    value: int = Field(ge=1, le=5, description="1 to 5 stars")
    comment: str | None = Field(description="The text the customer sent within 10 minutes of rating; null when none")
    rated_at: Timestamp = Field(description="When the customer last tapped a rating")


class OrderOut(Out):
    order_id: str
    horeca_id: str
    user_id: int
    status: Status | None = Field(description="null until the first status (only texts so far)")
    cancellable: bool
    cancel_requested: bool
    cancel_requested_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    updates: list[UpdateOut]
    items: list[ItemOut] | None = Field(description="As the backend last sent them; null until it does")
    total: str | None
    eta: Timestamp | None
    pickup_code: str | None
    rating: RatingOut | None = Field(None, description="The customer's rating after completion; null when none")


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


class StaffGroupProblemOut(Out):
    horeca_id: str
    chat_id: int
    problem: str = Field(
        description="not_forum: topics are off (or a basic group); not_admin / no_manage_topics: the bot lacks the "
        "admin right Manage Topics; not_member: the bot was removed (a string: a newer version may add reasons)"
    )
    since: Timestamp | None


class StaffGroupsOut(Out):
    linked: int = Field(description="Staff groups linked to a horeca")
    problems: list[StaffGroupProblemOut] = Field(description="Groups where the staff bot cannot open customers' topics")


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
    staff_groups: StaffGroupsOut | None = None


RowId = Annotated[int, Field(strict=True, gt=0, lt=2**63), BeforeValidator(_integral_number)]
Limit = Annotated[int, Field(ge=1, le=500, description="At most this many rows, newest first")]


class OutboxQuery(In):
    state: Literal["all", "failed", "blocked", "pending", "sent"] = "all"
    limit: Limit = 50


class WebhookQuery(In):
    state: Literal["all", "failed", "pending", "sent"] = "all"
    limit: Limit = 50


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
    state: Literal["pending", "sending", "sent", "failed", "blocked", "superseded"]
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


# --- Cafes (issue 11): the profile, the order card's details, the backend's message without a status -----------


def _zone_name(value: str) -> str:
    if value not in cafes.timezones():
        raise ValueError("not an IANA timezone name (such as Europe/Moscow or UTC)")
    return value


Template = Annotated[
    str,
    Field(
        strict=True,
        max_length=cafes.MAX_TEMPLATE,
        description="Plain text; placeholders " + ", ".join("{" + p + "}" for p in cafes.PLACEHOLDERS) + "; {{ and }} for braces",
        json_schema_extra={"pattern": cafes.TEMPLATE_PATTERN},
    ),
    AfterValidator(cafes.check_template),
]
Language = Literal["ru", "en"]
assert get_args(Language) == cafes.LANGUAGES  # the languages the bot has catalogs for
ZoneName = Annotated[
    str,
    Field(strict=True, description="IANA timezone name", json_schema_extra={"enum": sorted(cafes.timezones())}),
    AfterValidator(_zone_name),
]
Short = Annotated[str, Field(strict=True, min_length=1, max_length=300, pattern=NO_NUL)]


class ContactIn(In):
    phone: Annotated[str, Field(strict=True, min_length=1, max_length=32, pattern=NO_NUL)] | None = None
    address: Short | None = None
    url: Short | None = None


class HorecaProfileIn(In):
    name: Annotated[str, Field(strict=True, min_length=1, max_length=100, pattern=NO_NUL)] = Field(
        description="What customers and staff read instead of the horeca id"
    )
    timezone: ZoneName = Field(cafes.DEFAULT_TIMEZONE, description="IANA timezone name; default UTC")
    contact: ContactIn | None = None
    texts: dict[Language, dict[Status, Template]] = Field(
        default_factory=dict,
        description="Per language, per status: the cafe's own line for that status (the built-in one where absent)",
    )


class ContactOut(Out):
    phone: str | None
    address: str | None
    url: str | None


class HorecaProfileOut(Out):
    horeca_id: str
    name: str
    timezone: str
    contact: ContactOut | None
    texts: dict[str, dict[str, str]]
    updated_at: Timestamp | None = Field(description="Last PUT; null for a name given only with a staff code")


class ItemIn(In):
    name: Annotated[str, Field(strict=True, min_length=1, max_length=100, pattern=NO_NUL)]
    qty: Annotated[int, Field(strict=True, ge=1, le=10000), BeforeValidator(_integral_number)]


def _utc(value: datetime) -> datetime:
    """An aware time as the naive UTC the columns hold; refused when it falls outside the years 1 to 9999."""
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError("the time is out of range") from None


class ItemOut(Out):
    name: str
    qty: int


StatusIn.model_rebuild()  # its item type is defined above, after it
OrderOut.model_rebuild()
# --- API keys scoped to cafes (issue 11) -------------------------------------------------------------


class ApiKeyIn(In):
    name: Annotated[str, Field(strict=True, min_length=1, max_length=100, pattern=NO_NUL)] = Field(
        description="Who the key is for (shown in the list)"
    )
    horeca_ids: list[Ident] = Field(min_length=1, max_length=100, description="The cafes the key may act for")


class ApiKeyOut(Out):
    id: str
    name: str
    horeca_ids: list[str]
    created_at: Timestamp
    last_used_at: Timestamp | None = Field(description="Updated at most once a minute; null when never used")


class ApiKeyCreatedOut(Out):
    id: str
    key: str = Field(description="The bearer token; shown only here, stored hashed")
    name: str
    horeca_ids: list[str]
    created_at: Timestamp


class ApiKeyListOut(Out):
    keys: list[ApiKeyOut]


class ApiKeyDeletedOut(Out):
    id: str
    deleted_at: Timestamp
