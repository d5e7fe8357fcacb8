"""History cleaned up: what is finished and older than RETENTION_DAYS goes, in small batches; nothing young or still
needed does. `flask --app wsgi purge --dry-run` counts exactly what `purge` then deletes. Both backends."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select

from bot.workers.retention import retention_job
from models import (
    CodeAttempt,
    Customer,
    DialogBatch,
    DialogMessage,
    DialogRead,
    Horeca,
    MessageCopy,
    Order,
    OrderRating,
    OutboxMessage,
    StaffMember,
    VerificationCode,
    WebhookEvent,
    db,
    utcnow,
)
from services import retention

DAYS = 90
NOW = utcnow()
OLD = NOW - timedelta(days=100)
YOUNG = NOW - timedelta(days=10)


def add(obj):
    db.session.add(obj)
    db.session.flush()
    return obj


def customer(user_id: int) -> Customer:
    return add(Customer(telegram_user_id=user_id, chat_id=user_id, linked_at=OLD, created_at=OLD))


def order(who: Customer, order_id: str, at, statuses: list[tuple[str, str, bool]]) -> tuple[Order, list[OutboxMessage]]:
    """An order updated `at` with one outbox row per (status, state, has_button)."""
    o = add(Order(horeca_id="cafe-1", order_id=order_id, customer_id=who.id, telegram_user_id=who.telegram_user_id,
                  status=statuses[-1][0], created_at=at, updated_at=at))  # fmt: skip
    rows = [
        add(
            OutboxMessage(
                kind="status",
                bot="customer",
                chat_id=who.chat_id,
                order_pk=o.id,
                status=status,
                state=state,
                has_button=button,
                created_at=at,
                next_attempt_at=at,
                dedup_key=f"status:{o.id}:{status}",
            )
        )  # fmt: skip
        for status, state, button in statuses
    ]
    return o, rows


def message(who: Customer, at, state: str = "sent", kind: str = "message", bot: str = "customer") -> OutboxMessage:
    return add(OutboxMessage(kind=kind, bot=bot, chat_id=who.chat_id, text="hi", state=state, created_at=at, next_attempt_at=at))


def history(app) -> dict:
    """A bit of everything, old and young; returns what must survive, by table."""
    with app.app_context():
        anna, boris = customer(801), customer(802)
        add(Horeca(id="cafe-1", created_at=OLD))
        member = add(StaffMember(horeca_id="cafe-1", telegram_user_id=901, chat_id=901, joined_at=OLD))

        gone_order, _ = order(
            anna, "A", OLD, [("created", "sent", False), ("accepted", "superseded", False), ("ready", "sent", False)]
        )
        button_order, button_rows = order(anna, "B", OLD, [("created", "sent", False), ("accepted", "sent", True)])
        busy_order, busy_rows = order(boris, "C", OLD, [("created", "sent", False), ("accepted", "pending", False)])
        young_order, young_rows = order(boris, "D", YOUNG, [("created", "sent", False)])

        # Staff → customer: an old summarized batch (all of it goes), a young one (stays).
        old_batch = add(DialogBatch(horeca_id="cafe-1", staff_member_id=member.id, total=1, created_at=OLD, summarized_at=OLD))
        old_out = message(anna, OLD)
        add(DialogMessage(direction="out", horeca_id="cafe-1", customer_id=anna.id, staff_member_id=member.id, text="hi",
                          outbox_id=old_out.id, batch_id=old_batch.id, created_at=OLD))  # fmt: skip
        young_batch = add(
            DialogBatch(horeca_id="cafe-1", staff_member_id=member.id, total=1, created_at=YOUNG, summarized_at=YOUNG)
        )
        young_out = message(boris, YOUNG)
        young_dm = add(DialogMessage(direction="out", horeca_id="cafe-1", customer_id=boris.id, staff_member_id=member.id,
                                     text="hi", outbox_id=young_out.id, batch_id=young_batch.id, created_at=YOUNG))  # fmt: skip
        # Customer → staff: an old message about the gone order (goes), a young one about it (stays, loses the link).
        old_in = add(
            DialogMessage(
                direction="in", horeca_id="cafe-1", customer_id=anna.id, order_pk=gone_order.id, text="q", created_at=OLD
            )
        )
        linked_dm = add(DialogMessage(direction="in", horeca_id="cafe-1", customer_id=boris.id, order_pk=gone_order.id,
                                      text="q", created_at=YOUNG))  # fmt: skip
        # Their copies to the staff (message_copies): the old one goes with its message and notice, the young one stays.
        add(MessageCopy(dialog_message_id=old_in.id, outbox_id=message(anna, OLD, kind="staff_notice", bot="horeca").id))
        young_notice = message(boris, YOUNG, kind="staff_notice", bot="horeca")
        kept_copy = add(MessageCopy(dialog_message_id=linked_dm.id, outbox_id=young_notice.id))
        # Ratings go with their order.
        add(OrderRating(order_pk=gone_order.id, telegram_user_id=801, value=2, rated_at=OLD))
        kept_rating = add(OrderRating(order_pk=young_order.id, telegram_user_id=802, value=5, rated_at=YOUNG))
        # Read marks: anna's dialog has no message left (goes); boris's still has one (stays).
        add(DialogRead(horeca_id="cafe-1", customer_id=anna.id, last_read_message_id=1, read_at=OLD))
        kept_read = add(DialogRead(horeca_id="cafe-1", customer_id=boris.id, last_read_message_id=1, read_at=OLD))

        # Outbox rows without an order: a finished old notice goes; an old pending one and a young one stay.
        message(anna, OLD, state="failed", kind="staff_notice", bot="horeca")
        old_pending = message(anna, OLD, state="pending")

        for i, (state, at) in enumerate([("sent", OLD), ("failed", OLD), ("sent", YOUNG)]):
            add(WebhookEvent(event_id=f"evt-{i}", type="user.linked", body="{}", state=state, created_at=at, next_attempt_at=at))
        codes = [
            ("OLDCLAIMED", OLD, OLD + timedelta(minutes=10), 801),  # goes
            ("OLDEXPIRED", OLD, OLD + timedelta(minutes=10), None),  # goes
            ("YOUNGCLAIMED", YOUNG, YOUNG + timedelta(minutes=10), 802),  # stays
            ("LIVE", NOW, NOW + timedelta(minutes=10), None),  # stays
        ]
        for code, created, expires, claimed_by in codes:
            add(VerificationCode(code=code, code_norm=code, created_at=created, expires_at=expires, claimed_by=claimed_by,
                                 claimed_at=created if claimed_by else None))  # fmt: skip
        add(CodeAttempt(telegram_user_id=801, created_at=OLD))
        add(CodeAttempt(telegram_user_id=801, created_at=YOUNG))
        db.session.commit()
        return {
            "orders": {button_order.id, busy_order.id, young_order.id},
            "outbox": {r.id for r in button_rows + busy_rows + young_rows} | {young_out.id, old_pending.id, young_notice.id},
            "dialog_messages": {young_dm.id, linked_dm.id},
            "dialog_batches": {young_batch.id},
            "dialog_reads": {kept_read.id},
            "message_copies": {kept_copy.id},
            "order_ratings": {kept_rating.id},
        }


EXPECTED = {
    "dialog_messages": 2,
    "dialog_reads": 1,
    "dialog_batches": 1,
    "outbox": 6,  # the gone order's 3 statuses, the old staff→customer message, the two old staff notices
    "orders": 1,
    "webhook_events": 1,
    "verification_codes": 2,
    "code_attempts": 1,
    "message_copies": 1,
    "order_ratings": 1,
}


def ids(app, model) -> set[int]:
    with app.app_context():
        return set(db.session.scalars(select(model.id)))


def test_a_dry_run_counts_what_the_purge_then_deletes_and_nothing_young_or_needed_goes(app):
    kept = history(app)
    models = {"orders": Order, "outbox": OutboxMessage, "dialog_messages": DialogMessage, "dialog_batches": DialogBatch,
              "dialog_reads": DialogRead, "message_copies": MessageCopy, "order_ratings": OrderRating}  # fmt: skip
    before = {table: ids(app, model) for table, model in models.items()}
    with app.app_context():
        dry = retention.purge(DAYS, 3, dry_run=True, now=NOW)
    assert dry.counts == EXPECTED
    assert {table: ids(app, model) for table, model in models.items()} == before  # a dry run deletes nothing

    with app.app_context():
        done = retention.purge(DAYS, 3, now=NOW)
    assert done.counts == dry.counts and done.finished
    for table, model in models.items():
        assert ids(app, model) == kept[table], table
    with app.app_context():
        assert db.session.scalar(select(DialogMessage.order_pk).where(DialogMessage.id.in_(kept["dialog_messages"])).where(
            DialogMessage.direction == "in")) is None  # fmt: skip
        assert sorted(db.session.scalars(select(WebhookEvent.event_id))) == ["evt-1", "evt-2"]
        assert sorted(db.session.scalars(select(VerificationCode.code))) == ["LIVE", "YOUNGCLAIMED"]
        assert db.session.scalar(select(func.count()).select_from(CodeAttempt)) == 1
        assert db.session.scalar(select(func.count()).select_from(Customer)) == 2  # customers never go
        assert db.session.scalar(select(func.count()).select_from(StaffMember)) == 1  # nor staff membership
        again = retention.purge(DAYS, 3, dry_run=True, now=NOW)
    assert again.total == 0


def test_the_purge_runs_in_small_batches_until_nothing_is_left(app):
    with app.app_context():
        for i in range(23):
            add(CodeAttempt(telegram_user_id=801, created_at=OLD))
            add(WebhookEvent(event_id=f"e{i}", type="user.linked", body="{}", state="sent", created_at=OLD, next_attempt_at=OLD))
        who = customer(803)
        for i in range(12):
            order(who, f"O-{i}", OLD, [("created", "sent", False), ("ready", "sent", False)])
        db.session.commit()
        assert retention.purge(DAYS, 5, dry_run=True, now=NOW).counts["outbox"] == 24
        done = retention.purge(DAYS, 5, now=NOW)
    assert done.counts["code_attempts"] == 23 and done.counts["webhook_events"] == 23
    assert done.counts["orders"] == 12 and done.counts["outbox"] == 24
    # 5 rows per transaction: 5 + 5 batches of attempts and events, and 12 orders one at a time (5 rows' worth each).
    assert done.batches == 5 + 5 + 12
    assert ids(app, CodeAttempt) == set() and ids(app, Order) == set() and ids(app, OutboxMessage) == set()


def test_a_stop_between_batches_leaves_the_rest_for_the_next_run(app):
    with app.app_context():
        for _ in range(10):
            add(CodeAttempt(telegram_user_id=801, created_at=OLD))
        db.session.commit()
        stopped = retention.purge(DAYS, 4, now=NOW, stop=lambda: True)  # asked to stop during the first batch
    assert not stopped.finished and stopped.batches == 1 and len(ids(app, CodeAttempt)) == 6


def test_flask_purge_dry_run_says_what_it_would_delete_and_purge_deletes_it(app):
    history(app)
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    lines = dict(line.split() for line in dry.output.splitlines()[1:] if line and not line.startswith("("))
    assert {table: int(n) for table, n in lines.items()} == EXPECTED
    assert "would delete: 17 rows older than" in dry.output
    assert len(ids(app, OutboxMessage)) == 14  # nothing deleted yet
    done = runner.invoke(args=["purge", "--batch-size", "2"])
    assert done.exit_code == 0, done.output
    assert "deleted in" in done.output and "17 rows" in done.output
    assert len(ids(app, OutboxMessage)) == 8
    assert runner.invoke(args=["purge", "--days", "0"]).exit_code != 0  # not a window


def test_the_bot_process_job_purges_with_the_configured_window(app):
    history(app)
    app.config.update(RETENTION_DAYS=DAYS, RETENTION_BATCH_SIZE=2)
    assert retention_job(app, threading.Event())() == sum(EXPECTED.values())
    stopped = threading.Event()
    stopped.set()
    assert retention_job(app, stopped)() == 0
