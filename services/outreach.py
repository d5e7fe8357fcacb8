"""Staff writing to customers: whom the next text goes to, sending it through the outbox, the delivery summary.

A staff message goes out like a status update does: an outbox row per customer (customer bot, kind "message"),
written with the dialog message in one transaction. Once every row of a send (a batch) is final, a job tick
queues a summary to the sender (`finish_batches`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from database import transaction
from models import (
    Customer,
    DialogBatch,
    DialogMessage,
    OutboxMessage,
    OutboxState,
    PromptEnd,
    StaffMember,
    StaffMode,
    db,
    utcnow,
)
from services import media, staff, staff_group
from services.cabinet import (
    DEFAULTS,
    CabinetSettings,
    check_seen,
    clean_text,
    colleague_answers,
    knows,
    mark_read_in,
    orders_for,
    queue_staff_message,
    select_only,
    selected_ids,
)
from services.errors import Invalid, NotFound
from services.staff import NotStaff

FINAL_STATES = frozenset({OutboxState.SENT, OutboxState.FAILED, OutboxState.BLOCKED})


# --- whom the next text goes to --------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a staff member is about to write to."""

    horeca_id: str
    horeca_name: str
    count: int
    names: list[str]  # the first few recipients
    colleagues: dict[str, str] = field(default_factory=dict)  # customer name → colleague who answered within a minute
    order_id: str | None = None  # for a single dialog
    prompt: int = 0  # the number of the prompt that asks for the text (its buttons carry it)


def _target(member: StaffMember, customer_ids: list[int], settings: CabinetSettings, prompt: int) -> Target:
    people: list[Customer] = []
    if customer_ids:
        stmt = select(Customer).where(Customer.id.in_(customer_ids)).order_by(Customer.id)
        people = list(db.session.scalars(stmt))
    colleagues = colleague_answers(member.horeca_id, member.id, [c.id for c in people], settings)
    by_id = {c.id: c for c in people}
    order_id = None
    if len(people) == 1:
        order = orders_for(member.horeca_id, [people[0].id]).get(people[0].id)
        order_id = order.order_id if order else None
    return Target(
        horeca_id=member.horeca_id,
        horeca_name=staff.horeca_name(member.horeca_id),
        count=len(people),
        names=[c.display_name for c in people[:5]],
        colleagues={by_id[cid].display_name: name for cid, name in colleagues.items()},
        order_id=order_id,
        prompt=prompt,
    )


def start_composing(telegram_user_id: int, settings: CabinetSettings = DEFAULTS, seen: str | None = None) -> Target:
    """ "Write to selected": the account's next text goes to its selected dialogs. Invalid when none is selected.

    `seen`: the stamp of the list the button was on; StaleList (nothing changes) when the selection is another now.
    """
    with transaction():
        state, member, _ = staff.current_member(telegram_user_id, lock=True)
        check_seen(member, seen)
        selected = sorted(selected_ids(member.id))
        if not selected:
            raise Invalid("select at least one dialog first", "nothing_selected")
        prompt = staff.open_prompt(state, StaffMode.COMPOSING)
        return _target(member, selected, settings, prompt)


def _reply_to(telegram_user_id: int, horeca_id: str, customer_id: int, settings: CabinetSettings) -> Target:
    member = staff.membership(horeca_id, telegram_user_id)
    if member is None or member.removed_at is not None:
        raise NotStaff("you are not staff of this horeca", "not_staff")
    state = staff.lock_state(telegram_user_id)
    state.current_horeca_id = horeca_id
    prompt = staff.open_prompt(state, StaffMode.COMPOSING)
    select_only(member.id, customer_id)
    mark_read_in(horeca_id, customer_id)
    return _target(member, [customer_id], settings, prompt)


def reply_to_message(telegram_user_id: int, dialog_message_id: int, settings: CabinetSettings = DEFAULTS) -> Target:
    """The Reply button under a customer's message: select exactly that dialog and wait for the reply."""
    with transaction():
        message = db.session.get(DialogMessage, dialog_message_id)
        if message is None or message.direction != "in" or message.horeca_id is None:
            raise NotFound("no such dialog", "dialog_not_found")
        return _reply_to(telegram_user_id, message.horeca_id, message.customer_id, settings)


def reply_to_customer(telegram_user_id: int, customer_id: int, settings: CabinetSettings = DEFAULTS) -> Target:
    """Reply from an opened dialog: select exactly that customer in the current horeca and wait for the reply."""
    with transaction():
        _, member, _ = staff.current_member(telegram_user_id, lock=True)
        if not knows(member.horeca_id, customer_id):
            raise NotFound("no such dialog", "dialog_not_found")
        return _reply_to(telegram_user_id, member.horeca_id, customer_id, settings)


# --- sending ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """The outcome of one send: queued for delivery now, the summary follows once it is delivered."""

    batch_id: int
    total: int
    queued: int
    blocked: int  # already known to have blocked the bot: recorded blocked, not sent
    blocked_names: list[str]
    summarized: bool  # nothing left to deliver: `blocked` is the whole story, no summary will follow


def send_to_selected(
    telegram_user_id: int,
    text: str,
    *,
    require_composing: bool = True,
    prompt: int | None = None,
    attachment: media.Attachment | None = None,
    source_message_id: int | None = None,
) -> Sent:
    """Queue `text` to every selected customer through the customer bot; the account goes back to idle.

    `prompt`: sent by a button of that prompt; PromptClosed (nothing sent) unless it is still the open one.
    `attachment`: media (then `text` is its caption, maybe empty); Invalid "file_too_big" over the 20 MB limit.
    `source_message_id`: the staff member's message, so that their edit can follow it.
    """
    with transaction():
        state, member, _ = staff.current_member(telegram_user_id, lock=True)
        if prompt is not None:
            staff.check_prompt(state, prompt)
        if require_composing and state.mode != StaffMode.COMPOSING:
            raise Invalid("press “Write to selected” first", "not_composing")
        body = _caption(text, attachment) if attachment is not None else clean_text(text)
        selected = sorted(selected_ids(member.id))
        if not selected:
            raise Invalid("select at least one dialog first", "nothing_selected")
        now = utcnow()
        horeca_id = member.horeca_id
        name = staff.horeca_name(horeca_id)
        batch = DialogBatch(horeca_id=horeca_id, staff_member_id=member.id, total=len(selected), created_at=now)
        db.session.add(batch)
        db.session.flush()
        people = list(db.session.scalars(select(Customer).where(Customer.id.in_(selected)).order_by(Customer.id)))
        blocked_names = []
        for customer in people:
            blocked = customer.is_blocked
            queue_staff_message(
                horeca_id, member, customer, name, body, attachment, now, batch_id=batch.id, source_message_id=source_message_id
            )
            mark_read_in(horeca_id, customer.id)
            if len(people) == 1:  # a reply to one customer shows in their topic too (a broadcast would flood the group)
                staff_group.queue_cabinet_reply(horeca_id, customer, member, body, attachment)
            if blocked:
                blocked_names.append(customer.display_name)
        batch.total = len(people)
        summarized = len(blocked_names) == len(people)
        if summarized:
            batch.summarized_at = now  # the caller tells the staff member right away
        staff.end_prompt(state, PromptEnd.SENT)
        return Sent(
            batch_id=batch.id,
            total=len(people),
            queued=len(people) - len(blocked_names),
            blocked=len(blocked_names),
            blocked_names=blocked_names,
            summarized=summarized,
        )


def _caption(text: str, attachment: media.Attachment) -> str:
    """A media message's caption: may be empty; Invalid when the file cannot be passed on or the caption is long."""
    if attachment.too_big:
        raise Invalid("the file is over the 20 MB Telegram lets a bot download", "file_too_big")
    body = text.strip()
    if len(body) > media.MAX_CAPTION:
        raise Invalid(f"the caption is too long (at most {media.MAX_CAPTION} characters)", "caption_too_long")
    return body


# --- delivery summaries ----------------------------------------------------------------------------


def finish_batches(limit: int = 100) -> int:
    """Queue a delivery summary to the sender of every batch whose messages are all delivered (or final); a job tick."""
    with transaction():
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
            rows = (
                db.session.execute(
                    select(OutboxMessage.state, Customer)
                    .join(DialogMessage, DialogMessage.outbox_id == OutboxMessage.id)
                    .join(Customer, Customer.id == DialogMessage.customer_id)
                    .where(DialogMessage.batch_id == batch.id)
                    .order_by(Customer.id)
                )
                .tuples()
                .all()
            )
            if any(state not in FINAL_STATES for state, _ in rows):
                continue
            member = db.session.get(StaffMember, batch.staff_member_id)
            batch.summarized_at = now
            done += 1
            if member is None or member.removed_at is not None:
                continue
            sent = [c.display_name for state, c in rows if state == OutboxState.SENT]
            blocked = [c.display_name for state, c in rows if state == OutboxState.BLOCKED]
            failed = [c.display_name for state, c in rows if state == OutboxState.FAILED]
            staff.queue_notice(
                member,
                {
                    "type": "delivery_summary",
                    "batch_id": batch.id,
                    "total": len(rows),
                    "sent": len(sent),
                    "blocked": len(blocked),
                    "failed": len(failed),
                    "sent_names": sent[:5],
                    "blocked_names": blocked[:5],
                    "failed_names": failed[:5],
                },
            )
        return done
