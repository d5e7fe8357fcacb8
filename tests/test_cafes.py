"""Cafes as first-class (issue 11) through HTTP, on every configured database: the profile, the order card's
details, a text without a status; and the cards the bot draws from them (claimed and rendered as the delivery
job does)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot import renderers
from devtools.tg_emulator.formatting import parse_html
from services import delivery
from tests.support.openapi import check_response
from tests.test_api import link, push

PROFILE = {
    "name": "Кофейня «Зерно» & Co",
    "timezone": "Europe/Moscow",
    "contact": {"phone": "+7 900 000-00-00", "address": "Тверская, 1", "url": "https://zerno.example"},
    "texts": {
        "ru": {"ready": "☕ {cafe}: заказ {order_id} готов! Код {pickup_code}. {text}"},
        "en": {
            "ready": "☕ {cafe}: order {order_id} is ready! Code {pickup_code}. {text}",
            "preparing": "<b>{{cooking}}</b> until {eta}",
        },
    },
}


@pytest.fixture
def spec(api):
    return api.get("/openapi.json").get_json()


def put(api, horeca_id: str = "cafe-1", **body):
    return api.raw.put(f"/horeca/{horeca_id}", headers=api.headers, json=body or PROFILE)


def claim(app) -> list[delivery.Job]:
    with app.app_context():
        return delivery.claim_due("test", ["customer"], 100, 30)


def drawn(app) -> list[tuple[str, list]]:
    """Every due message rendered as the delivery job would, as Telegram stores it: (plain text, entities)."""
    with app.app_context():
        return [parse_html(renderers.render(job).text) for job in claim(app)]


def entity_text(plain: str, entity: dict) -> str:
    """The text an entity covers (its offsets count UTF-16 code units)."""
    units = plain.encode("utf-16-le")
    return units[2 * entity["offset"] : 2 * (entity["offset"] + entity["length"])].decode("utf-16-le")


def set_language(app, user_id: int, language: str) -> None:
    from sqlalchemy import update

    from models import Customer, db

    with app.app_context():
        db.session.execute(update(Customer).where(Customer.telegram_user_id == user_id).values(language_code=language))
        db.session.commit()


# --- the profile -------------------------------------------------------------------------------------------


def test_a_profile_is_stored_and_read_back(api, spec):
    assert api.get("/horeca/cafe-1").status_code == 404
    missing = api.get("/horeca/cafe-1")
    assert missing.get_json()["error"] == "horeca_not_found"
    check_response(spec, "/horeca/{horeca_id}", "get", missing)

    response = put(api)
    assert response.status_code == 200, response.get_json()
    check_response(spec, "/horeca/{horeca_id}", "put", response)
    body = response.get_json()
    assert {k: body[k] for k in PROFILE} == PROFILE
    assert body["horeca_id"] == "cafe-1" and body["updated_at"].endswith("Z")

    got = api.get("/horeca/cafe-1")
    assert got.status_code == 200 and got.get_json() == body
    check_response(spec, "/horeca/{horeca_id}", "get", got)


def test_put_replaces_the_whole_profile(api):
    put(api)
    body = put(api, name="Zerno").get_json()
    assert body["name"] == "Zerno" and body["timezone"] == "UTC" and body["contact"] is None and body["texts"] == {}


def test_a_name_given_with_a_staff_code_is_a_profile_too(api):
    assert api.post("/horeca/cafe-2/staff-codes", json={"horeca_name": "Second"}).status_code == 201
    body = api.get("/horeca/cafe-2").get_json()
    assert body["name"] == "Second" and body["timezone"] == "UTC" and body["updated_at"] is None
    assert api.post("/horeca/cafe-3/staff-codes", json={}).status_code == 201
    assert api.get("/horeca/cafe-3").status_code == 404  # no name: no profile yet


@pytest.mark.parametrize(
    "body,field,words",
    [
        ({"texts": {"ru": {"ready": "Готов {price}"}}}, "texts.ru.ready", "unknown placeholder {price}"),
        ({"texts": {"ru": {"ready": "{order_id.__class__}"}}}, "texts.ru.ready", "unknown placeholder"),
        ({"texts": {"ru": {"ready": "{cafe:>99999999}"}}}, "texts.ru.ready", "no format"),
        ({"texts": {"ru": {"ready": "{cafe!r}"}}}, "texts.ru.ready", "no format"),
        ({"texts": {"ru": {"ready": "a { b"}}}, "texts.ru.ready", "doubled"),
        ({"texts": {"ru": {"shipped": "x"}}}, "texts.ru.shipped", "'created'"),
        ({"texts": {"de": {"ready": "x"}}}, "texts.de", "'ru' or 'en'"),
        ({"texts": {"en": {"ready": "x" * 1001}}}, "texts.en.ready", "1000"),
        ({"timezone": "Mars/Olympus"}, "timezone", "IANA"),
        ({"name": ""}, "name", "at least 1"),
        ({"name": "x" * 101}, "name", "at most 100"),
        ({"name": None}, "name", ""),
        ({"contact": {"phone": "1" * 33}}, "contact.phone", "at most 32"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_field_and_changes_nothing(api, spec, body, field, words):
    put(api)
    before = api.get("/horeca/cafe-1").get_json()
    response = put(api, **{"name": "Zerno", **body})
    assert response.status_code == 400
    check_response(spec, "/horeca/{horeca_id}", "put", response)
    error = response.get_json()
    assert any(d["field"].startswith(field) for d in error["details"]), error
    assert words in error["message"], error["message"]
    assert api.get("/horeca/cafe-1").get_json() == before


def test_a_template_of_exactly_1000_characters_is_taken(api):
    response = put(api, name="Zerno", texts={"en": {"ready": "x" * 990 + "{order_id}"}})
    assert response.status_code == 200


def test_a_profile_needs_a_token(api):
    assert api.raw.put("/horeca/cafe-1", json=PROFILE).status_code == 401
    assert api.raw.get("/horeca/cafe-1").status_code == 401


# --- the order card's details ------------------------------------------------------------------------------


def test_details_are_stored_returned_kept_and_changed(api, spec):
    link(api)
    details = {
        "items": [{"name": "Латте", "qty": 2}, {"name": "Круассан", "qty": 1}],
        "total": "540 ₽",
        "eta": "2026-12-01T12:30:00+03:00",
        "pickup_code": "A7",
    }
    assert push(api, "created", **details).status_code == 202
    order = api.get("/orders/cafe-1/A-1")
    check_response(spec, "/orders/{horeca_id}/{order_id}", "get", order)
    body = order.get_json()
    assert body["items"] == details["items"] and body["total"] == "540 ₽" and body["pickup_code"] == "A7"
    assert body["eta"] == "2026-12-01T09:30:00Z"

    assert push(api, "accepted").status_code == 202  # without details: the earlier ones stay
    assert {k: api.get("/orders/cafe-1/A-1").get_json()[k] for k in details} == {**details, "eta": "2026-12-01T09:30:00Z"}

    assert push(api, "preparing", eta="2026-12-01T12:45:00+03:00").status_code == 202
    body = api.get("/orders/cafe-1/A-1").get_json()
    assert body["eta"] == "2026-12-01T09:45:00Z" and body["pickup_code"] == "A7"


def test_an_order_without_details_shows_nulls(api, spec):
    link(api)
    push(api, "created")
    body = api.get("/orders/cafe-1/A-1").get_json()
    assert (body["items"], body["total"], body["eta"], body["pickup_code"]) == (None, None, None, None)


@pytest.mark.parametrize(
    "extra,field",
    [
        ({"items": [{"name": "x", "qty": 0}]}, "items.0.qty"),
        ({"items": [{"name": "x"}]}, "items.0.qty"),
        ({"items": [{"name": "x", "qty": 1}] * 51}, "items"),
        ({"total": "1" * 33}, "total"),
        ({"eta": "2026-12-01T12:30:00"}, "eta"),  # no offset
        ({"eta": "soon"}, "eta"),
        ({"eta": 1764581400}, "eta"),
        ({"pickup_code": "1" * 17}, "pickup_code"),
        ({"message_id": "m" * 65}, "message_id"),
    ],
)
def test_bad_details_are_refused_naming_the_field(api, app, extra, field):
    link(api)
    response = push(api, "created", **extra)
    assert response.status_code == 400
    assert any(d["field"] == field for d in response.get_json()["details"]), response.get_json()
    assert api.get("/orders/cafe-1/A-1").status_code == 404


# --- the seed's body: a text without a status ---------------------------------------------------------------


def seed_body(api, text: str | None = "Your barista says hi", **extra):
    body = {"user_id": 1001, "order_id": "A-1", "horeca_id": "cafe-1", **extra}
    if text is not None:
        body["text"] = text
    return api.post("/provide_message_to_user/", json=body)


def test_a_text_without_a_status_creates_an_order_without_one(api, app, spec):
    link(api)
    response = seed_body(api, message_id="msg-1")
    assert response.status_code == 202
    check_response(spec, "/provide_message_to_user/", "post", response)
    sent = response.get_json()
    assert sent["status"] is None and sent["delivery"] == "pending"

    again = seed_body(api, message_id="msg-1")
    assert again.status_code == 200 and again.get_json()["update_id"] == sent["update_id"]
    check_response(spec, "/provide_message_to_user/", "post", again)

    order = api.get("/orders/cafe-1/A-1")
    check_response(spec, "/orders/{horeca_id}/{order_id}", "get", order)
    body = order.get_json()
    assert body["status"] is None and body["cancellable"] is False
    assert [(u["update_id"], u["status"]) for u in body["updates"]] == [(sent["update_id"], None)]

    # A status arrives: the order takes it and can be cancelled; the earlier text stays in its history.
    assert push(api, "created").status_code == 202
    body = api.get("/orders/cafe-1/A-1").get_json()
    assert body["status"] == "created" and body["cancellable"] is True
    assert [u["status"] for u in body["updates"]] == [None, "created"]


def test_texts_without_a_message_id_are_each_sent_and_keep_the_status(api):
    link(api)
    push(api, "preparing")
    first = seed_body(api).get_json()
    second = seed_body(api).get_json()
    assert first["update_id"] != second["update_id"]
    body = api.get("/orders/cafe-1/A-1").get_json()
    assert body["status"] == "preparing" and body["cancellable"] is True
    assert [u["status"] for u in body["updates"]] == ["preparing", None, None]


@pytest.mark.parametrize("text", [None, ""])
def test_neither_status_nor_text_is_refused_naming_both(api, text):
    link(api)
    response = seed_body(api, text=text)
    assert response.status_code == 400
    message = response.get_json()["message"]
    assert "status" in message and "text" in message
    assert api.get("/orders/cafe-1/A-1").status_code == 404


def test_a_text_for_an_unknown_user_or_another_users_order_is_refused(api):
    assert seed_body(api).status_code == 404
    link(api)
    link(api, 1002)
    push(api, "created", user_id=1002)
    assert seed_body(api).status_code == 409


# --- the cards the bot draws --------------------------------------------------------------------------------


def test_the_card_names_the_cafe_and_shows_the_details_and_the_eta_as_a_date_time_entity(api, app):
    put(api)
    link(api)
    set_language(app, 1001, "en")
    push(
        api,
        "created",
        items=[{"name": "Latte <large>", "qty": 2}],
        total="540 ₽",
        eta="2030-06-01T12:30:00+03:00",
        pickup_code="A7",
    )
    ((plain, entities),) = drawn(app)
    assert plain.startswith("Order A-1 · Кофейня «Зерно» & Co\n🧾 Order placed\n")
    assert "• Latte <large> × 2\nTotal: 540 ₽\n⏱ Ready by 01.06 12:30\n🔑 Pickup code: A7" in plain
    (when,) = [e for e in entities if e["type"] == "date_time"]
    assert when["unix_time"] == int(datetime(2030, 6, 1, 9, 30, tzinfo=UTC).timestamp())
    assert when["date_time_format"] == "dt"  # not today: with the date
    assert entity_text(plain, when) == "01.06 12:30"  # the cafe's own time


def test_an_eta_today_is_a_time_alone_in_the_cafes_timezone(api, app):
    put(api)
    link(api)
    set_language(app, 1001, "en")
    soon = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    push(api, "accepted", eta=soon.isoformat())
    ((plain, entities),) = drawn(app)
    (when,) = [e for e in entities if e["type"] == "date_time"]
    assert when["unix_time"] == int(soon.timestamp()) and when["date_time_format"] == "t"
    moscow = soon.astimezone(ZoneInfo("Europe/Moscow")).strftime("%H:%M")
    assert f"⏱ Ready by {moscow}" in plain


def test_the_cafes_template_replaces_the_status_line_in_the_customers_language(api, app):
    put(api)
    link(api)
    link(api, 1002)
    set_language(app, 1002, "ru")
    set_language(app, 1001, "en")
    push(api, "ready", pickup_code="A7", text="<3")
    push(api, "ready", user_id=1002, order_id="B-1", text="ждём")
    en, ru = (plain for plain, _ in drawn(app))
    assert en == "Order A-1 · Кофейня «Зерно» & Co\n☕ Кофейня «Зерно» & Co: order A-1 is ready! Code A7. <3"
    assert ru == "Заказ B-1 · Кофейня «Зерно» & Co\n☕ Кофейня «Зерно» & Co: заказ B-1 готов! Код —. ждём"


def test_a_status_without_a_template_uses_the_built_in_text_and_markup_in_a_template_stays_text(api, app):
    put(api)
    link(api)
    set_language(app, 1001, "ru")
    push(api, "preparing")  # ru has no "preparing" template
    ((plain, _),) = drawn(app)
    assert "👨‍🍳 Заказ готовится" in plain
    set_language(app, 1001, "en")
    push(api, "accepted", order_id="A-2")
    assert "\n✅ The cafe accepted your order\n" in [p for p, _ in drawn(app)][0]
    push(api, "preparing", order_id="A-3", eta="2030-12-01T12:30:00+03:00")
    texts = [p for p, _ in drawn(app)]
    assert texts[0].startswith("Order A-3 · Кофейня «Зерно» & Co\n<b>{cooking}</b> until ")  # escaped, not bold
    assert "Ready by" not in texts[0]  # the template shows the ETA: not repeated


def test_without_a_profile_the_card_names_the_cafe_by_its_id(api, app):
    link(api)
    set_language(app, 1001, "en")
    push(api, "created")
    ((plain, _),) = drawn(app)
    assert plain.startswith("Order A-1 · cafe-1\n")


def test_a_text_without_a_status_is_drawn_under_the_orders_title_without_a_button(api, app):
    put(api)
    link(api)
    set_language(app, 1001, "en")
    seed_body(api, text="Your <order> is in the queue")
    (job,) = claim(app)
    with app.app_context():
        rendered = renderers.render(job)
    assert rendered.markup is None and rendered.supersedes is False
    assert parse_html(rendered.text)[0] == "Order A-1 · Кофейня «Зерно» & Co\nYour <order> is in the queue"


@pytest.mark.parametrize("template", ["{text}" * 166, "🍩" * 1000])
def test_the_longest_card_the_api_allows_still_fits_in_a_telegram_message(api, app, template):
    """A template of {text} over and over (or a long one beside the text), 50 long items and a 1000-character
    text: below 4096 UTF-16 units."""
    put(api, name="🍩" * 100, texts={"en": {"ready": template}})
    link(api)
    set_language(app, 1001, "en")
    items = [{"name": "ж" * 100, "qty": 10000}] * 50  # within the body limit (MAX_BODY_BYTES)
    sent = push(api, "ready", order_id="😀" * 128, text="😀" * 1000, items=items, total="9" * 32, pickup_code="K" * 16)
    assert sent.status_code == 202, sent.get_json()
    ((plain, _),) = drawn(app)
    assert len(plain.encode("utf-16-le")) // 2 <= 4096
    assert plain.count("ж" * 100) < 50  # the rest of the items is counted, or (beside a long line) left out
