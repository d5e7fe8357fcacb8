"""Request and response shapes of the staff API (webapp/staff_api.py): staff codes, the staff list, a customer's
dialog, group codes. The shared pieces (`In`, `Out`, `Timestamp`) are in webapp/schemas.py."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from webapp.schemas import In, Out, Timestamp

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


class DialogMediaItemOut(Out):
    """A file (its Telegram metadata), a location, a venue or a contact; null fields are the ones the kind lacks."""

    type: Literal[
        "photo", "document", "voice", "audio", "video", "video_note", "sticker", "animation", "location", "venue", "contact"
    ]
    caption: str | None = Field(None, description="An album item's own caption")
    file_unique_id: str | None = Field(None, description="Telegram's id of the file, the same for every bot")
    file_size: int | None = None
    file_name: str | None = None
    mime_type: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    title: str | None = None
    address: str | None = None
    phone_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class DialogMediaOut(DialogMediaItemOut):
    """What a message carries besides text; an album lists its items in order."""

    type: Literal[  # type: ignore[assignment]
        "photo",
        "document",
        "voice",
        "audio",
        "video",
        "video_note",
        "sticker",
        "animation",
        "location",
        "venue",
        "contact",
        "album",
    ]
    items: list[DialogMediaItemOut] | None = Field(None, description="An album's items, in order, each with its caption")


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
    type: str = Field("text", description="text, album, or the media kind: photo, document, voice, audio, video, …")
    caption: str | None = Field(None, description="A media message's caption (its `text` too)")
    media: DialogMediaOut | None = Field(None, description="The file's metadata, the location, venue or contact")
    edited_at: Timestamp | None = Field(None, description="When the writer last edited the message")


class DialogOut(Out):
    horeca_id: str
    user_id: int
    customer: DialogCustomerOut
    unread: int = Field(description="Customer messages no staff member has opened or answered yet")
    has_more: bool = Field(description="Older messages exist: ask again with before=<the first id>")
    messages: list[DialogMessageOut]


# --- The staff group with a topic per customer (issue 12) ---------------------------------------------


class GroupCodeOut(Out):
    code: str
    command: str = Field(description="What a staff member sends in the group to link it: /link <code>")
    deep_link: str | None = Field(
        description="https://t.me/<staff bot>?startgroup=<code>&admin=manage_topics: adds the bot to a group with the "
        "right it needs and links it; null while the staff bot's username is unknown"
    )
    expires_at: Timestamp
