"""The staff cabinet's services (staff, cabinet, outreach, relay, conversation, canned), on every configured database."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from models import DialogMessage, OutboxMessage, StaffState, db, utcnow
from services import cabinet, canned, conversation, customers, linking, orders, outreach, relay, staff
from services.customers import Profile
from services.errors import Conflict, Invalid, NotFound
from services.staff import NotStaff

CAFE = "cafe-1"
BARISTA = 9001
COLLEAGUE = 9002


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


def customer(
    user_id: int,
    first_name: str,
    *,
    horeca_id: str | None = CAFE,
    order_id: str | None = None,
    status: str = "created",
    **profile,
) -> int:
    """Link a customer (and give them an order at `horeca_id`); returns their customer row id."""
    issued = linking.issue()
    linking.claim(issued.code, user_id, chat_id=user_id, profile=Profile(first_name=first_name, **profile))
    if horeca_id is not None:
        orders.record_status(user_id, horeca_id, order_id or f"{first_name}-1", status)
    row = customers.find(user_id)
    db.session.rollback()
    return row.id


def join(user_id: int, horeca_id: str = CAFE, name: str | None = None, first_name: str = "Barista") -> staff.Joined:
    code = staff.issue_code(horeca_id, name).code
    return staff.join(code, user_id, chat_id=user_id, profile=Profile(first_name=first_name, language_code="en"))


def notices(chat_id: int | None = None) -> list[dict]:
    """Payloads of the queued staff notices (to one staff chat), oldest first."""
    stmt = select(OutboxMessage).where(OutboxMessage.bot == "horeca", OutboxMessage.kind == "staff_notice")
    if chat_id is not None:
        stmt = stmt.where(OutboxMessage.chat_id == chat_id)
    rows = db.session.scalars(stmt.order_by(OutboxMessage.id)).all()
    result = [json.loads(r.payload) for r in rows]
    db.session.rollback()
    return result


def customer_messages() -> list[OutboxMessage]:
    rows = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.bot == "customer", OutboxMessage.kind == "message").order_by(OutboxMessage.id)
    ).all()
    db.session.expunge_all()
    db.session.rollback()
    return rows


def deliver(state: str = "sent", chat_id: int | None = None) -> None:
    """Play the delivery job: every pending outbox row (to one chat) gets `state`."""
    stmt = update(OutboxMessage).where(OutboxMessage.state == "pending")
    if chat_id is not None:
        stmt = stmt.where(OutboxMessage.chat_id == chat_id)
    db.session.execute(stmt.values(state=state, sent_at=utcnow()))
    db.session.commit()


# --- joining ---------------------------------------------------------------------------------------


def test_a_staff_code_joins_once_and_sets_the_current_horeca(ctx):
    joined = join(BARISTA, name="Bean There")
    assert joined == staff.Joined(CAFE, "Bean There", rejoined=False, already=False)
    cab = staff.cabinet(BARISTA)
    assert (cab.horeca_id, cab.horeca_name, cab.mode, cab.memberships) == (CAFE, "Bean There", "idle", 1)
    assert [s.telegram_user_id for s in staff.list_staff(CAFE)] == [BARISTA]


def test_a_staff_code_is_not_a_customer_code_and_the_other_way_round(ctx):
    staff_code = staff.issue_code(CAFE).code
    with pytest.raises(NotFound):
        linking.claim(staff_code, 1)
    customer_code = linking.issue().code
    with pytest.raises(NotFound):
        staff.join(customer_code, BARISTA, BARISTA)
    assert staff.cabinet(BARISTA) is None


def test_a_used_staff_code_refuses_someone_else(ctx):
    code = staff.issue_code(CAFE).code
    staff.join(code, BARISTA, BARISTA)
    assert staff.join(code.lower(), BARISTA, BARISTA).already is True  # the same person again: fine
    with pytest.raises(Conflict):
        staff.join(code, COLLEAGUE, COLLEAGUE)


def test_an_expired_staff_code_is_refused(ctx):
    code = staff.issue_code(CAFE, ttl_seconds=-1).code
    with pytest.raises(NotFound):
        staff.join(code, BARISTA, BARISTA)


def test_one_account_serves_two_horecas_and_switches(ctx):
    join(BARISTA, "cafe-1")
    join(BARISTA, "cafe-2", name="Second Cup")
    assert staff.cabinet(BARISTA).horeca_id == "cafe-2"  # the newest code makes its horeca current
    assert [(m.horeca_id, m.current) for m in staff.memberships(BARISTA)] == [("cafe-1", False), ("cafe-2", True)]
    assert staff.switch_horeca(BARISTA, "cafe-1").horeca_id == "cafe-1"
    with pytest.raises(NotStaff):
        staff.switch_horeca(BARISTA, "cafe-3")


def test_removed_staff_lose_the_cabinet_and_get_told(ctx):
    join(BARISTA)
    removed = staff.remove(CAFE, BARISTA)
    assert removed.removed_at
    assert staff.remove(CAFE, BARISTA) == removed  # repeating changes nothing
    assert staff.cabinet(BARISTA) is None and staff.list_staff(CAFE) == []
    with pytest.raises(NotStaff):
        cabinet.list_dialogs(BARISTA)
    assert [n["type"] for n in notices(BARISTA)] == ["removed"]
    with pytest.raises(NotFound):
        staff.remove(CAFE, 12345)


def test_removal_from_the_current_horeca_falls_back_to_another(ctx):
    join(BARISTA, "cafe-1")
    join(BARISTA, "cafe-2")
    staff.remove("cafe-2", BARISTA)
    assert staff.cabinet(BARISTA).horeca_id == "cafe-1"


def test_a_removed_member_rejoins_with_a_new_code(ctx):
    join(BARISTA)
    staff.remove(CAFE, BARISTA)
    assert join(BARISTA).rejoined is True
    assert staff.cabinet(BARISTA).horeca_id == CAFE


# --- the dialog list -------------------------------------------------------------------------------


def test_the_list_has_active_orders_and_recent_messages_newest_first(ctx):
    join(BARISTA)
    anna = customer(1, "Anna", order_id="A-1")
    boris = customer(2, "Boris", order_id="B-1")
    customer(3, "Done", order_id="D-1", status="completed")  # no active order, no message: not listed
    customer(4, "Elsewhere", horeca_id="cafe-2")  # another horeca's customer
    page = cabinet.list_dialogs(BARISTA)
    assert [i.name for i in page.items] == ["Boris", "Anna"]
    assert (page.items[0].order_id, page.items[0].order_status, page.items[0].unread) == ("B-1", "created", 0)
    assert page.total == 2 and page.pages == 1 and page.selected == 0

    relay.relay_from_customer(1, "Is there oat milk?")  # Anna writes: she is the newest activity now
    page = cabinet.list_dialogs(BARISTA)
    assert [(i.customer_id, i.unread) for i in page.items] == [(anna, 1), (boris, 0)]


def test_a_message_keeps_a_dialog_listed_for_24_hours(ctx):
    join(BARISTA)
    customer(1, "Anna", order_id="A-1")
    relay.relay_from_customer(1, "hello")
    orders.record_status(1, CAFE, "A-1", "completed")
    assert [i.name for i in cabinet.list_dialogs(BARISTA).items] == ["Anna"]
    assert cabinet.list_dialogs(BARISTA).items[0].order_status == "completed"
    db.session.execute(update(DialogMessage).values(created_at=utcnow() - timedelta(hours=25)))
    db.session.commit()
    assert cabinet.list_dialogs(BARISTA).items == []


def test_the_list_pages_by_eight(ctx):
    join(BARISTA)
    for n in range(1, 20):
        customer(n, f"C{n:02d}")
    first = cabinet.list_dialogs(BARISTA, 0)
    assert (len(first.items), first.pages, first.total) == (8, 3, 19)
    assert len(cabinet.list_dialogs(BARISTA, 2).items) == 3
    assert cabinet.list_dialogs(BARISTA, 99).page == 2  # past the end: the last page
    seen = [i.name for p in range(3) for i in cabinet.list_dialogs(BARISTA, p).items]
    assert sorted(seen) == [f"C{n:02d}" for n in range(1, 20)]


def test_non_staff_see_nothing(ctx):
    customer(1, "Anna")
    for call in (
        lambda: cabinet.list_dialogs(BARISTA),
        lambda: cabinet.select_all(BARISTA),
        lambda: outreach.start_composing(BARISTA),
        lambda: canned.list_replies(BARISTA),
    ):
        with pytest.raises(NotStaff):
            call()


# --- selection and sending ---------------------------------------------------------------------------


def test_toggle_select_all_clear_and_persisted_selection(ctx):
    join(BARISTA)
    anna = customer(1, "Anna")
    boris = customer(2, "Boris")
    assert cabinet.toggle(BARISTA, anna) is True
    assert [i.selected for i in cabinet.list_dialogs(BARISTA).items] == [False, True]
    assert cabinet.toggle(BARISTA, anna) is False
    assert cabinet.select_all(BARISTA) == 2
    assert cabinet.list_dialogs(BARISTA).selected == 2
    cabinet.clear(BARISTA)
    assert cabinet.list_dialogs(BARISTA).selected == 0
    cabinet.toggle(BARISTA, boris)
    db.session.remove()  # a new session, as after a restart: the selection is in the database
    assert [i.customer_id for i in cabinet.list_dialogs(BARISTA).items if i.selected] == [boris]


def test_selections_are_per_staff_member(ctx):
    join(BARISTA)
    join(COLLEAGUE)
    anna = customer(1, "Anna")
    cabinet.toggle(BARISTA, anna)
    assert cabinet.list_dialogs(COLLEAGUE).selected == 0


def test_a_forged_customer_id_selects_nobody(ctx):
    join(BARISTA)
    stranger = customer(7, "Stranger", horeca_id="cafe-2")
    with pytest.raises(NotFound):
        cabinet.toggle(BARISTA, stranger)
    with pytest.raises(NotFound):
        cabinet.toggle(BARISTA, 999_999)
    with pytest.raises(NotFound):
        outreach.reply_to_customer(BARISTA, stranger)


def test_write_to_selected_queues_one_message_per_customer(ctx):
    join(BARISTA, name="Bean There")
    anna = customer(1, "Anna", language_code="ru")
    boris = customer(2, "Boris")
    cabinet.select_all(BARISTA)
    with pytest.raises(Invalid):
        outreach.send_to_selected(BARISTA, "no compose first")
    target = outreach.start_composing(BARISTA)
    assert target.count == 2 and sorted(target.names) == ["Anna", "Boris"]
    assert staff.cabinet(BARISTA).mode == "composing"
    with pytest.raises(Invalid):
        outreach.send_to_selected(BARISTA, "   ")
    sent = outreach.send_to_selected(BARISTA, "The machine is down, ten more minutes")
    assert (sent.total, sent.queued, sent.blocked, sent.summarized) == (2, 2, 0, False)
    assert staff.cabinet(BARISTA).mode == "idle"

    queued = customer_messages()
    assert [(m.chat_id, m.text, m.state) for m in queued] == [
        (1, "The machine is down, ten more minutes", "pending"),
        (2, "The machine is down, ten more minutes", "pending"),
    ]
    assert json.loads(queued[0].payload) == {"horeca_id": CAFE, "horeca": "Bean There", "lang": "ru"}
    assert {m.horeca_id for m in queued} == {CAFE}
    stored = conversation.conversation(CAFE, 1).messages
    assert [(m.direction, m.staff.telegram_user_id, m.order_id, m.delivery) for m in stored] == [
        ("out", BARISTA, "Anna-1", "pending")
    ]
    assert {anna, boris} == {i.customer_id for i in cabinet.list_dialogs(BARISTA).items if i.selected}  # kept


def test_blocked_customers_are_recorded_blocked_and_summarized(ctx):
    join(BARISTA)
    for n, name in enumerate(["Anna", "Boris", "Carl", "Dora", "Eve"], start=1):
        customer(n, name)
    customers.mark_blocked(5, True)
    cabinet.select_all(BARISTA)
    outreach.start_composing(BARISTA)
    sent = outreach.send_to_selected(BARISTA, "Oat milk ran out, is soy fine?")
    assert (sent.total, sent.queued, sent.blocked, sent.blocked_names) == (5, 4, 1, ["Eve"])

    assert outreach.finish_batches() == 0  # four still pending: no summary yet
    assert notices(BARISTA) == []
    deliver("sent")
    assert outreach.finish_batches() == 1
    summary = notices(BARISTA)[-1]
    assert summary["type"] == "delivery_summary"
    assert (summary["total"], summary["sent"], summary["blocked"], summary["failed"]) == (5, 4, 1, 0)
    assert summary["blocked_names"] == ["Eve"] and summary["lang"] == "en"
    assert outreach.finish_batches() == 0  # summarized once


def test_a_send_to_only_blocked_customers_is_summarized_at_once(ctx):
    join(BARISTA)
    anna = customer(1, "Anna")
    customers.mark_blocked(1, True)
    cabinet.toggle(BARISTA, anna)
    sent = outreach.send_to_selected(BARISTA, "hi", require_composing=False)
    assert (sent.queued, sent.blocked, sent.summarized) == (0, 1, True)
    assert outreach.finish_batches() == 0 and notices(BARISTA) == []


def test_nothing_selected_cannot_compose(ctx):
    join(BARISTA)
    customer(1, "Anna")
    with pytest.raises(Invalid) as err:
        outreach.start_composing(BARISTA)
    assert err.value.code == "nothing_selected"


# --- customer → staff ------------------------------------------------------------------------------


def test_a_customer_text_goes_to_every_staff_member_with_their_order(ctx):
    join(BARISTA, name="Bean There")
    join(COLLEAGUE)
    customer(1, "Anna", order_id="123", username="anna")
    assert relay.has_dialog(1) is True
    relayed = relay.relay_from_customer(1, "Can I have it without sugar?")
    assert (relayed.outcome, relayed.horeca_id, relayed.horeca_name, relayed.staff_count) == ("relayed", CAFE, "Bean There", 2)
    for chat in (BARISTA, COLLEAGUE):
        (notice,) = notices(chat)
        assert notice["type"] == "customer_message" and notice["dialog_message_id"] == relayed.dialog_message_id
        assert (notice["customer"], notice["order_id"], notice["text"]) == ("Anna", "123", "Can I have it without sugar?")
        assert notice["show_horeca"] is False


def test_removed_staff_get_no_customer_messages(ctx):
    join(BARISTA)
    join(COLLEAGUE)
    staff.remove(CAFE, COLLEAGUE)
    customer(1, "Anna")
    assert relay.relay_from_customer(1, "hello").staff_count == 1
    assert [n["type"] for n in notices(COLLEAGUE)] == ["removed"]


def test_no_order_no_dialog_means_no_relay(ctx):
    join(BARISTA)
    customer(1, "Anna", horeca_id=None)
    customer(2, "Boris", horeca_id="no-staff-cafe")  # an order where nobody uses the staff bot
    assert relay.relay_from_customer(1, "hello").outcome == "none"
    assert relay.relay_from_customer(2, "hello").outcome == "none"
    assert relay.relay_from_customer(404, "hello").outcome == "none"
    assert relay.has_dialog(1) is False
    assert notices() == []


def test_an_open_dialog_without_an_order_still_relays(ctx):
    join(BARISTA)
    anna = customer(1, "Anna", order_id="A-1")
    orders.record_status(1, CAFE, "A-1", "completed")
    assert relay.relay_from_customer(1, "hello").outcome == "none"
    cabinet.toggle(BARISTA, anna)
    outreach.send_to_selected(BARISTA, "Thanks for visiting!", require_composing=False)
    relayed = relay.relay_from_customer(1, "Thank you!")
    assert relayed.outcome == "relayed"
    assert notices(BARISTA)[-1]["order_id"] is None


def test_a_customer_with_orders_at_two_horecas_is_asked_which(ctx):
    join(BARISTA, "cafe-1", name="One")
    join(COLLEAGUE, "cafe-2", name="Two")
    customer(1, "Anna", horeca_id="cafe-1", order_id="A-1")
    orders.record_status(1, "cafe-2", "A-2", "created")
    asked = relay.relay_from_customer(1, "Where is my coffee?")
    assert asked.outcome == "choose" and [name for _, name in asked.choices] == ["One", "Two"]
    assert notices() == []
    assert relay.choose_horeca(1, asked.dialog_message_id, "forged").outcome == "none"
    assert relay.choose_horeca(2, asked.dialog_message_id, asked.choices[1][0]).outcome == "none"  # not theirs
    chosen = relay.choose_horeca(1, asked.dialog_message_id, asked.choices[1][0])
    assert (chosen.outcome, chosen.horeca_id) == ("relayed", "cafe-2")
    assert [n["text"] for n in notices(COLLEAGUE)] == ["Where is my coffee?"] and notices(BARISTA) == []
    assert relay.choose_horeca(1, asked.dialog_message_id, asked.choices[0][0]).outcome == "already"


def test_staff_of_two_horecas_see_which_one_a_message_is_for(ctx):
    join(BARISTA, "cafe-1")
    join(BARISTA, "cafe-2")
    customer(1, "Anna", horeca_id="cafe-1")
    relay.relay_from_customer(1, "hi")
    assert notices(BARISTA)[-1]["show_horeca"] is True


def test_reply_selects_exactly_that_dialog_and_marks_it_read(ctx):
    join(BARISTA, "cafe-1")
    join(BARISTA, "cafe-2")  # current horeca is cafe-2 now
    anna = customer(1, "Anna", horeca_id="cafe-1", order_id="123")
    boris = customer(2, "Boris", horeca_id="cafe-1")
    staff.switch_horeca(BARISTA, "cafe-1")
    cabinet.toggle(BARISTA, boris)
    staff.switch_horeca(BARISTA, "cafe-2")
    relayed = relay.relay_from_customer(1, "Is it ready?")

    target = outreach.reply_to_message(BARISTA, relayed.dialog_message_id)
    assert (target.horeca_id, target.count, target.names, target.order_id) == ("cafe-1", 1, ["Anna"], "123")
    cab = staff.cabinet(BARISTA)
    assert (cab.horeca_id, cab.mode) == ("cafe-1", "composing")
    page = cabinet.list_dialogs(BARISTA)
    assert [i.customer_id for i in page.items if i.selected] == [anna]
    assert all(i.unread == 0 for i in page.items)
    outreach.send_to_selected(BARISTA, "Two minutes!")
    assert [(m.chat_id, m.text) for m in customer_messages()] == [(1, "Two minutes!")]
    assert [m.direction for m in conversation.conversation("cafe-1", 1).messages] == ["in", "out"]


def test_reply_is_refused_to_non_staff(ctx):
    join(BARISTA)
    customer(1, "Anna")
    relayed = relay.relay_from_customer(1, "hi")
    with pytest.raises(NotStaff):
        outreach.reply_to_message(COLLEAGUE, relayed.dialog_message_id)
    staff.remove(CAFE, BARISTA)
    with pytest.raises(NotStaff):
        outreach.reply_to_message(BARISTA, relayed.dialog_message_id)
    with pytest.raises(NotFound):
        outreach.reply_to_message(BARISTA, 999_999)


def test_answering_marks_read_for_the_whole_horeca(ctx):
    join(BARISTA)
    join(COLLEAGUE)
    anna = customer(1, "Anna")
    relay.relay_from_customer(1, "one")
    relay.relay_from_customer(1, "two")
    assert cabinet.list_dialogs(COLLEAGUE).items[0].unread == 2
    cabinet.toggle(BARISTA, anna)
    outreach.send_to_selected(BARISTA, "yes?", require_composing=False)
    assert cabinet.list_dialogs(COLLEAGUE).items[0].unread == 0
    relay.relay_from_customer(1, "three")
    assert cabinet.list_dialogs(COLLEAGUE).items[0].unread == 1
    view = conversation.open_dialog(COLLEAGUE, anna)
    assert [m.text for m in view.conversation.messages] == ["one", "two", "yes?", "three"]
    assert cabinet.list_dialogs(COLLEAGUE).items[0].unread == 0


def test_a_colleague_answer_in_the_last_minute_is_noted(ctx):
    join(BARISTA, first_name="Anna")
    join(COLLEAGUE, first_name="Olga")
    boris = customer(2, "Boris")
    relayed = relay.relay_from_customer(2, "hello?")
    cabinet.toggle(COLLEAGUE, boris)
    outreach.send_to_selected(COLLEAGUE, "Hi Boris!", require_composing=False)
    assert cabinet.list_dialogs(BARISTA).items[0].colleague == "Olga"
    assert cabinet.list_dialogs(COLLEAGUE).items[0].colleague is None  # one's own answer is no news
    assert outreach.reply_to_message(BARISTA, relayed.dialog_message_id).colleagues == {"Boris": "Olga"}
    assert conversation.open_dialog(BARISTA, boris).colleague == "Olga"
    db.session.execute(update(DialogMessage).values(created_at=utcnow() - timedelta(seconds=61)))
    db.session.commit()
    assert cabinet.list_dialogs(BARISTA).items[0].colleague is None


# --- canned replies --------------------------------------------------------------------------------


def test_canned_replies_add_list_send_delete(ctx):
    join(BARISTA)
    join(COLLEAGUE)
    anna = customer(1, "Anna")
    staff.set_mode(BARISTA, "adding_reply")
    saved = canned.add_reply(BARISTA, "  Your order is ready at the counter  ")
    assert saved.text == "Your order is ready at the counter"
    assert staff.cabinet(BARISTA).mode == "idle"
    assert canned.list_replies(COLLEAGUE) == [saved]  # shared by the horeca's staff

    with pytest.raises(Invalid):
        canned.send_reply(BARISTA, saved.id)  # nothing selected
    cabinet.toggle(BARISTA, anna)
    sent = canned.send_reply(BARISTA, saved.id)
    assert sent.queued == 1
    assert [m.text for m in customer_messages()] == ["Your order is ready at the counter"]

    assert canned.delete_reply(COLLEAGUE, saved.id) is True
    assert canned.delete_reply(COLLEAGUE, saved.id) is False
    assert canned.list_replies(BARISTA) == []
    with pytest.raises(NotFound):
        canned.send_reply(BARISTA, saved.id)


def test_canned_replies_are_short_and_per_horeca(ctx):
    join(BARISTA, "cafe-1")
    join(COLLEAGUE, "cafe-2")
    with pytest.raises(Invalid):
        canned.add_reply(BARISTA, "x" * (canned.MAX_REPLY_CHARS + 1))
    mine = canned.add_reply(BARISTA, "ok")
    assert canned.list_replies(COLLEAGUE) == []
    assert canned.delete_reply(COLLEAGUE, mine.id) is False  # another horeca's reply
    with pytest.raises(NotFound):
        canned.send_reply(COLLEAGUE, mine.id)


def test_mode_state_survives_and_is_validated(ctx):
    join(BARISTA)
    with pytest.raises(Invalid):
        staff.set_mode(BARISTA, "dancing")
    staff.set_mode(BARISTA, "adding_reply")
    db.session.remove()
    assert db.session.get(StaffState, BARISTA).mode == "adding_reply"
    db.session.rollback()


def test_customer_messages_still_queued_for_a_removed_member_are_not_sent(ctx):
    join(BARISTA, "cafe-1")
    join(BARISTA, "cafe-2")
    customer(1, "Anna", horeca_id="cafe-1")
    customer(2, "Boris", horeca_id="cafe-2")
    relay.relay_from_customer(1, "for cafe one")
    relay.relay_from_customer(2, "for cafe two")
    staff.remove("cafe-1", BARISTA)
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.bot == "horeca").order_by(OutboxMessage.id)).all()
    states = [(json.loads(r.payload).get("text") or json.loads(r.payload)["type"], r.state) for r in rows]
    db.session.rollback()
    assert states == [("for cafe one", "failed"), ("for cafe two", "pending"), ("removed", "pending")]


# --- stale lists and prompts (issue 14) ------------------------------------------------------------


def test_a_list_acts_only_on_the_selection_it_showed(ctx):
    join(BARISTA)
    anna = customer(1, "Anna")
    boris = customer(2, "Boris")
    drawn = cabinet.list_dialogs(BARISTA)
    assert cabinet.toggle(BARISTA, anna, 0, drawn.stamp) is True
    # Every acting press with the old list's stamp is refused and changes nothing.
    for act in (
        lambda: cabinet.toggle(BARISTA, boris, 0, drawn.stamp),
        lambda: cabinet.select_all(BARISTA, seen=drawn.stamp),
        lambda: cabinet.clear(BARISTA, seen=drawn.stamp),
        lambda: outreach.start_composing(BARISTA, seen=drawn.stamp),
    ):
        with pytest.raises(cabinet.StaleList):
            act()
    assert [i.customer_id for i in cabinet.list_dialogs(BARISTA).items if i.selected] == [anna]
    assert staff.cabinet(BARISTA).mode == "idle"
    # The list drawn now acts.
    now = cabinet.list_dialogs(BARISTA)
    assert now.stamp != drawn.stamp and now.stamp == cabinet.selection_stamp(CAFE, [anna])
    assert outreach.start_composing(BARISTA, seen=now.stamp).count == 1


def test_the_same_selection_gives_the_same_stamp_in_each_horeca_only(ctx):
    assert cabinet.selection_stamp(CAFE, [2, 1]) == cabinet.selection_stamp(CAFE, [1, 2])
    assert cabinet.selection_stamp(CAFE, [1, 2]) != cabinet.selection_stamp("cafe-2", [1, 2])
    assert cabinet.selection_stamp(CAFE, []) != cabinet.selection_stamp(CAFE, [1])
    assert len(cabinet.selection_stamp(CAFE, [1])) == 8


def test_a_toggle_for_a_dialog_no_longer_on_its_page_is_stale(ctx):
    join(BARISTA)
    settings = cabinet.CabinetSettings(page_size=1)
    anna = customer(1, "Anna")
    customer(2, "Boris")  # newer: Boris is on page 0, Anna on page 1
    stamp = cabinet.list_dialogs(BARISTA, 0, settings).stamp
    with pytest.raises(cabinet.StaleList):
        cabinet.toggle(BARISTA, anna, 0, stamp, settings)
    assert cabinet.toggle(BARISTA, anna, 1, stamp, settings) is True


def test_a_prompt_answers_how_it_ended(ctx):
    join(BARISTA)
    anna = customer(1, "Anna")
    cabinet.toggle(BARISTA, anna)
    first = outreach.start_composing(BARISTA).prompt
    second = outreach.start_composing(BARISTA).prompt  # pressed Write again: the first prompt is replaced
    assert second == first + 1
    assert staff.cancel_prompt(BARISTA, first) == "replaced"
    assert staff.cabinet(BARISTA).mode == "composing"  # the open prompt is untouched
    outreach.send_to_selected(BARISTA, "Ready!")
    assert staff.cancel_prompt(BARISTA, second) == "sent"  # sent: nothing to cancel
    with pytest.raises(staff.PromptClosed) as closed:
        outreach.send_to_selected(BARISTA, "again", prompt=second)
    assert closed.value.end == "sent" and len(customer_messages()) == 1

    third = outreach.start_composing(BARISTA).prompt
    assert staff.cancel_prompt(BARISTA, third) is None  # open: cancelled now
    assert staff.cancel_prompt(BARISTA, third) == "cancelled"
    fourth = staff.add_reply_prompt(BARISTA)
    canned.add_reply(BARISTA, "ok")
    assert staff.cancel_prompt(BARISTA, fourth) == "saved"
    fifth = outreach.start_composing(BARISTA).prompt
    cabinet.clear(BARISTA)  # nothing left to write to
    assert staff.cancel_prompt(BARISTA, fifth) == "closed"
    db.session.remove()  # as after a restart: the prompt's number and end are in the database
    assert staff.cancel_prompt(BARISTA, fifth) == "closed"


def test_a_quick_reply_under_a_prompt_is_sent_once(ctx):
    join(BARISTA)
    anna = customer(1, "Anna")
    reply = canned.add_reply(BARISTA, "Your order is ready")
    cabinet.toggle(BARISTA, anna)
    prompt = outreach.start_composing(BARISTA).prompt
    assert canned.send_reply(BARISTA, reply.id, prompt=prompt).queued == 1
    with pytest.raises(staff.PromptClosed):
        canned.send_reply(BARISTA, reply.id, prompt=prompt)
    assert [m.text for m in customer_messages()] == ["Your order is ready"]
