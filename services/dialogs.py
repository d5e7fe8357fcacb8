"""Dialogs between customers and a horeca's staff: the cabinet's list, selections, sending, relaying, reads, canned replies.

Every message goes through the outbox like status updates do: customer-bound ones as bot "customer", kind "message";
staff-bound ones as bot "horeca", kind "staff_notice" with a JSON payload the staff bot renders.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, delete, func, select
from sqlalchemy.exc import IntegrityError

from models import (
    CannedReply,
    Customer,
    DialogBatch,
    DialogMessage,
    DialogRead,
    DialogSelection,
    Order,
    OutboxMessage,
    StaffMember,
    db,
    iso,
    utcnow,
)
from services import customers, staff
from services.errors import Invalid, NotFound
from services.orders import ACTIVE_STATUSES
from services.staff import NotStaff

MAX_TEXT = 3500  # leaves room for the "Message from …" prefix within Telegram's 4096 characters
MAX_REPLY_CHARS = 200
MAX_REPLIES = 30
FINAL_STATES = frozenset({"sent", "failed", "blocked"})


def _setting(name: str, default: float) -> float:
    return current_app.config.get(name, default)


def window() -> timedelta:
    """How long after the last message a dialog stays open (and listed) without an active order."""
    return timedelta(hours=_setting("DIALOG_WINDOW_HOURS", 24))


def page_size() -> int:
    return int(_setting("DIALOGS_PAGE_SIZE", 8))


def colleague_window() -> timedelta:
    return timedelta(seconds=_setting("COLLEAGUE_NOTE_SECONDS", 60))


def _clean_text(text: str | None, limit: int = MAX_TEXT) -> str:
    value = (text or "").strip()
    if not value:
        raise Invalid("the message is empty", "empty_text")
    if len(value) > limit:
        raise Invalid(f"the message is too long (at most {limit} characters)", "text_too_long")
    return value


def _json(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


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


def _dialog_index(horeca_id: str) -> tuple[list[int], dict[int, datetime]]:
    """Customer ids with an active order at the horeca or a message in the window, newest activity first."""
    since = utcnow() - window()
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
    return [cid for cid, _ in sorted(activity.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)], activity


def _orders_for(horeca_id: str, customer_ids: list[int]) -> dict[int, Order]:
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


def _unread(horeca_id: str, customer_ids: list[int]) -> dict[int, int]:
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
    return {cid: count for cid, count in rows}


def colleague_answers(horeca_id: str, staff_member_id: int, customer_ids: list[int]) -> dict[int, str]:
    """Customers a colleague (not this staff member) wrote to within the last minute → that colleague's name."""
    if not customer_ids:
        return {}
    since = utcnow() - colleague_window()
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
    return {cid: member.display_name for cid, member in rows}


def _selected_ids(staff_member_id: int) -> set[int]:
    return set(db.session.scalars(select(DialogSelection.customer_id).where(DialogSelection.staff_member_id == staff_member_id)))


def list_dialogs(telegram_user_id: int, page: int = 0) -> DialogPage:
    """One page of the cabinet's dialog list for the account's current horeca."""
    try:
        _, member, _ = staff.current_member(telegram_user_id)
        horeca_id = member.horeca_id
        index, activity = _dialog_index(horeca_id)
        size = page_size()
        pages = max(1, -(-len(index) // size))
        page = min(max(page, 0), pages - 1)
        ids = index[page * size:(page + 1) * size]
        people = {c.id: c for c in db.session.scalars(select(Customer).where(Customer.id.in_(ids)))} if ids else {}
        orders = _orders_for(horeca_id, ids)
        unread = _unread(horeca_id, ids)
        colleagues = colleague_answers(horeca_id, member.id, ids)
        selected = _selected_ids(member.id)
        items = []
        for cid in ids:
            customer = people[cid]
            order = orders.get(cid)
            items.append(
                DialogItem(
                    customer_id=cid, telegram_user_id=customer.telegram_user_id, name=customer.display_name,
                    username=customer.username, order_id=order.order_id if order else None,
                    order_status=order.status if order else None, unread=unread.get(cid, 0), selected=cid in selected,
                    last_activity=activity[cid], colleague=colleagues.get(cid),
                )
            )
        result = DialogPage(
            horeca_id=horeca_id, horeca_name=staff.horeca_name(horeca_id), items=items, page=page, pages=pages,
            total=len(index), selected=len(selected),
        )
        db.session.commit()  # current_member may have repaired the state
        return result
    except Exception:
        db.session.rollback()
        raise


# --- selection -------------------------------------------------------------------------------------


def _knows(horeca_id: str, customer_id: int) -> bool:
    """Whether the customer has ever had an order or a message with this horeca (forged ids select nobody)."""
    order = db.session.scalar(select(Order.id).where(Order.horeca_id == horeca_id, Order.customer_id == customer_id).limit(1))
    if order is not None:
        return True
    message = db.session.scalar(
        select(DialogMessage.id).where(DialogMessage.horeca_id == horeca_id, DialogMessage.customer_id == customer_id).limit(1)
    )
    return message is not None


def _select(staff_member_id: int, customer_ids: list[int]) -> None:
    existing = _selected_ids(staff_member_id)
    now = utcnow()
    for cid in customer_ids:
        if cid in existing:
            continue
        try:
            with db.session.begin_nested():
                db.session.add(DialogSelection(staff_member_id=staff_member_id, customer_id=cid, created_at=now))
        except IntegrityError:  # a double tap selected it meanwhile
            pass


def toggle(telegram_user_id: int, customer_id: int) -> bool:
    """Tick or untick one dialog; returns whether it is selected now. NotFound for a customer foreign to the horeca."""
    try:
        _, member, _ = staff.current_member(telegram_user_id, lock=True)
        if not _knows(member.horeca_id, customer_id):
            raise NotFound("no such dialog", "dialog_not_found")
        row = db.session.scalar(
            select(DialogSelection).where(
                DialogSelection.staff_member_id == member.id, DialogSelection.customer_id == customer_id
            )
        )
        if row is not None:
            db.session.delete(row)
            selected = False
        else:
            _select(member.id, [customer_id])
            selected = True
        db.session.commit()
        return selected
    except Exception:
        db.session.rollback()
        raise


def select_all(telegram_user_id: int) -> int:
    """Tick every dialog in the list (all pages); returns how many are selected."""
    try:
        _, member, _ = staff.current_member(telegram_user_id, lock=True)
        index, _ = _dialog_index(member.horeca_id)
        _select(member.id, index)
        count = len(_selected_ids(member.id))
        db.session.commit()
        return count
    except Exception:
        db.session.rollback()
        raise


def clear(telegram_user_id: int) -> None:
    """Untick every dialog."""
    try:
        state, member, _ = staff.current_member(telegram_user_id, lock=True)
        db.session.execute(delete(DialogSelection).where(DialogSelection.staff_member_id == member.id))
        if state.mode == "composing":
            state.mode = "idle"
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise


def _replace_selection(staff_member_id: int, customer_id: int) -> None:
    db.session.execute(
        delete(DialogSelection).where(
            DialogSelection.staff_member_id == staff_member_id, DialogSelection.customer_id != customer_id
        )
    )
    _select(staff_member_id, [customer_id])


# --- reads -----------------------------------------------------------------------------------------


def _mark_read(horeca_id: str, customer_id: int) -> None:
    """Mark every inbound message of the dialog read (inside the caller's transaction)."""
    newest = db.session.scalar(
        select(func.max(DialogMessage.id)).where(
            DialogMessage.horeca_id == horeca_id, DialogMessage.customer_id == customer_id, DialogMessage.direction == "in"
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
    try:
        _mark_read(horeca_id, customer_id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise


# --- composing and sending -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a staff member is about to write to."""

    horeca_id: str
    horeca_name: str
    count: int
    names: list[str]  # the first few recipients
    colleagues: dict[str, str] = field(default_factory=dict)  # customer name → colleague who answered within a minute
    order_id: str | None = None  # for a single dialog


def _target(member: StaffMember, customer_ids: list[int]) -> Target:
    people = []
    if customer_ids:
        people = list(db.session.scalars(select(Customer).where(Customer.id.in_(customer_ids)).order_by(Customer.id)))
    colleagues = colleague_answers(member.horeca_id, member.id, [c.id for c in people])
    by_id = {c.id: c for c in people}
    order_id = None
    if len(people) == 1:
        order = _orders_for(member.horeca_id, [people[0].id]).get(people[0].id)
        order_id = order.order_id if order else None
    return Target(
        horeca_id=member.horeca_id, horeca_name=staff.horeca_name(member.horeca_id), count=len(people),
        names=[c.display_name for c in people[:5]],
        colleagues={by_id[cid].display_name: name for cid, name in colleagues.items()}, order_id=order_id,
    )


def start_composing(telegram_user_id: int) -> Target:
    """"Write to selected": the account's next text goes to its selected dialogs. Invalid when none is selected."""
    try:
        state, member, _ = staff.current_member(telegram_user_id, lock=True)
        selected = sorted(_selected_ids(member.id))
        if not selected:
            raise Invalid("select at least one dialog first", "nothing_selected")
        state.mode = "composing"
        state.updated_at = utcnow()
        target = _target(member, selected)
        db.session.commit()
        return target
    except Exception:
        db.session.rollback()
        raise


def _reply_to(telegram_user_id: int, horeca_id: str, customer_id: int) -> Target:
    member = staff.membership(horeca_id, telegram_user_id)
    if member is None or member.removed_at is not None:
        raise NotStaff("you are not staff of this horeca", "not_staff")
    state = staff.lock_state(telegram_user_id)
    state.current_horeca_id = horeca_id
    state.mode = "composing"
    state.updated_at = utcnow()
    _replace_selection(member.id, customer_id)
    _mark_read(horeca_id, customer_id)
    return _target(member, [customer_id])


def reply_to_message(telegram_user_id: int, dialog_message_id: int) -> Target:
    """The Reply button under a customer's message: select exactly that dialog and wait for the reply."""
    try:
        message = db.session.get(DialogMessage, dialog_message_id)
        if message is None or message.direction != "in" or message.horeca_id is None:
            raise NotFound("no such dialog", "dialog_not_found")
        target = _reply_to(telegram_user_id, message.horeca_id, message.customer_id)
        db.session.commit()
        return target
    except Exception:
        db.session.rollback()
        raise


def reply_to_customer(telegram_user_id: int, customer_id: int) -> Target:
    """Reply from an opened dialog: select exactly that customer in the current horeca and wait for the reply."""
    try:
        _, member, _ = staff.current_member(telegram_user_id, lock=True)
        if not _knows(member.horeca_id, customer_id):
            raise NotFound("no such dialog", "dialog_not_found")
        target = _reply_to(telegram_user_id, member.horeca_id, customer_id)
        db.session.commit()
        return target
    except Exception:
        db.session.rollback()
        raise


@dataclass(frozen=True)
class Sent:
    """The outcome of one send: queued for delivery now, the summary follows once it is delivered."""

    batch_id: int
    total: int
    queued: int
    blocked: int  # already known to have blocked the bot: recorded blocked, not sent
    blocked_names: list[str]
    summarized: bool  # nothing left to deliver: `blocked` is the whole story, no summary will follow


def _newest_active_order(horeca_id: str, customer_id: int) -> Order | None:
    return db.session.scalar(
        select(Order)
        .where(Order.horeca_id == horeca_id, Order.customer_id == customer_id, Order.status.in_(ACTIVE_STATUSES))
        .order_by(Order.updated_at.desc(), Order.id.desc())
        .limit(1)
    )


def send_to_selected(telegram_user_id: int, text: str, *, require_composing: bool = True) -> Sent:
    """Queue `text` to every selected customer through the customer bot; the account goes back to idle."""
    try:
        state, member, _ = staff.current_member(telegram_user_id, lock=True)
        if require_composing and state.mode != "composing":
            raise Invalid("press “Write to selected” first", "not_composing")
        body = _clean_text(text)
        selected = sorted(_selected_ids(member.id))
        if not selected:
            raise Invalid("select at least one dialog first", "nothing_selected")
        now = utcnow()
        name = staff.horeca_name(member.horeca_id)
        batch = DialogBatch(horeca_id=member.horeca_id, staff_member_id=member.id, total=len(selected), created_at=now)
        db.session.add(batch)
        db.session.flush()
        people = list(db.session.scalars(select(Customer).where(Customer.id.in_(selected)).order_by(Customer.id)))
        blocked_names = []
        for customer in people:
            blocked = customer.is_blocked
            outbox = OutboxMessage(
                kind="message", bot="customer", chat_id=customer.chat_id, text=body,
                payload=_json({"horeca_id": member.horeca_id, "horeca": name, "lang": customer.language_code}),
                state="blocked" if blocked else "pending", created_at=now, next_attempt_at=now,
                last_error="the user has blocked the bot" if blocked else None,
            )
            db.session.add(outbox)
            db.session.flush()
            order = _newest_active_order(member.horeca_id, customer.id)
            db.session.add(
                DialogMessage(
                    direction="out", horeca_id=member.horeca_id, customer_id=customer.id, staff_member_id=member.id,
                    order_pk=order.id if order else None, text=body, state="queued", outbox_id=outbox.id,
                    batch_id=batch.id, created_at=now,
                )
            )
            _mark_read(member.horeca_id, customer.id)
            if blocked:
                blocked_names.append(customer.display_name)
        batch.total = len(people)
        summarized = len(blocked_names) == len(people)
        if summarized:
            batch.summarized_at = now  # the caller tells the staff member right away
        state.mode = "idle"
        state.updated_at = now
        result = Sent(
            batch_id=batch.id, total=len(people), queued=len(people) - len(blocked_names), blocked=len(blocked_names),
            blocked_names=blocked_names, summarized=summarized,
        )
        db.session.commit()
        return result
    except Exception:
        db.session.rollback()
        raise


def finish_batches(limit: int = 100) -> int:
    """Queue a delivery summary to the sender of every batch whose messages are all delivered (or final); a job tick."""
    try:
        batches = db.session.scalars(
            select(DialogBatch)
            .where(DialogBatch.summarized_at.is_(None))
            .order_by(DialogBatch.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        done = 0
        now = utcnow()
        for batch in batches:
            rows = db.session.execute(
                select(OutboxMessage.state, Customer)
                .join(DialogMessage, DialogMessage.outbox_id == OutboxMessage.id)
                .join(Customer, Customer.id == DialogMessage.customer_id)
                .where(DialogMessage.batch_id == batch.id)
                .order_by(Customer.id)
            ).all()
            if any(state not in FINAL_STATES for state, _ in rows):
                continue
            member = db.session.get(StaffMember, batch.staff_member_id)
            batch.summarized_at = now
            done += 1
            if member is None or member.removed_at is not None:
                continue
            sent = [c.display_name for state, c in rows if state == "sent"]
            blocked = [c.display_name for state, c in rows if state == "blocked"]
            failed = [c.display_name for state, c in rows if state == "failed"]
            staff.queue_notice(
                member,
                {
                    "type": "delivery_summary", "batch_id": batch.id, "total": len(rows),
                    "sent": len(sent), "blocked": len(blocked), "failed": len(failed),
                    "sent_names": sent[:5], "blocked_names": blocked[:5], "failed_names": failed[:5],
                },
            )
        db.session.commit()
        return done
    except Exception:
        db.session.rollback()
        raise


# --- customer → staff ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relayed:
    """What became of a customer's text: relayed to a horeca, a question which horeca, or nothing (no dialog)."""

    outcome: str  # relayed | choose | none | already
    horeca_id: str | None = None
    horeca_name: str | None = None
    dialog_message_id: int | None = None
    staff_count: int = 0
    choices: list[tuple[str, str]] = field(default_factory=list)  # (key for the button, horeca name)


def horeca_key(horeca_id: str) -> str:
    """A short stable key for a horeca in callback data (Telegram allows 64 bytes; ids may be 128 characters)."""
    return hashlib.sha256(horeca_id.encode()).hexdigest()[:12]


def _candidates(customer: Customer) -> list[str]:
    """Horecas with staff the customer can talk to: active orders first (oldest first), then open dialogs (newest first)."""
    found: list[str] = []
    orders = db.session.scalars(
        select(Order.horeca_id)
        .where(Order.customer_id == customer.id, Order.status.in_(ACTIVE_STATUSES))
        .order_by(Order.created_at, Order.id)
    )
    for horeca_id in orders:
        if horeca_id not in found:
            found.append(horeca_id)
    recent = db.session.execute(
        select(DialogMessage.horeca_id, func.max(DialogMessage.id).label("last"))
        .where(
            DialogMessage.customer_id == customer.id,
            DialogMessage.horeca_id.is_not(None),
            DialogMessage.created_at >= utcnow() - window(),
        )
        .group_by(DialogMessage.horeca_id)
        .order_by(func.max(DialogMessage.id).desc())
    )
    for horeca_id, _ in recent:
        if horeca_id not in found:
            found.append(horeca_id)
    return [h for h in found if staff.active_staff(h)]


def has_dialog(telegram_user_id: int) -> bool:
    """Whether the customer's plain text would go to a horeca's staff (an active order or an open dialog there)."""
    customer = customers.find(telegram_user_id)
    result = customer is not None and bool(_candidates(customer))
    db.session.rollback()
    return result


def _relay(customer: Customer, message: DialogMessage, horeca_id: str) -> Relayed:
    order = _newest_active_order(horeca_id, customer.id)
    message.horeca_id = horeca_id
    message.order_pk = order.id if order else None
    message.state = "relayed"
    name = staff.horeca_name(horeca_id)
    members = staff.active_staff(horeca_id)
    for member in members:
        serves = db.session.scalar(
            select(func.count()).select_from(StaffMember).where(
                StaffMember.telegram_user_id == member.telegram_user_id, StaffMember.removed_at.is_(None)
            )
        )
        staff.queue_notice(
            member,
            {
                "type": "customer_message", "dialog_message_id": message.id, "horeca_id": horeca_id, "horeca": name,
                "show_horeca": (serves or 0) > 1, "customer": customer.display_name, "username": customer.username,
                "order_id": order.order_id if order else None, "text": message.text,
            },
        )
    return Relayed("relayed", horeca_id, name, message.id, len(members))


def relay_from_customer(telegram_user_id: int, text: str) -> Relayed:
    """A customer's plain text: store it and send it to every staff member of their horeca (or ask which horeca)."""
    try:
        customer = customers.find(telegram_user_id)
        if customer is None:
            db.session.rollback()
            return Relayed("none")
        candidates = _candidates(customer)
        if not candidates:
            db.session.rollback()
            return Relayed("none")
        body = _clean_text(text, limit=4000)
        message = DialogMessage(direction="in", customer_id=customer.id, text=body, state="awaiting_horeca", created_at=utcnow())
        db.session.add(message)
        db.session.flush()
        if len(candidates) == 1:
            result = _relay(customer, message, candidates[0])
        else:
            choices = [(horeca_key(h), staff.horeca_name(h)) for h in candidates]
            result = Relayed("choose", dialog_message_id=message.id, choices=choices)
        db.session.commit()
        return result
    except Exception:
        db.session.rollback()
        raise


def choose_horeca(telegram_user_id: int, dialog_message_id: int, key: str) -> Relayed:
    """The customer picked the horeca a waiting message is for; forged or stale choices relay nothing."""
    try:
        customer = customers.find(telegram_user_id)
        message = db.session.get(DialogMessage, dialog_message_id, with_for_update=True)
        if customer is None or message is None or message.customer_id != customer.id or message.direction != "in":
            db.session.rollback()
            return Relayed("none")
        if message.state != "awaiting_horeca":
            result = Relayed("already", message.horeca_id, staff.horeca_name(message.horeca_id or ""), message.id)
            db.session.rollback()
            return result
        horeca_id = next((h for h in _candidates(customer) if horeca_key(h) == key), None)
        if horeca_id is None:
            db.session.rollback()
            return Relayed("none")
        result = _relay(customer, message, horeca_id)
        db.session.commit()
        return result
    except Exception:
        db.session.rollback()
        raise


# --- the stored conversation -----------------------------------------------------------------------


def _delivery(message: DialogMessage, outbox_state: str | None) -> str:
    if message.direction == "in":
        return "received" if message.state == "relayed" else message.state
    if outbox_state in (None, "sending"):
        return "pending"
    return outbox_state


def conversation(horeca_id: str, telegram_user_id: int, limit: int = 100, before: int | None = None) -> dict:
    """The stored dialog of a horeca with one customer, oldest first (the newest `limit` messages before `before`)."""
    try:
        customer = customers.find(telegram_user_id)
        if customer is None:
            raise NotFound("this Telegram user is not a customer of the bot", "unknown_user")
        stmt = (
            select(DialogMessage, OutboxMessage.state, StaffMember, Order.order_id)
            .outerjoin(OutboxMessage, OutboxMessage.id == DialogMessage.outbox_id)
            .outerjoin(StaffMember, StaffMember.id == DialogMessage.staff_member_id)
            .outerjoin(Order, Order.id == DialogMessage.order_pk)
            .where(DialogMessage.horeca_id == horeca_id, DialogMessage.customer_id == customer.id)
        )
        if before is not None:
            stmt = stmt.where(DialogMessage.id < before)
        rows = db.session.execute(stmt.order_by(DialogMessage.id.desc()).limit(limit + 1)).all()
        has_more = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        unread = _unread(horeca_id, [customer.id]).get(customer.id, 0)
        result = {
            "horeca_id": horeca_id,
            "user_id": telegram_user_id,
            "customer": {"name": customer.display_name, "username": customer.username, "is_bot_blocked": customer.is_blocked},
            "unread": unread,
            "has_more": has_more,
            "messages": [
                {
                    "id": m.id,
                    "direction": m.direction,
                    "text": m.text,
                    "created_at": iso(m.created_at),
                    "staff": {"telegram_user_id": member.telegram_user_id, "name": member.display_name} if member else None,
                    "order_id": order_id,
                    "delivery": _delivery(m, outbox_state),
                }
                for m, outbox_state, member, order_id in rows
            ],
        }
        db.session.rollback()
        return result
    except Exception:
        db.session.rollback()
        raise


def open_dialog(telegram_user_id: int, customer_id: int, limit: int = 10) -> dict:
    """The staff member opens one dialog of the current horeca: its last messages; marks it read."""
    try:
        _, member, _ = staff.current_member(telegram_user_id)
        customer = db.session.get(Customer, customer_id)
        if customer is None or not _knows(member.horeca_id, customer_id):
            raise NotFound("no such dialog", "dialog_not_found")
        horeca_id, customer_tid = member.horeca_id, customer.telegram_user_id
        colleagues = colleague_answers(horeca_id, member.id, [customer_id])
        order = _orders_for(horeca_id, [customer_id]).get(customer_id)
        order_view = {"order_id": order.order_id, "status": order.status} if order else None
        _mark_read(horeca_id, customer_id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    view = conversation(horeca_id, customer_tid, limit=limit)
    view["customer_id"] = customer_id
    view["order"] = order_view
    view["colleague"] = colleagues.get(customer_id)
    return view


# --- canned replies --------------------------------------------------------------------------------


def _reply_dict(row: CannedReply) -> dict:
    return {"id": row.id, "text": row.text}


def list_replies(telegram_user_id: int) -> list[dict]:
    """The current horeca's canned replies, oldest first."""
    try:
        _, member, _ = staff.current_member(telegram_user_id)
        rows = db.session.scalars(select(CannedReply).where(CannedReply.horeca_id == member.horeca_id).order_by(CannedReply.id))
        result = [_reply_dict(r) for r in rows]
        db.session.commit()
        return result
    except Exception:
        db.session.rollback()
        raise


def add_reply(telegram_user_id: int, text: str) -> dict:
    """Save a short canned reply for the current horeca; the account goes back to idle."""
    try:
        state, member, _ = staff.current_member(telegram_user_id, lock=True)
        state.mode = "idle"
        body = _clean_text(text, limit=MAX_REPLY_CHARS)
        count = db.session.scalar(select(func.count()).select_from(CannedReply).where(CannedReply.horeca_id == member.horeca_id))
        if (count or 0) >= MAX_REPLIES:
            raise Invalid(f"at most {MAX_REPLIES} canned replies; delete one first", "too_many_replies")
        row = CannedReply(horeca_id=member.horeca_id, text=body, created_by=telegram_user_id, created_at=utcnow())
        db.session.add(row)
        db.session.flush()
        result = _reply_dict(row)
        db.session.commit()
        return result
    except Exception:
        db.session.rollback()
        raise


def delete_reply(telegram_user_id: int, reply_id: int) -> bool:
    """Delete a canned reply of the current horeca; False if there is no such reply (deleted meanwhile, forged)."""
    try:
        _, member, _ = staff.current_member(telegram_user_id)
        done = db.session.execute(
            delete(CannedReply).where(CannedReply.id == reply_id, CannedReply.horeca_id == member.horeca_id)
        ).rowcount
        db.session.commit()
        return bool(done)
    except Exception:
        db.session.rollback()
        raise


def send_reply(telegram_user_id: int, reply_id: int) -> Sent:
    """Send a canned reply of the current horeca to the selected dialogs, with one tap."""
    try:
        _, member, _ = staff.current_member(telegram_user_id)
        row = db.session.get(CannedReply, reply_id)
        if row is None or row.horeca_id != member.horeca_id:
            raise NotFound("this canned reply was deleted", "reply_not_found")
        text = row.text
        db.session.rollback()
    except Exception:
        db.session.rollback()
        raise
    return send_to_selected(telegram_user_id, text, require_composing=False)
