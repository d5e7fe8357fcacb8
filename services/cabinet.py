"""The staff cabinet: the list of dialogs of a horeca, each staff member's selection, and read marks.

A dialog is a customer with an active order at the horeca or a message within the window. The other dialog
services (outreach, relay, conversation, canned replies) build on the queries here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.exc import IntegrityError

from database import transaction
from models import (
    BotName,
    Customer,
    DialogMessage,
    DialogRead,
    DialogSelection,
    Order,
    OutboxKind,
    OutboxMessage,
    OutboxState,
    PromptEnd,
    StaffMember,
    StaffMode,
    db,
    utcnow,
)
from services import staff
from services.errors import Conflict, Invalid, NotFound
from services.media import Attachment
from services.orders import ACTIVE_STATUSES

MAX_TEXT = 3500  # leaves room for the "Message from …" prefix within Telegram's 4096 characters


@dataclass(frozen=True)
class CabinetSettings:
    """The cabinet's tunables; the edges build it from the app's configuration."""

    window: timedelta = timedelta(hours=24)  # how long after the last message a dialog stays open without an order
    page_size: int = 8
    colleague_window: timedelta = timedelta(seconds=60)  # "a colleague answered less than a minute ago"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CabinetSettings:
        """From DIALOG_WINDOW_HOURS, DIALOGS_PAGE_SIZE and COLLEAGUE_NOTE_SECONDS (defaults for missing ones)."""
        return cls(
            window=timedelta(hours=float(config.get("DIALOG_WINDOW_HOURS", 24))),
            page_size=max(1, int(config.get("DIALOGS_PAGE_SIZE", 8))),
            colleague_window=timedelta(seconds=float(config.get("COLLEAGUE_NOTE_SECONDS", 60))),
        )


DEFAULTS = CabinetSettings()


class StaleList(Conflict):
    """A button of a dialog list drawn for another selection (or a dialog no longer on its page) was pressed.

    Nothing changed; the edge re-draws the list so that the next press acts on what the user sees.
    """

    code = "stale_list"


def selection_stamp(horeca_id: str, selected: Iterable[int]) -> str:
    """A short fingerprint of a staff member's selection (8 hex digits) that the list's buttons carry."""
    ids = ",".join(str(cid) for cid in sorted(selected))
    return hashlib.blake2s(f"{horeca_id}|{ids}".encode(), digest_size=4).hexdigest()


def clean_text(text: str | None, limit: int = MAX_TEXT) -> str:
    """The text stripped; Invalid when empty or longer than `limit`."""
    value = (text or "").strip()
    if not value:
        raise Invalid("the message is empty", "empty_text")
    if len(value) > limit:
        raise Invalid(f"the message is too long (at most {limit} characters)", "text_too_long")
    return value


# --- the list --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DialogItem:
    customer_id: int
    telegram_user_id: int
    name: str
    username: str | None
    order_id: str | None
    order_status: str | None
    unread: int
    selected: bool
    last_activity: datetime
    colleague: str | None  # a colleague who answered this dialog within the last minute


@dataclass(frozen=True)
class DialogPage:
    horeca_id: str
    horeca_name: str
    items: list[DialogItem]
    page: int
    pages: int
    total: int
    selected: int  # how many dialogs this staff member has selected (on every page)
    first: int  # the 1-based position of the page's first item in the whole list
    stamp: str  # the selection's fingerprint (`selection_stamp`): the list's buttons carry it


def dialog_index(horeca_id: str, settings: CabinetSettings) -> tuple[list[int], dict[int, datetime]]:
    """Customer ids with an active order at the horeca or a message in the window, newest activity first."""
    since = utcnow() - settings.window
    activity: dict[int, datetime] = {}
    orders = db.session.execute(
        select(Order.customer_id, func.max(Order.updated_at))
        .where(Order.horeca_id == horeca_id, Order.status.in_(ACTIVE_STATUSES))
        .group_by(Order.customer_id)
    )
    for customer_id, updated in orders:
        activity[customer_id] = updated
    messages = db.session.execute(
        select(DialogMessage.customer_id, func.max(DialogMessage.created_at))
        .where(DialogMessage.horeca_id == horeca_id, DialogMessage.created_at >= since)
        .group_by(DialogMessage.customer_id)
    )
    for customer_id, last in messages:
        activity[customer_id] = max(activity.get(customer_id, last), last)
    ordered = sorted(activity.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    return [cid for cid, _ in ordered], activity


def orders_for(horeca_id: str, customer_ids: list[int]) -> dict[int, Order]:
    """Per customer: the newest active order at the horeca, else the newest order at all."""
    best: dict[int, Order] = {}
    if not customer_ids:
        return best
    rows = db.session.scalars(
        select(Order)
        .where(Order.horeca_id == horeca_id, Order.customer_id.in_(customer_ids))
        .order_by(Order.updated_at, Order.id)
    )
    for order in rows:
        current = best.get(order.customer_id)
        active = order.status in ACTIVE_STATUSES
        if current is None or active or current.status not in ACTIVE_STATUSES:
            best[order.customer_id] = order
    return best


def newest_active_order(horeca_id: str, customer_id: int) -> Order | None:
    """The customer's newest active order at the horeca (a message is filed under it)."""
    return db.session.scalar(
        select(Order)
        .where(Order.horeca_id == horeca_id, Order.customer_id == customer_id, Order.status.in_(ACTIVE_STATUSES))
        .order_by(Order.updated_at.desc(), Order.id.desc())
        .limit(1)
    )


def queue_staff_message(
    horeca_id: str,
    member: StaffMember,
    customer: Customer,
    horeca_name: str,
    body: str,
    attachment: Attachment | None,
    now: datetime,
    *,
    batch_id: int | None = None,
    source_message_id: int | None = None,
) -> OutboxMessage:
    """A staff member's message to one customer, in the caller's transaction: the customer-bot outbox row (set aside
    as blocked for a customer who blocked the bot) and the stored `DialogMessage` (from the cabinet or a topic)."""
    blocked = customer.is_blocked
    payload: dict[str, Any] = {"horeca_id": horeca_id, "horeca": horeca_name, "lang": customer.language_code}
    if attachment is not None:
        payload["media"] = attachment.as_payload()
    outbox = OutboxMessage(
        kind=OutboxKind.MESSAGE,
        bot=BotName.CUSTOMER,
        chat_id=customer.chat_id,
        horeca_id=horeca_id,
        text=body,
        payload=json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        state=OutboxState.BLOCKED if blocked else OutboxState.PENDING,
        created_at=now,
        next_attempt_at=now,
        last_error="the user has blocked the bot" if blocked else None,
    )
    db.session.add(outbox)
    db.session.flush()
    order = newest_active_order(horeca_id, customer.id)
    db.session.add(
        DialogMessage(
            direction="out",
            horeca_id=horeca_id,
            customer_id=customer.id,
            staff_member_id=member.id,
            order_pk=order.id if order else None,
            text=body,
            state="queued",
            outbox_id=outbox.id,
            batch_id=batch_id,
            created_at=now,
            media=attachment.as_json() if attachment else None,
            source_message_id=source_message_id,
        )
    )
    return outbox


def unread_counts(horeca_id: str, customer_ids: list[int]) -> dict[int, int]:
    """Per customer: inbound messages after the horeca's read mark."""
    if not customer_ids:
        return {}
    rows = db.session.execute(
        select(DialogMessage.customer_id, func.count())
        .outerjoin(
            DialogRead,
            and_(DialogRead.horeca_id == DialogMessage.horeca_id, DialogRead.customer_id == DialogMessage.customer_id),
        )
        .where(
            DialogMessage.horeca_id == horeca_id,
            DialogMessage.direction == "in",
            DialogMessage.customer_id.in_(customer_ids),
            DialogMessage.id > func.coalesce(DialogRead.last_read_message_id, 0),
        )
        .group_by(DialogMessage.customer_id)
    )
    return {cid: count for cid, count in rows.tuples()}


def colleague_answers(horeca_id: str, staff_member_id: int, customer_ids: list[int], settings: CabinetSettings) -> dict[int, str]:
    """Customers a colleague (not this staff member) wrote to within the colleague window → that colleague's name."""
    if not customer_ids:
        return {}
    since = utcnow() - settings.colleague_window
    rows = db.session.execute(
        select(DialogMessage.customer_id, StaffMember)
        .join(StaffMember, StaffMember.id == DialogMessage.staff_member_id)
        .where(
            DialogMessage.horeca_id == horeca_id,
            DialogMessage.direction == "out",
            DialogMessage.staff_member_id != staff_member_id,
            DialogMessage.customer_id.in_(customer_ids),
            DialogMessage.created_at >= since,
        )
        .order_by(DialogMessage.id)
    )
    return {cid: member.display_name for cid, member in rows.tuples()}


def selected_ids(staff_member_id: int) -> set[int]:
    """The customers this staff member has ticked."""
    stmt = select(DialogSelection.customer_id).where(DialogSelection.staff_member_id == staff_member_id)
    return set(db.session.scalars(stmt))


def list_dialogs(telegram_user_id: int, page: int = 0, settings: CabinetSettings = DEFAULTS) -> DialogPage:
    """One page of the cabinet's dialog list for the account's current horeca."""
    with transaction():  # current_member may repair the account's state
        _, member, _ = staff.current_member(telegram_user_id)
        horeca_id = member.horeca_id
        index, activity = dialog_index(horeca_id, settings)
        size = settings.page_size
        pages = max(1, -(-len(index) // size))
        page = min(max(page, 0), pages - 1)
        ids = index[page * size : (page + 1) * size]
        people = {c.id: c for c in db.session.scalars(select(Customer).where(Customer.id.in_(ids)))} if ids else {}
        orders = orders_for(horeca_id, ids)
        unread = unread_counts(horeca_id, ids)
        colleagues = colleague_answers(horeca_id, member.id, ids, settings)
        selected = selected_ids(member.id)
        items = []
        for cid in ids:
            customer = people[cid]
            order = orders.get(cid)
            items.append(
                DialogItem(
                    customer_id=cid,
                    telegram_user_id=customer.telegram_user_id,
                    name=customer.display_name,
                    username=customer.username,
                    order_id=order.order_id if order else None,
                    order_status=order.status if order else None,
                    unread=unread.get(cid, 0),
                    selected=cid in selected,
                    last_activity=activity[cid],
                    colleague=colleagues.get(cid),
                )
            )
        return DialogPage(
            horeca_id=horeca_id,
            horeca_name=staff.horeca_name(horeca_id),
            items=items,
            page=page,
            pages=pages,
            total=len(index),
            selected=len(selected),
            first=page * size + 1,
            stamp=selection_stamp(horeca_id, selected),
        )


# --- selection -------------------------------------------------------------------------------------


def knows(horeca_id: str, customer_id: int) -> bool:
    """Whether the customer has ever had an order or a message with this horeca (forged ids select nobody)."""
    order = db.session.scalar(select(Order.id).where(Order.horeca_id == horeca_id, Order.customer_id == customer_id).limit(1))
    if order is not None:
        return True
    message = db.session.scalar(
        select(DialogMessage.id).where(DialogMessage.horeca_id == horeca_id, DialogMessage.customer_id == customer_id).limit(1)
    )
    return message is not None


def add_to_selection(staff_member_id: int, customer_ids: list[int]) -> None:
    """Tick these customers (inside the caller's transaction); ticking twice is harmless."""
    existing = selected_ids(staff_member_id)
    now = utcnow()
    for cid in customer_ids:
        if cid in existing:
            continue
        try:
            with db.session.begin_nested():
                db.session.add(DialogSelection(staff_member_id=staff_member_id, customer_id=cid, created_at=now))
        except IntegrityError:  # a double tap selected it meanwhile
            pass


def select_only(staff_member_id: int, customer_id: int) -> None:
    """Make this customer the whole selection (inside the caller's transaction)."""
    db.session.execute(
        delete(DialogSelection).where(
            DialogSelection.staff_member_id == staff_member_id, DialogSelection.customer_id != customer_id
        )
    )
    add_to_selection(staff_member_id, [customer_id])


def check_seen(member: StaffMember, seen: str | None) -> None:
    """StaleList unless the member's selection is still the one a list with stamp `seen` showed (None: no check)."""
    if seen is not None and selection_stamp(member.horeca_id, selected_ids(member.id)) != seen:
        raise StaleList("the selection changed since this list was drawn", "stale_list")


def toggle(
    telegram_user_id: int,
    customer_id: int,
    page: int | None = None,
    seen: str | None = None,
    settings: CabinetSettings = DEFAULTS,
) -> bool:
    """Tick or untick one dialog; returns whether it is selected now. NotFound for a customer foreign to the horeca.

    Pressed on a list (`page`, `seen`): StaleList, changing nothing, when the selection is no longer the one the
    list showed or the dialog is no longer on that page.
    """
    with transaction():
        _, member, _ = staff.current_member(telegram_user_id, lock=True)
        if not knows(member.horeca_id, customer_id):
            raise NotFound("no such dialog", "dialog_not_found")
        check_seen(member, seen)
        if page is not None:
            index, _ = dialog_index(member.horeca_id, settings)
            if customer_id not in index[page * settings.page_size : (page + 1) * settings.page_size]:
                raise StaleList("this dialog is no longer on this page", "stale_list")
        row = db.session.scalar(
            select(DialogSelection).where(
                DialogSelection.staff_member_id == member.id, DialogSelection.customer_id == customer_id
            )
        )
        if row is not None:
            db.session.delete(row)
            return False
        add_to_selection(member.id, [customer_id])
        return True


def select_all(telegram_user_id: int, settings: CabinetSettings = DEFAULTS, seen: str | None = None) -> int:
    """Tick every dialog in the list (all pages); returns how many are selected. StaleList as `toggle`."""
    with transaction():
        _, member, _ = staff.current_member(telegram_user_id, lock=True)
        check_seen(member, seen)
        index, _ = dialog_index(member.horeca_id, settings)
        add_to_selection(member.id, index)
        return len(selected_ids(member.id))


def clear(telegram_user_id: int, seen: str | None = None) -> None:
    """Untick every dialog (and close a prompt writing to them). StaleList as `toggle`."""
    with transaction():
        state, member, _ = staff.current_member(telegram_user_id, lock=True)
        check_seen(member, seen)
        db.session.execute(delete(DialogSelection).where(DialogSelection.staff_member_id == member.id))
        if state.mode == StaffMode.COMPOSING:
            staff.end_prompt(state, PromptEnd.CLOSED)


# --- reads -----------------------------------------------------------------------------------------


def mark_read_in(horeca_id: str, customer_id: int) -> None:
    """Mark every inbound message of the dialog read (inside the caller's transaction)."""
    newest = db.session.scalar(
        select(func.max(DialogMessage.id)).where(
            DialogMessage.horeca_id == horeca_id,
            DialogMessage.customer_id == customer_id,
            DialogMessage.direction == "in",
        )
    )
    if newest is None:
        return
    mark = select(DialogRead).where(DialogRead.horeca_id == horeca_id, DialogRead.customer_id == customer_id)
    row = db.session.scalar(mark)
    now = utcnow()
    if row is None:
        try:
            with db.session.begin_nested():
                db.session.add(DialogRead(horeca_id=horeca_id, customer_id=customer_id, last_read_message_id=newest, read_at=now))
            return
        except IntegrityError:
            row = db.session.scalar(mark)
            assert row is not None
    if newest > row.last_read_message_id:
        row.last_read_message_id = newest
        row.read_at = now


def mark_read(horeca_id: str, customer_id: int) -> None:
    """Mark the dialog read for the whole horeca. Own transaction."""
    with transaction():
        mark_read_in(horeca_id, customer_id)
