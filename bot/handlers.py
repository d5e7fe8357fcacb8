"""The customer bot's conversation: linking by code, welcome back, the cancel button, block and unblock.

Handlers translate between telebot objects and the service layer. Each runs in its own app context
and never lets an exception escape: telebot has already advanced the update offset, so a crashed
update would be gone without a word. It is logged, and the user gets a short apology.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app
from telebot import TeleBot, util
from telebot.types import BotCommand, CallbackQuery, ChatMemberUpdated, Message, User

from bot import cancel_button, customer_dialogs, keyboards, media_in, rating, texts
from bot import card as cards
from bot.guard import Handler, guard
from bot.texts import PARSE_MODE, Footer, Texts
from services import customer_chat, customers, linking, orders, status_card
from services.status_card import StatusCard

log = logging.getLogger(__name__)

BOT_NAME = "customer"  # OutboxMessage.bot of this bot's messages
OTHER_CONTENT = [c for c in util.content_type_media if c != "text"]


def register_handlers(bot: TeleBot, app: Flask) -> None:
    """Wire the customer bot's handlers (first match wins, so the order matters)."""

    def safe(handler: Handler) -> Handler:
        return guard(app, handler, texts.for_user)

    private = ["private"]
    bot.register_message_handler(safe(on_start), commands=["start"], chat_types=private, pass_bot=True)
    bot.register_message_handler(safe(on_help), commands=["help"], chat_types=private, pass_bot=True)
    bot.register_message_handler(safe(on_text), content_types=["text"], chat_types=private, pass_bot=True)
    media = customer_dialogs.media_handler(app)  # photos, files, voice, locations, albums … to the cafe's staff
    bot.register_message_handler(safe(media), content_types=media_in.CONTENT_TYPES, chat_types=private, pass_bot=True)
    bot.register_message_handler(safe(on_other), content_types=OTHER_CONTENT, chat_types=private, pass_bot=True)
    edited = ["text", *media_in.CONTENT_TYPES]
    bot.register_edited_message_handler(safe(customer_dialogs.on_edit), content_types=edited, chat_types=private, pass_bot=True)
    bot.register_callback_query_handler(safe(customer_dialogs.on_choice), func=customer_dialogs.is_choice, pass_bot=True)
    bot.register_callback_query_handler(safe(rating.on_rate), func=rating.is_rating, pass_bot=True)
    bot.register_callback_query_handler(safe(on_button), func=lambda call: True, pass_bot=True)
    bot.register_my_chat_member_handler(safe(on_member), func=lambda update: True, pass_bot=True)


def commands() -> dict[str | None, list[BotCommand]]:
    """The command menu per language (None: the default catalog's, for every other language)."""
    menus: dict[str | None, list[BotCommand]] = {None: _menu(texts.DEFAULT)}
    menus.update({language: _menu(t) for language, t in texts.CATALOGS.items() if t is not texts.DEFAULT})
    return menus


def _menu(t: Texts) -> list[BotCommand]:
    return [BotCommand("start", t.command_start), BotCommand("help", t.command_help)]


def _profile(user: User) -> customers.Profile:
    return customers.Profile(
        first_name=user.first_name, last_name=user.last_name, username=user.username, language_code=user.language_code
    )


def _reply(bot: TeleBot, message: Message, text: str) -> None:
    bot.send_message(message.chat.id, text, parse_mode=PARSE_MODE)


# --- messages ---------------------------------------------------------------------------------------


def on_start(message: Message, bot: TeleBot) -> None:
    """/start <code> links this user; plain /start welcomes a linked user back or asks for the code."""
    code = (util.extract_arguments(message.text or "") or "").strip()
    if code:
        claim_code(message, bot, code)
        return
    _greet(message, bot)


def on_help(message: Message, bot: TeleBot) -> None:
    """/help: what the bot does for this user."""
    _greet(message, bot, help_only=True)


def on_text(message: Message, bot: TeleBot) -> None:
    """Typed text: a code is claimed (some clients drop the deep-link payload); anything else gets a hint."""
    text = (message.text or "").strip()
    if rating.take_comment(message, bot, text):  # within 10 minutes of a rating: its comment, not for the staff
        return
    if customer_dialogs.relay_text(message, bot, text):  # for the staff of the customer's horeca (issue 4)
        return
    if not text.startswith("/") and linking.looks_like_code(text):
        claim_code(message, bot, text)
        return
    _greet(message, bot, help_only=True)


def on_other(message: Message, bot: TeleBot) -> None:
    """Stickers, photos, ...: the bot only understands codes as text (but the user did start the bot)."""
    customer_chat.heard(_sender(message).id)
    _reply(bot, message, texts.for_user(message.from_user).send_text)


def _sender(message: Message) -> User:
    """Who wrote a private message (Telegram always says so in a private chat)."""
    assert message.from_user is not None, "a private message without a sender"
    return message.from_user


def _greet(message: Message, bot: TeleBot, help_only: bool = False) -> None:
    user = _sender(message)
    t = texts.for_user(user)
    greeting = customer_chat.greet(user.id, message.chat.id, _profile(user))
    if not greeting.linked:
        _reply(bot, message, t.ask_code)
    elif help_only:
        _reply(bot, message, t.with_orders(t.linked_help, greeting.orders))
    else:
        _reply(bot, message, t.with_orders(t.welcome_back, greeting.orders))


def claim_code(message: Message, bot: TeleBot, code: str) -> None:
    """Claim a one-time code through the same service as POST /enter_key_from_user/, with the wrong-code limit."""
    user = _sender(message)
    t = texts.for_user(user)
    user_id = user.id
    typed = linking.claim_typed(
        user_id,
        lambda: linking.claim(code, user_id, message.chat.id, _profile(user)),
        per_minute=current_app.config["WRONG_CODES_PER_MINUTE"],
    )
    if typed.outcome != linking.Typed.ACCEPTED:
        refusals = {
            linking.Typed.TOO_MANY: t.too_many_codes,
            linking.Typed.BUSY: t.codes_busy,
            linking.Typed.UNKNOWN: t.unknown_code,
        }
        customer_chat.heard(user_id)  # a refused code still shows the user started the bot
        _reply(bot, message, refusals.get(typed.outcome, t.used_code))
        return
    log.info("user %s linked with a code", user_id)
    _reply(bot, message, t.with_orders(t.linked, customer_chat.order_lines(user_id)))


def on_member(update: ChatMemberUpdated, bot: TeleBot) -> None:
    """The user blocked (kicked) or restarted (member) the bot: the backend's subscribe-status follows."""
    if update.chat.type != "private":
        return
    status = update.new_chat_member.status
    if status == "kicked":
        changed = customers.mark_blocked(update.from_user.id, True)
    elif status == "member":
        changed = customers.mark_blocked(update.from_user.id, False)
    else:
        return
    if changed:
        log.info("user %s is now %s", update.from_user.id, "blocked" if status == "kicked" else "back")


# --- the cancel button ------------------------------------------------------------------------------


def on_button(call: CallbackQuery, bot: TeleBot) -> None:
    """Cancel → confirmation; Yes → cancel requested; No → the Cancel button again. Always answered."""
    t = texts.for_user(call.from_user)
    parsed = keyboards.parse(call.data)
    message = call.message
    if parsed is None or not isinstance(message, Message) or not message.date:
        # Not our data, or a message Telegram no longer shows to the bot: change nothing.
        bot.answer_callback_query(call.id, t.alert_invalid, show_alert=True)
        return
    action, order_pk = parsed
    card = status_card.pressed(BOT_NAME, message.chat.id, message.message_id, order_pk, call.from_user.id)
    if card is None:
        log.info("user %s pressed a button that is not theirs (%r)", call.from_user.id, call.data)
        bot.answer_callback_query(call.id, t.alert_invalid, show_alert=True)
        return
    t = texts.for_language(card.language or call.from_user.language_code)
    shown = message.reply_markup is not None
    if action == keyboards.CANCEL:
        _ask_confirmation(call, bot, t, card, shown)
    elif action == keyboards.CONFIRM:
        _confirm_cancel(call, bot, t, card, shown)
    else:
        _keep_order(call, bot, t, card, shown)


def _ask_confirmation(call: CallbackQuery, bot: TeleBot, t: Texts, card: StatusCard, shown: bool) -> None:
    if not card.open:
        _refuse(call, bot, t, card, shown)
        return
    if not card.newest:
        # A stale button on an older message: the live one is under the newest message.
        bot.answer_callback_query(call.id, t.alert_use_latest, show_alert=True)
        cancel_button.drop(bot, card, shown)
        return
    cancel_button.show(bot, card, Footer.CONFIRM, t)
    bot.answer_callback_query(call.id)
    cancel_button.recheck(bot, card)


def _confirm_cancel(call: CallbackQuery, bot: TeleBot, t: Texts, card: StatusCard, shown: bool) -> None:
    outcome = orders.request_cancel(call.from_user.id, card.order_pk)
    if outcome.outcome in ("requested", "already_requested"):
        if outcome.outcome == "requested":
            log.info("user %s requested cancelling order %s of %s", call.from_user.id, outcome.order_id, outcome.horeca_id)
        cancel_button.show(bot, card, Footer.REQUESTED, t)
        bot.answer_callback_query(call.id, t.toast_cancel_requested)
        cancel_button.strip_order(bot, card.order_pk)
    elif outcome.outcome == "not_cancellable":
        _refuse(call, bot, t, card, shown)
    else:
        bot.answer_callback_query(call.id, t.alert_invalid, show_alert=True)


def _keep_order(call: CallbackQuery, bot: TeleBot, t: Texts, card: StatusCard, shown: bool) -> None:
    if not card.open:
        _refuse(call, bot, t, card, shown)
        return
    footer = cards.resting(card)
    cancel_button.show(bot, card, footer, t)
    bot.answer_callback_query(call.id, t.toast_kept)
    if footer == Footer.HINT:
        cancel_button.recheck(bot, card)


def _refuse(call: CallbackQuery, bot: TeleBot, t: Texts, card: StatusCard, shown: bool) -> None:
    """Too late: say so in an alert and take the keyboard away."""
    bot.answer_callback_query(call.id, t.alert_already_requested if card.cancel_requested else t.alert_too_late, show_alert=True)
    cancel_button.drop(bot, card, shown)
