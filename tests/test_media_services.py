"""Media and edits in the dialog services (services/media.py, relay, outreach, edits), on every configured database."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from models import DialogMessage, MediaUpload, MessageCopy, OutboxKind, OutboxMessage, db
from services import customers, edits, linking, media, orders, outreach, relay, staff
from services.customers import Profile
from services.edits import EditOutcome
from services.errors import Invalid
from services.media import Attachment, MediaRef
from services.relay import RelayOutcome

CAFE = "cafe-1"
ANNA, BARISTA = 8101, 9101
PHOTO = MediaRef("photo", source_bot="customer", file_id="AgA-1", file_unique_id="U-1", file_size=51_000, caption="cup")


@pytest.fixture
def ctx(app):
    with app.app_context():
        staff.join(staff.issue_code(CAFE, "Bean There").code, BARISTA, BARISTA, Profile(first_name="Olga"))
        linking.claim(linking.issue().code, ANNA, ANNA, Profile(first_name="Anna"))
        orders.record_status(ANNA, CAFE, "A-1", "preparing")
        yield app


def rows(kind: str) -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))


def _customer_id() -> int:
    found = customers.find(ANNA)
    assert found is not None
    return found.id


def test_a_customers_photo_is_stored_and_queued_to_the_staff_with_its_copy(ctx):
    relayed = relay.relay_from_customer(ANNA, "cup", attachment=Attachment((PHOTO,)), source_message_id=41)
    assert relayed.outcome == RelayOutcome.RELAYED
    stored = db.session.get(DialogMessage, relayed.dialog_message_id)
    assert stored is not None and stored.text == "cup" and stored.source_message_id == 41
    assert media.parse(stored.media) == Attachment((PHOTO,))
    (notice,) = rows(OutboxKind.STAFF_NOTICE)
    assert json.loads(notice.payload or "{}")["media"]["file_unique_id"] == "U-1"
    assert db.session.scalar(select(MessageCopy.outbox_id)) == notice.id


def test_a_file_over_20_mb_is_refused_and_nothing_is_stored(ctx):
    big = MediaRef("document", source_bot="customer", file_id="BQA", file_unique_id="U-big", file_size=media.MAX_DOWNLOAD + 1)
    assert relay.relay_from_customer(ANNA, "", attachment=Attachment((big,))).outcome == RelayOutcome.TOO_BIG
    assert db.session.scalar(select(DialogMessage.id)) is None and rows(OutboxKind.STAFF_NOTICE) == []


def test_an_album_keeps_its_items_in_order(ctx):
    items = (PHOTO, MediaRef("video", source_bot="customer", file_id="V", file_unique_id="U-2", caption="two"))
    relayed = relay.relay_from_customer(ANNA, "", attachment=Attachment(items, album=True), source_message_id=50)
    stored = db.session.get(DialogMessage, relayed.dialog_message_id)
    assert stored is not None
    parsed = media.parse(stored.media)
    assert parsed is not None and parsed.album and [i.caption for i in parsed.items] == ["cup", "two"]
    # An album is one stored message: an edit of its first item is not passed on.
    assert edits.customer_edited(ANNA, 50, "new").outcome == EditOutcome.NONE


def test_staff_media_to_the_selection_and_a_caption_limit(ctx):
    staff_photo = MediaRef("photo", source_bot="horeca", file_id="AgB", file_unique_id="U-3", file_size=10)
    outreach.reply_to_customer(BARISTA, _customer_id())
    with pytest.raises(Invalid) as too_long:
        outreach.send_to_selected(BARISTA, "x" * (media.MAX_CAPTION + 1), attachment=Attachment((staff_photo,)))
    assert too_long.value.code == "caption_too_long"
    sent = outreach.send_to_selected(BARISTA, "", attachment=Attachment((staff_photo,)), source_message_id=7)
    assert sent.queued == 1
    (row,) = rows(OutboxKind.MESSAGE)
    assert json.loads(row.payload or "{}")["media"]["kind"] == "photo" and row.text == ""


def test_edits_queue_one_row_behind_each_copy(ctx):
    relay.relay_from_customer(ANNA, "A latte", source_message_id=60)
    assert edits.customer_edited(ANNA, 60, "A flat white").outcome == EditOutcome.QUEUED
    (notice,) = rows(OutboxKind.STAFF_NOTICE)
    (edit,) = rows(OutboxKind.EDIT)
    payload = json.loads(edit.payload or "{}")
    assert (edit.bot, edit.chat_id, payload["of"], payload["text"]) == ("horeca", BARISTA, notice.id, "A flat white")
    assert edits.customer_edited(ANNA, 61, "unknown").outcome == EditOutcome.NONE
    assert edits.customer_edited(ANNA, 60, "   ").outcome == EditOutcome.INVALID

    outreach.reply_to_customer(BARISTA, _customer_id())
    outreach.send_to_selected(BARISTA, "Ready in 5", source_message_id=70)
    assert edits.staff_edited(BARISTA, 70, "Ready in 10").outcome == EditOutcome.QUEUED
    (message,) = rows(OutboxKind.MESSAGE)
    customer_edit = rows(OutboxKind.EDIT)[-1]
    assert (customer_edit.bot, customer_edit.text, json.loads(customer_edit.payload or "{}")["of"]) == (
        "customer",
        "Ready in 10",
        message.id,
    )
    assert db.session.scalar(select(DialogMessage.text).where(DialogMessage.source_message_id == 70)) == "Ready in 10"


def test_an_upload_is_kept_once_per_file_and_bot(ctx):
    assert media.cached_file_id("U-9", "customer") is None
    media.remember_upload("U-9", "customer", "first")
    media.remember_upload("U-9", "customer", "second")  # a racing upload: the first one stays
    media.remember_upload("U-9", "horeca", "staff-side")
    assert media.cached_file_id("U-9", "customer") == "first"
    assert media.cached_file_id("U-9", "horeca") == "staff-side"
    assert db.session.scalar(select(db.func.count()).select_from(MediaUpload)) == 2
