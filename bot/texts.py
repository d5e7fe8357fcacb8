"""Every word the customer bot says, in Russian and English (HTML parse mode: dynamic values are escaped here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from html import escape

from services import cafes
from services.customer_chat import OrderLine

PARSE_MODE = "HTML"


class Footer(StrEnum):
    """The footer under a status message (each but NONE comes with its keyboard, see bot/card.py)."""

    NONE = "none"
    HINT = "hint"  # the cancel hint, under the Cancel button
    CONFIRM = "confirm"  # "Cancel order …?", above Yes / No
    REQUESTED = "requested"  # the cancel was requested
    RATE = "rate"  # a completed order: the rating prompt (or the rating given), above the 1-5 stars


@dataclass(frozen=True)
class Texts:
    """The catalog of one language."""

    lang: str
    statuses: dict[str, str] = field(repr=False)
    order_title: str  # {order_id} {cafe}
    cancel_hint: str
    confirm_question: str  # {order_id}
    cancel_requested_note: str
    linked: str
    welcome_back: str
    ask_code: str
    unknown_code: str
    used_code: str
    too_many_codes: str
    codes_busy: str  # too many wrong codes from everyone: the limit across users
    linked_help: str
    send_text: str
    active_orders: str
    order_line: str  # {order_id} {horeca_id} {status}
    order_line_cancel_requested: str
    button_cancel: str
    button_yes: str
    button_no: str
    toast_cancel_requested: str
    toast_kept: str
    alert_too_late: str
    alert_already_requested: str
    alert_use_latest: str
    alert_invalid: str
    apology: str
    apology_short: str
    command_start: str
    command_help: str
    message_from: str  # {horeca}
    message_relayed: str  # {horeca}
    which_horeca: str
    message_too_long: str
    # The order card's details (issue 11); the values come escaped (the ETA as a date_time entity).
    item_line: str  # {name} {qty}
    total_line: str  # {total}
    eta_line: str  # {eta}
    pickup_line: str  # {pickup_code}
    # --- media and edits (issue 12) ---
    media_too_big: str  # a file over the Bot API's 20 MB download limit
    caption_too_long: str
    edited: str  # heads the follow-up where Telegram cannot edit a message
    # --- ratings (issue 11) ---
    rating_prompt: str
    rating_given: str  # {stars}
    rating_thanks: str
    rating_comment_saved: str
    rating_comment_too_long: str
    toast_rated: str
    alert_rating_closed: str

    def status(self, status: str | None) -> str:
        """A status as a person reads it (unknown ones as sent, escaped)."""
        return self.statuses.get(status or "", escape(status or ""))

    def status_message(
        self,
        order_id: str,
        cafe: str,
        status: str | None,
        note: str | None = None,
        footer: Footer = Footer.NONE,
        line: str | None = None,
        details: list[str] | None = None,
    ) -> str:
        """The message of one status update: title, status (or the cafe's own `line`, already markup), the
        backend's text, the order's `details` lines (already markup), and an optional footer."""
        title = self.order_title.format(order_id=escape(order_id), cafe=escape(cafe))
        parts = [title, self.status(status) if line is None else line]
        if note:
            parts.append(escape(note))
        parts.extend(details or [])
        text = "\n".join(parts)
        if footer == Footer.HINT:
            text += "\n\n" + self.cancel_hint
        elif footer == Footer.CONFIRM:
            text += "\n\n" + self.confirm_question.format(order_id=escape(order_id))
        elif footer == Footer.REQUESTED:
            text += "\n\n" + self.cancel_requested_note
        return text

    def orders_summary(self, lines: list[OrderLine]) -> str:
        """The user's active orders, one line each; empty when there are none."""
        if not lines:
            return ""
        rows = [self.active_orders]
        for line in lines:
            row = self.order_line.format(
                order_id=escape(line.order_id), horeca_id=escape(line.cafe or line.horeca_id), status=self.status(line.status)
            )
            if line.cancel_requested:
                row += self.order_line_cancel_requested
            rows.append(row)
        return "\n".join(rows)

    def with_orders(self, head: str, lines: list[OrderLine]) -> str:
        """`head`, then the active orders if any."""
        summary = self.orders_summary(lines)
        return f"{head}\n\n{summary}" if summary else head

    def rating_footer(self, rating: int | None) -> str:
        """Under a completed order's card: the prompt, or the rating given (the stars stay to change it)."""
        if rating is None:
            return self.rating_prompt
        return self.rating_given.format(stars=stars(rating))

    def staff_message(self, horeca: str | None, text: str) -> str:
        """A message the cafe's staff wrote to the customer."""
        body = escape(text)
        return f"{self.message_from.format(horeca=escape(horeca))}\n{body}" if horeca else body


def stars(rating: int) -> str:
    """A 1-5 rating as five stars, filled up to it."""
    return "★" * rating + "☆" * (5 - rating)


RU = Texts(
    lang="ru",
    statuses={
        "created": "🧾 Заказ оформлен",
        "accepted": "✅ Заведение приняло заказ",
        "preparing": "👨‍🍳 Заказ готовится",
        "ready": "🔔 Заказ готов, можно забирать!",
        "completed": "🙏 Заказ выдан. Спасибо!",
        "cancelled": "❌ Заказ отменён",
        "rejected": "⛔ Заведение не смогло принять заказ",
    },
    order_title="<b>Заказ {order_id}</b> · {cafe}",
    cancel_hint="<i>Отменить заказ можно, пока он не готов.</i>",
    confirm_question="<b>Отменить заказ {order_id}?</b>",
    cancel_requested_note="🕓 <b>Запрос на отмену отправлен.</b> Заведение подтвердит отмену.",
    linked="✅ Готово! Обновления ваших заказов будут приходить сюда.",
    welcome_back="👋 С возвращением! Обновления ваших заказов будут приходить сюда.",
    ask_code="👋 Здравствуйте! Чтобы следить за заказом, отправьте сюда код с сайта.",
    unknown_code="❌ Такой код не найден или он устарел. Получите новый код на сайте и отправьте его сюда.",
    used_code="❌ Этот код уже использован. Получите новый код на сайте и отправьте его сюда.",
    too_many_codes="⏳ Слишком много неверных кодов. Попробуйте ещё раз через 15 минут.",
    codes_busy="⏳ Сейчас слишком много попыток ввести код. Попробуйте ещё раз через минуту.",
    linked_help="Обновления заказов приходят сюда сами. Чтобы подключить другой заказ, отправьте его код с сайта.",
    send_text="Отправьте, пожалуйста, код с сайта обычным текстом.",
    active_orders="Ваши активные заказы:",
    order_line="• <b>{order_id}</b> · {horeca_id}: {status}",
    order_line_cancel_requested=" (запрошена отмена)",
    button_cancel="Отменить заказ",
    button_yes="Да, отменить",
    button_no="Нет",
    toast_cancel_requested="Запрос на отмену отправлен",
    toast_kept="Заказ остаётся в силе",
    alert_too_late="Этот заказ уже нельзя отменить.",
    alert_already_requested="Отмена этого заказа уже запрошена.",
    alert_use_latest="Нажмите «Отменить заказ» под последним сообщением об этом заказе.",
    alert_invalid="Эта кнопка больше не действует.",
    apology="😔 Извините, что-то пошло не так. Попробуйте ещё раз через минуту.",
    apology_short="Извините, что-то пошло не так. Попробуйте ещё раз.",
    command_start="Начать и подключить заказ",
    command_help="Как это работает",
    message_from="💬 Сообщение от <b>{horeca}</b>:",
    message_relayed="✉️ Передано в {horeca}.",
    which_horeca="В какое заведение отправить это сообщение?",
    message_too_long="Слишком длинное сообщение: не больше 4000 символов.",
    item_line="• {name} × {qty}",
    total_line="Итого: <b>{total}</b>",
    eta_line="⏱ Будет готов к {eta}",
    pickup_line="🔑 Код выдачи: <b>{pickup_code}</b>",
    media_too_big="Файл больше 20 МБ — бот не может его передать. Пришлите файл поменьше или ссылку на него.",
    caption_too_long="Слишком длинная подпись: не больше 1024 символов.",
    edited="✏️ Исправлено:",
    rating_prompt="Как вам заказ? Оцените его:",
    rating_given="Ваша оценка: {stars}",
    rating_thanks="🙏 Спасибо за оценку! Если хотите, в течение 10 минут напишите сюда комментарий к заказу.",
    rating_comment_saved="✅ Спасибо, комментарий сохранён.",
    rating_comment_too_long="Слишком длинный комментарий: не больше 1000 символов. Напишите короче.",
    toast_rated="Спасибо за оценку!",
    alert_rating_closed="Этот заказ уже нельзя оценить.",
)

EN = Texts(
    lang="en",
    statuses={
        "created": "🧾 Order placed",
        "accepted": "✅ The cafe accepted your order",
        "preparing": "👨‍🍳 Your order is being prepared",
        "ready": "🔔 Your order is ready to pick up!",
        "completed": "🙏 Order completed. Thank you!",
        "cancelled": "❌ Order cancelled",
        "rejected": "⛔ The cafe could not accept your order",
    },
    order_title="<b>Order {order_id}</b> · {cafe}",
    cancel_hint="<i>You can cancel the order until it is ready.</i>",
    confirm_question="<b>Cancel order {order_id}?</b>",
    cancel_requested_note="🕓 <b>Cancellation requested.</b> The cafe will confirm it.",
    linked="✅ Done! Updates on your orders will arrive here.",
    welcome_back="👋 Welcome back! Updates on your orders will arrive here.",
    ask_code="👋 Hi! To follow your order, send me the code from the website.",
    unknown_code="❌ This code is unknown or has expired. Get a new code on the website and send it here.",
    used_code="❌ This code has already been used. Get a new code on the website and send it here.",
    too_many_codes="⏳ Too many wrong codes. Please try again in 15 minutes.",
    codes_busy="⏳ Too many code attempts right now. Please try again in a minute.",
    linked_help="Order updates arrive here by themselves. To follow another order, send its code from the website.",
    send_text="Please send the code from the website as plain text.",
    active_orders="Your active orders:",
    order_line="• <b>{order_id}</b> · {horeca_id}: {status}",
    order_line_cancel_requested=" (cancellation requested)",
    button_cancel="Cancel order",
    button_yes="Yes, cancel",
    button_no="No",
    toast_cancel_requested="Cancellation requested",
    toast_kept="Your order stays active",
    alert_too_late="This order can no longer be cancelled.",
    alert_already_requested="Cancellation of this order has already been requested.",
    alert_use_latest="Please use the Cancel button under the latest message about this order.",
    alert_invalid="This button is no longer valid.",
    apology="😔 Sorry, something went wrong. Please try again in a minute.",
    apology_short="Sorry, something went wrong. Please try again.",
    command_start="Start and follow an order",
    command_help="How it works",
    message_from="💬 Message from <b>{horeca}</b>:",
    message_relayed="✉️ Sent to {horeca}.",
    which_horeca="Which cafe is this message for?",
    message_too_long="This message is too long: at most 4000 characters.",
    item_line="• {name} × {qty}",
    total_line="Total: <b>{total}</b>",
    eta_line="⏱ Ready by {eta}",
    pickup_line="🔑 Pickup code: <b>{pickup_code}</b>",
    media_too_big="This file is over 20 MB, which a bot cannot pass on. Please send a smaller file or a link to it.",
    caption_too_long="This caption is too long: at most 1024 characters.",
    edited="✏️ Edited:",
    rating_prompt="How was your order? Rate it:",
    rating_given="Your rating: {stars}",
    rating_thanks="🙏 Thank you for rating! If you like, send a comment on the order here within 10 minutes.",
    rating_comment_saved="✅ Thank you, your comment is saved.",
    rating_comment_too_long="This comment is too long: at most 1000 characters. Please make it shorter.",
    toast_rated="Thank you for rating!",
    alert_rating_closed="This order can no longer be rated.",
)

DEFAULT = RU  # when Telegram does not say, or says a language we have no catalog for
# Every language the bot speaks, by the two-letter prefix of Telegram's language_code. A new language is one more
# catalog above and one more entry here: the command menus and the language lookup follow this table.
CATALOGS: dict[str, Texts] = {"ru": RU, "en": EN}
assert tuple(CATALOGS) == cafes.LANGUAGES  # a cafe writes its status texts in the languages the bot speaks


def for_language(language_code: str | None) -> Texts:
    """The catalog for a Telegram language code (`en`, `en-GB`, ...), the default when there is none for it."""
    prefix = (language_code or "").strip().lower()[:2]
    return CATALOGS.get(prefix, DEFAULT)


def for_user(user: object | None) -> Texts:
    """The catalog for a telebot `User` (anything with `language_code`)."""
    return for_language(getattr(user, "language_code", None))
