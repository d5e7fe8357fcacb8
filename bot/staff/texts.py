"""Every word the staff bot says, in Russian and English (HTML parse mode: dynamic values are escaped here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Literal

PARSE_MODE = "HTML"

# --- counts: a text with a number in the forms its language needs (issue 14) -------------------------------

PluralForm = Literal["one", "few", "many"]


def russian_form(n: int) -> PluralForm:
    """1, 21, 101 → one (гостю); 2–4, 22–24 → few (гостя); 0, 5–20, 11–14, 25 → many (гостей)."""
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return "one"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return "few"
    return "many"


def english_form(n: int) -> PluralForm:
    """1 → one (customer); anything else → many (customers)."""
    return "one" if n == 1 else "many"


@dataclass(frozen=True)
class Plural:
    """A text with a count `{n}`, in each form its language needs; `few` only where the language has it."""

    one: str
    many: str
    few: str | None = None

    def form(self, form: PluralForm) -> str:
        if form == "one":
            return self.one
        return self.few if form == "few" and self.few is not None else self.many


@dataclass(frozen=True)
class StaffTexts:
    """The staff bot's catalog of one language."""

    lang: str
    statuses: dict[str, str]
    # joining
    not_staff: str
    joined: str  # {horeca}
    rejoined: str  # {horeca}
    already_staff: str  # {horeca}
    unknown_code: str
    used_code: str
    too_many_codes: str
    codes_busy: str  # too many wrong codes from everyone: the limit across users
    removed: str  # {horeca}
    # the menu (a persistent reply keyboard) and commands
    menu_dialogs: str
    menu_replies: str
    menu_horeca: str
    command_dialogs: str
    command_replies: str
    command_horeca: str
    command_cancel: str
    command_help: str
    help: str  # {horeca}
    idle_hint: str
    # the dialog list
    dialogs_title: str  # {horeca}
    dialogs_range: str  # {first} {last} {total}
    dialogs_empty: str
    dialogs_hint: str
    selected_count: str  # {n}
    colleague_line: str  # {colleague} {customer}
    order_short: str  # {order_id} {status}
    unread_badge: str  # {n}
    button_prev: str
    button_next: str
    button_select_all: str
    button_clear: str
    button_write: str  # {n}
    button_open: str
    toast_selected: str
    toast_unselected: str
    toast_all_selected: str  # {n}
    toast_cleared: str
    alert_nothing_selected: str
    alert_gone: str
    # one dialog
    dialog_title: str  # {customer}
    dialog_order: str  # {order_id} {status}
    dialog_empty: str
    dialog_in: str  # {time} {text}
    dialog_out: str  # {time} {staff} {text}
    ago_now: str  # under a minute ago
    ago_minutes: str  # {n}
    ago_hours: str  # {n}
    button_reply: str
    # composing
    compose_many: str  # {n} {names} {horeca}
    compose_one: str  # {customer} {horeca}
    compose_one_order: str  # {customer} {order_id} {horeca}
    compose_colleague: str  # {colleague} {customer}
    compose_canned_hint: str
    button_cancel_compose: str
    compose_cancelled: str
    nothing_sent_blocked: str  # {names}
    empty_text: str
    too_long: str  # {limit}
    not_text: str
    # delivery summaries
    summary_one: str  # {name}
    summary_all: str  # {total}
    summary_some: str  # {sent} {total}
    # notices
    notice_from: str  # {customer}
    notice_order: str  # {order_id}
    notice_horeca: str  # {horeca}
    # canned replies
    replies_title: str  # {horeca}
    replies_empty: str
    replies_hint: str
    button_add_reply: str
    add_reply_prompt: str  # {limit}
    reply_saved: str
    reply_deleted: str
    reply_gone: str
    too_many_replies: str  # {n}
    # horecas
    horecas_title: str
    horeca_switched: str  # {horeca}
    # errors
    apology: str
    apology_short: str
    # --- counts and stale buttons (issue 14) ---
    plural_form: Callable[[int], PluralForm]  # which form of a `Plural` a count takes
    sending: Plural  # {n}
    sending_blocked: Plural  # {n}
    summary_blocked: Plural  # {n} {names}
    summary_failed: Plural  # {n} {names}
    list_refreshed: str  # toast: a stale list was re-drawn instead of acting
    prompt_sent_toast: str  # a button of a prompt whose message was already sent
    prompt_sent_line: str  # added to that prompt (its buttons removed)
    prompt_saved_toast: str
    prompt_saved_line: str
    prompt_cancelled_toast: str
    prompt_closed_toast: str  # replaced by a newer prompt, or nothing left to write to
    prompt_closed_line: str
    # --- media and edits (issue 12) ---
    media_too_big: str  # a file over the Bot API's 20 MB download limit
    edited: str  # heads the follow-up where Telegram cannot edit a message
    # --- ratings (issue 11) ---
    notice_low_rating: str  # {stars} {order_id} {customer} {horeca}
    notice_rating_comment: str  # {comment}

    def count(self, text: Plural, n: int, **values: object) -> str:
        """`text` in the form the count `n` takes in this language, with `{n}` and `values` filled in."""
        return text.form(self.plural_form(n)).format(n=n, **values)

    def status(self, status: str | None) -> str:
        return self.statuses.get(status or "", escape(status or ""))

    def ago(self, seconds: int) -> str:
        """How long ago, in the catalog's words: now, minutes, hours."""
        if seconds < 60:
            return self.ago_now
        if seconds < 3600:
            return self.ago_minutes.format(n=seconds // 60)
        return self.ago_hours.format(n=seconds // 3600)

    def names(self, names: list[str], total: int) -> str:
        """Up to five names, and how many more."""
        shown = ", ".join(escape(n) for n in names[:5])
        more = total - min(len(names), 5)
        return shown + (f" +{more}" if more > 0 else "")


RU = StaffTexts(
    lang="ru",
    statuses={
        "created": "оформлен",
        "accepted": "принят",
        "preparing": "готовится",
        "ready": "готов",
        "completed": "выдан",
        "cancelled": "отменён",
        "rejected": "отклонён",
    },
    not_staff=(
        "👋 Это рабочий бот сотрудников заведения.\n\n"
        "Чтобы подключиться, попросите у управляющего код сотрудника и отправьте его сюда "
        "(или откройте присланную ссылку)."
    ),
    joined="✅ Вы подключены как сотрудник <b>{horeca}</b>.\nСообщения гостей будут приходить сюда. Откройте «💬 Диалоги».",
    rejoined="✅ Вы снова сотрудник <b>{horeca}</b>.\nСообщения гостей будут приходить сюда.",
    already_staff="Вы уже сотрудник <b>{horeca}</b>. Работаем с ним.",
    unknown_code="❌ Такой код не найден или он устарел. Попросите у управляющего новый код сотрудника.",
    used_code="❌ Этот код уже использован. Попросите у управляющего новый код сотрудника.",
    too_many_codes="⏳ Слишком много неверных кодов. Попробуйте ещё раз через 15 минут.",
    codes_busy="⏳ Сейчас слишком много попыток ввести код. Попробуйте ещё раз через минуту.",
    removed="Вас убрали из сотрудников <b>{horeca}</b>. Сообщения его гостей сюда больше не придут.",
    menu_dialogs="💬 Диалоги",
    menu_replies="⚡ Быстрые ответы",
    menu_horeca="🏠 Заведение",
    command_dialogs="Диалоги с гостями",
    command_replies="Быстрые ответы",
    command_horeca="Сменить заведение",
    command_cancel="Отменить ввод",
    command_help="Как это работает",
    help=(
        "Вы работаете за <b>{horeca}</b>.\n\n"
        "• «💬 Диалоги» — гости с активным заказом или перепиской за сутки. Отметьте нужных (☐ → ☑) и нажмите "
        "«✏️ Написать выбранным»: следующее сообщение уйдёт каждому из них.\n"
        "• Под сообщением гостя есть кнопка «↩️ Ответить».\n"
        "• «⚡ Быстрые ответы» — готовые фразы, отправляются одним нажатием.\n"
        "• /horeca — сменить заведение, /cancel — отменить ввод."
    ),
    idle_hint="Чтобы написать гостям, откройте «💬 Диалоги», отметьте их и нажмите «✏️ Написать выбранным» — "
    "или нажмите «↩️ Ответить» под сообщением гостя.",
    dialogs_title="💬 <b>{horeca}</b> — диалоги",
    dialogs_range="{first}–{last} из {total}, сначала свежие.",
    dialogs_empty="Пока никого: здесь появятся гости с активным заказом или перепиской за последние сутки.",
    dialogs_hint="Нажмите на гостя, чтобы отметить его, 💬 — открыть переписку.",
    selected_count="Выбрано: <b>{n}</b>",
    colleague_line="✍️ {colleague} ответил(а) гостю {customer} меньше минуты назад.",
    order_short="№{order_id} {status}",
    unread_badge="🔴{n}",
    button_prev="« Назад",
    button_next="Далее »",
    button_select_all="Выбрать всех",
    button_clear="Снять выбор",
    button_write="✏️ Написать выбранным ({n})",
    button_open="💬",
    toast_selected="Выбран",
    toast_unselected="Выбор снят",
    toast_all_selected="Выбрано: {n}",
    toast_cleared="Выбор снят",
    alert_nothing_selected="Сначала отметьте хотя бы один диалог.",
    alert_gone="Этот диалог больше недоступен.",
    dialog_title="💬 <b>{customer}</b>",
    dialog_order="Заказ №{order_id}: {status}",
    dialog_empty="Переписки пока нет.",
    dialog_in="<i>{time}</i> 👤 {text}",
    dialog_out="<i>{time}</i> ☕ {staff}: {text}",
    ago_now="сейчас",
    ago_minutes="{n} мин",
    ago_hours="{n} ч",
    button_reply="↩️ Ответить",
    compose_many="✏️ Напишите сообщение для {n}: {names}.\nГости получат его как «Сообщение от {horeca}».",
    compose_one="↩️ Ответ гостю <b>{customer}</b>. Напишите сообщение — оно уйдёт от имени {horeca}.",
    compose_one_order="↩️ Ответ гостю <b>{customer}</b> (заказ №{order_id}). Напишите сообщение — оно уйдёт от имени {horeca}.",
    compose_colleague="⚠️ {colleague} уже ответил(а) гостю {customer} меньше минуты назад.",
    compose_canned_hint="Или выберите быстрый ответ:",
    button_cancel_compose="✖️ Отмена",
    compose_cancelled="Отменено. Ничего не отправлено.",
    nothing_sent_blocked="⚠️ Не отправлено: бота заблокировали — {names}.",
    empty_text="Сообщение пустое — напишите текст.",
    too_long="Слишком длинно: не больше {limit} символов.",
    not_text="Чтобы отправить фото или файл, сначала выберите диалоги и нажмите «Написать выбранным».",
    summary_one="✅ Доставлено: {name}.",
    summary_all="✅ Доставлено всем: {total}.",
    summary_some="📬 Доставлено {sent} из {total}.",
    notice_from="💬 <b>{customer}</b>",
    notice_order=" (заказ №{order_id})",
    notice_horeca=" · {horeca}",
    replies_title="⚡ <b>Быстрые ответы</b> · {horeca}",
    replies_empty="Пока нет ни одного. Добавьте фразы, которые пишете чаще всего.",
    replies_hint="➤ — отправить выбранным гостям, 🗑 — удалить.",
    button_add_reply="➕ Добавить",
    add_reply_prompt="Пришлите текст быстрого ответа (до {limit} символов). /cancel — отмена.",
    reply_saved="✅ Сохранено.",
    reply_deleted="Удалено",
    reply_gone="Этого ответа уже нет.",
    too_many_replies="Не больше {n} быстрых ответов — удалите ненужный.",
    horecas_title="🏠 Ваши заведения — выберите, за какое работаете:",
    horeca_switched="Теперь вы работаете за <b>{horeca}</b>.",
    apology="😔 Извините, что-то пошло не так. Попробуйте ещё раз через минуту.",
    apology_short="Что-то пошло не так. Попробуйте ещё раз.",
    # --- counts and stale buttons (issue 14) ---
    plural_form=russian_form,
    sending=Plural(one="📤 Отправляю {n} гостю…", few="📤 Отправляю {n} гостям…", many="📤 Отправляю {n} гостям…"),
    sending_blocked=Plural(
        one="{n} гость заблокировал бота — ему не отправится.",
        few="{n} гостя заблокировали бота — им не отправится.",
        many="{n} гостей заблокировали бота — им не отправится.",
    ),
    summary_blocked=Plural(
        one="🚫 {n} гость заблокировал бота: {names}.",
        few="🚫 {n} гостя заблокировали бота: {names}.",
        many="🚫 {n} гостей заблокировали бота: {names}.",
    ),
    summary_failed=Plural(
        one="⚠️ Не удалось доставить {n} гостю: {names}.",
        few="⚠️ Не удалось доставить {n} гостям: {names}.",
        many="⚠️ Не удалось доставить {n} гостям: {names}.",
    ),
    list_refreshed="Список изменился — вот он заново. Проверьте и нажмите ещё раз.",
    prompt_sent_toast="Уже отправлено.",
    prompt_sent_line="✅ Отправлено.",
    prompt_saved_toast="Уже сохранено.",
    prompt_saved_line="✅ Сохранено.",
    prompt_cancelled_toast="Уже отменено.",
    prompt_closed_toast="Этот запрос уже закрыт.",
    prompt_closed_line="⏹ Закрыто.",
    media_too_big="Файл больше 20 МБ — бот не может его передать. Отправьте файл поменьше или ссылку на него.",
    edited="✏️ Исправлено:",
    notice_low_rating="⚠️ Низкая оценка {stars} · заказ <b>{order_id}</b> · {horeca}\nГость: <b>{customer}</b>",
    notice_rating_comment="💬 {comment}",
)

EN = StaffTexts(
    lang="en",
    statuses={
        "created": "placed",
        "accepted": "accepted",
        "preparing": "preparing",
        "ready": "ready",
        "completed": "completed",
        "cancelled": "cancelled",
        "rejected": "rejected",
    },
    not_staff=(
        "👋 This is the staff bot of a cafe.\n\n"
        "To join, ask your manager for a staff code and send it here (or open the link they sent you)."
    ),
    joined="✅ You are now staff of <b>{horeca}</b>.\nCustomers' messages will arrive here. Open “💬 Dialogs”.",
    rejoined="✅ You are staff of <b>{horeca}</b> again.\nCustomers' messages will arrive here.",
    already_staff="You are already staff of <b>{horeca}</b>. Working for it now.",
    unknown_code="❌ This code is unknown or has expired. Ask your manager for a new staff code.",
    used_code="❌ This code has already been used. Ask your manager for a new staff code.",
    too_many_codes="⏳ Too many wrong codes. Please try again in 15 minutes.",
    codes_busy="⏳ Too many code attempts right now. Please try again in a minute.",
    removed="You were removed from the staff of <b>{horeca}</b>. Its customers' messages will no longer arrive here.",
    menu_dialogs="💬 Dialogs",
    menu_replies="⚡ Quick replies",
    menu_horeca="🏠 Cafe",
    command_dialogs="Dialogs with customers",
    command_replies="Quick replies",
    command_horeca="Switch cafe",
    command_cancel="Cancel typing",
    command_help="How it works",
    help=(
        "You are working for <b>{horeca}</b>.\n\n"
        "• “💬 Dialogs”: customers with an active order or a message in the last 24 hours. Tick the ones you need "
        "(☐ → ☑) and press “✏️ Write to selected”: your next message goes to each of them.\n"
        "• Every customer message has a “↩️ Reply” button.\n"
        "• “⚡ Quick replies”: saved phrases you send with one tap.\n"
        "• /horeca switches the cafe, /cancel stops typing a message."
    ),
    idle_hint="To write to customers, open “💬 Dialogs”, tick them and press “✏️ Write to selected” — "
    "or press “↩️ Reply” under a customer's message.",
    dialogs_title="💬 <b>{horeca}</b> — dialogs",
    dialogs_range="{first}–{last} of {total}, newest first.",
    dialogs_empty="Nobody yet: customers with an active order or a message in the last 24 hours show up here.",
    dialogs_hint="Tap a customer to tick them, 💬 to open the conversation.",
    selected_count="Selected: <b>{n}</b>",
    colleague_line="✍️ {colleague} answered {customer} less than a minute ago.",
    order_short="#{order_id} {status}",
    unread_badge="🔴{n}",
    button_prev="« Prev",
    button_next="Next »",
    button_select_all="Select all",
    button_clear="Clear",
    button_write="✏️ Write to selected ({n})",
    button_open="💬",
    toast_selected="Selected",
    toast_unselected="Unselected",
    toast_all_selected="Selected: {n}",
    toast_cleared="Selection cleared",
    alert_nothing_selected="Tick at least one dialog first.",
    alert_gone="This dialog is no longer available.",
    dialog_title="💬 <b>{customer}</b>",
    dialog_order="Order #{order_id}: {status}",
    dialog_empty="No messages yet.",
    dialog_in="<i>{time}</i> 👤 {text}",
    dialog_out="<i>{time}</i> ☕ {staff}: {text}",
    ago_now="now",
    ago_minutes="{n} min",
    ago_hours="{n} h",
    button_reply="↩️ Reply",
    compose_many="✏️ Write your message to {n}: {names}.\nThey get it as “Message from {horeca}”.",
    compose_one="↩️ Reply to <b>{customer}</b>. Write your message; it goes out from {horeca}.",
    compose_one_order="↩️ Reply to <b>{customer}</b> (order #{order_id}). Write your message; it goes out from {horeca}.",
    compose_colleague="⚠️ {colleague} answered {customer} less than a minute ago.",
    compose_canned_hint="Or pick a quick reply:",
    button_cancel_compose="✖️ Cancel",
    compose_cancelled="Cancelled. Nothing was sent.",
    nothing_sent_blocked="⚠️ Not sent: the bot is blocked by {names}.",
    empty_text="The message is empty: write some text.",
    too_long="Too long: at most {limit} characters.",
    not_text="To send a photo or a file, select dialogs and press “Write to selected” first.",
    summary_one="✅ Delivered to {name}.",
    summary_all="✅ Delivered to all {total}.",
    summary_some="📬 Delivered to {sent} of {total}.",
    notice_from="💬 <b>{customer}</b>",
    notice_order=" (order #{order_id})",
    notice_horeca=" · {horeca}",
    replies_title="⚡ <b>Quick replies</b> · {horeca}",
    replies_empty="None yet. Add the phrases you type most often.",
    replies_hint="➤ sends to the selected customers, 🗑 deletes.",
    button_add_reply="➕ Add",
    add_reply_prompt="Send the text of the quick reply (up to {limit} characters). /cancel to stop.",
    reply_saved="✅ Saved.",
    reply_deleted="Deleted",
    reply_gone="This reply no longer exists.",
    too_many_replies="At most {n} quick replies: delete one first.",
    horecas_title="🏠 Your cafes — pick the one you are working for:",
    horeca_switched="You are working for <b>{horeca}</b> now.",
    apology="😔 Sorry, something went wrong. Please try again in a minute.",
    apology_short="Sorry, something went wrong. Please try again.",
    # --- counts and stale buttons (issue 14) ---
    plural_form=english_form,
    sending=Plural(one="📤 Sending to {n} customer…", many="📤 Sending to {n} customers…"),
    sending_blocked=Plural(
        one="{n} has blocked the bot and will not get it.", many="{n} have blocked the bot and will not get it."
    ),
    summary_blocked=Plural(one="🚫 {n} blocked the bot: {names}.", many="🚫 {n} blocked the bot: {names}."),
    summary_failed=Plural(
        one="⚠️ Could not deliver to {n} customer: {names}.", many="⚠️ Could not deliver to {n} customers: {names}."
    ),
    list_refreshed="The list has changed: here it is again. Check it and press once more.",
    prompt_sent_toast="Already sent.",
    prompt_sent_line="✅ Sent.",
    prompt_saved_toast="Already saved.",
    prompt_saved_line="✅ Saved.",
    prompt_cancelled_toast="Already cancelled.",
    prompt_closed_toast="This prompt is closed.",
    prompt_closed_line="⏹ Closed.",
    media_too_big="This file is over 20 MB, which a bot cannot pass on. Send a smaller file or a link to it.",
    edited="✏️ Edited:",
    notice_low_rating="⚠️ Low rating {stars} · order <b>{order_id}</b> · {horeca}\nCustomer: <b>{customer}</b>",
    notice_rating_comment="💬 {comment}",
)

DEFAULT = RU  # when Telegram does not say, or says a language we have no catalog for
# Every language the bot speaks, by the two-letter prefix of Telegram's language_code. A new language is one more
# catalog above and one more entry here: the command menus and the language lookup follow this table.
CATALOGS: dict[str, StaffTexts] = {"ru": RU, "en": EN}


def for_language(language_code: str | None) -> StaffTexts:
    """The catalog for a Telegram language code (`en`, `en-GB`, ...), the default when there is none for it."""
    prefix = (language_code or "").strip().lower()[:2]
    return CATALOGS.get(prefix, DEFAULT)


def for_user(user: object | None) -> StaffTexts:
    """The catalog for a telebot `User` (anything with `language_code`)."""
    return for_language(getattr(user, "language_code", None))
