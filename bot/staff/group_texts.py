"""Every word the staff bot says in a staff group, in Russian and English (HTML: dynamic values escaped by callers).

A catalog of its own (rather than fields of `StaffTexts`) because the group speaks the language of whoever
linked it, and its words are needed by the delivery worker as well as by the handlers.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.staff import texts as staff_texts
from models import GroupProblem


@dataclass(frozen=True)
class GroupTexts:
    lang: str
    linked: str  # {horeca}
    already_linked: str  # {horeca}
    unknown_code: str
    used_code: str
    too_many_codes: str
    problems: dict[str, str]  # GroupProblem → one line saying what to fix
    fixed: str
    header: str  # {customer}
    header_username: str  # {username}
    header_orders: str  # {orders}
    header_no_orders: str
    order_line: str  # {order_id} {status}
    from_cabinet: str  # {author}: a reply written in the bot's cabinet
    not_staff: str  # {user} {horeca} {names}
    nobody: str  # when the horeca has no staff yet
    too_long: str
    customer_blocked: str  # {customer}
    media_too_big: str  # a file in a topic over the Bot API's 20 MB download limit
    caption_too_long: str  # a media message's caption over Telegram's 1024 characters


RU = GroupTexts(
    lang="ru",
    linked="✅ Эта группа подключена к <b>{horeca}</b>: у каждого гостя будет своя тема, ответ в теме уйдёт гостю.",
    already_linked="Эта группа уже подключена к <b>{horeca}</b>.",
    unknown_code="Код группы не найден или устарел. Попросите у администратора новый.",
    used_code="Этот код группы уже использован. Попросите у администратора новый.",
    too_many_codes="Слишком много неверных кодов. Попробуйте через 10 минут.",
    problems={
        GroupProblem.NOT_FORUM: "⚠️ Не могу создавать темы: включите «Темы» в настройках группы.",
        GroupProblem.NOT_ADMIN: "⚠️ Не могу создавать темы: сделайте бота администратором с правом «Управление темами».",
        GroupProblem.NO_MANAGE_TOPICS: "⚠️ Не могу создавать темы: дайте боту право «Управление темами».",
        GroupProblem.NOT_MEMBER: "⚠️ Бот больше не в группе: добавьте его снова.",
    },
    fixed="✅ Права в порядке: темы гостей снова создаются.",
    header="👤 <b>{customer}</b>",
    header_username=" (@{username})",
    header_orders="Активные заказы:\n{orders}",
    header_no_orders="Активных заказов нет.",
    order_line="• #{order_id} — {status}",
    from_cabinet="↩️ <b>{author}</b> (из бота):",
    not_staff="{user}, отвечать гостям <b>{horeca}</b> могут только сотрудники: {names}. Ваши сообщения гостю не уходят.",
    nobody="пока никто (выдайте код сотрудника)",
    too_long="Сообщение не ушло: оно пустое или длиннее 3500 символов.",
    customer_blocked="{customer} заблокировал(а) бота: сообщение не доставлено.",
    media_too_big="Файл не ушёл: он больше 20 МБ, бот не может его передать. Отправьте файл поменьше или ссылку.",
    caption_too_long="Сообщение не ушло: подпись длиннее 1024 символов.",
)

EN = GroupTexts(
    lang="en",
    linked="✅ This group is linked to <b>{horeca}</b>: each customer gets a topic, a reply in the topic goes to them.",
    already_linked="This group is already linked to <b>{horeca}</b>.",
    unknown_code="This group code is unknown or has expired. Ask your manager for a new one.",
    used_code="This group code was already used. Ask your manager for a new one.",
    too_many_codes="Too many wrong codes. Try again in 10 minutes.",
    problems={
        GroupProblem.NOT_FORUM: "⚠️ I cannot open topics: turn on Topics in the group's settings.",
        GroupProblem.NOT_ADMIN: "⚠️ I cannot open topics: make the bot an admin with the “Manage Topics” right.",
        GroupProblem.NO_MANAGE_TOPICS: "⚠️ I cannot open topics: give the bot the “Manage Topics” right.",
        GroupProblem.NOT_MEMBER: "⚠️ The bot is no longer in the group: add it again.",
    },
    fixed="✅ Rights are fine: customers' topics are opened again.",
    header="👤 <b>{customer}</b>",
    header_username=" (@{username})",
    header_orders="Active orders:\n{orders}",
    header_no_orders="No active orders.",
    order_line="• #{order_id} — {status}",
    from_cabinet="↩️ <b>{author}</b> (from the bot):",
    not_staff="{user}, only staff of <b>{horeca}</b> can answer customers: {names}. Your messages do not reach the customer.",
    nobody="nobody yet (issue a staff code)",
    too_long="Not sent: the message is empty or longer than 3500 characters.",
    customer_blocked="{customer} has blocked the bot: the message was not delivered.",
    media_too_big="Not sent: the file is over 20 MB, which a bot cannot pass on. Send a smaller file or a link.",
    caption_too_long="Not sent: the caption is longer than 1024 characters.",
)

CATALOGS: dict[str, GroupTexts] = {"ru": RU, "en": EN}


def for_language(language_code: str | None) -> GroupTexts:
    """The group catalog for a Telegram language code; the staff bot's default language otherwise."""
    prefix = (language_code or "").strip().lower()[:2]
    return CATALOGS.get(prefix, CATALOGS[staff_texts.DEFAULT.lang])


def status_name(language_code: str | None, status: str) -> str:
    """An order status in words, from the staff catalog of the same language."""
    return staff_texts.for_language(language_code).statuses.get(status, status)
