"""The staff bot's outbox rows (bot "horeca", kind "staff_notice"): a customer's message, a delivery summary, a removal."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from bot.rendered import Rendered
from bot.rendering import edit_body, media_body
from bot.staff import keyboards as kb
from bot.staff import texts as staff_texts
from bot.staff.texts import StaffTexts
from bot.texts import stars
from services.delivery import Job


def _payload(job: Job) -> dict[str, Any]:
    try:
        payload = json.loads(job.payload or "{}")
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def notice_text(t: StaffTexts, payload: dict[str, Any]) -> str:
    """The text of a staff notice (a customer's message, a delivery summary, a removal)."""
    kind = payload.get("type")
    if kind == "customer_message":
        head = t.notice_from.format(customer=escape(str(payload.get("customer") or "?")))
        if payload.get("order_id"):
            head += t.notice_order.format(order_id=escape(str(payload["order_id"])))
        if payload.get("show_horeca"):
            head += t.notice_horeca.format(horeca=escape(str(payload.get("horeca") or "")))
        body = str(payload.get("text") or "")
        return f"{head}:\n{escape(body if len(body) <= 3800 else body[:3799] + '…')}"
    if kind == "delivery_summary":
        total, sent = int(payload.get("total") or 0), int(payload.get("sent") or 0)
        sent_names = payload.get("sent_names") or []
        if total == sent == 1 and sent_names:
            lines = [t.summary_one.format(name=escape(str(sent_names[0])))]
        elif sent == total:
            lines = [t.summary_all.format(total=total)]
        else:
            lines = [t.summary_some.format(sent=sent, total=total)]
        if payload.get("blocked"):
            n = int(payload["blocked"])
            lines.append(t.count(t.summary_blocked, n, names=t.names(payload.get("blocked_names") or [], n)))
        if payload.get("failed"):
            n = int(payload["failed"])
            lines.append(t.count(t.summary_failed, n, names=t.names(payload.get("failed_names") or [], n)))
        return "\n".join(lines)
    if kind == "low_rating":
        value = payload.get("rating")
        head = t.notice_low_rating.format(
            stars=stars(value) if isinstance(value, int) and 1 <= value <= 5 else "?",
            order_id=escape(str(payload.get("order_id") or "")),
            customer=escape(str(payload.get("customer") or "?")),
            horeca=escape(str(payload.get("horeca") or "")),
        )
        note = payload.get("comment")
        return f"{head}\n{t.notice_rating_comment.format(comment=escape(str(note)))}" if note else head
    if kind == "removed":
        return t.removed.format(horeca=escape(str(payload.get("horeca") or "")))
    return escape(str(payload.get("text") or kind or "…"))


def render_notice(job: Job) -> Rendered:
    """An outbox row of the staff bot: the text in the staff member's language, a Reply button under customer messages."""
    payload = _payload(job)
    t = staff_texts.for_language(payload.get("lang"))
    markup = None
    if payload.get("type") == "customer_message" and isinstance(payload.get("dialog_message_id"), int):
        markup = kb.reply_button(t, payload["dialog_message_id"])
    return Rendered(notice_text(t, payload), markup, body=media_body(payload.get("media")))


def render_notice_edit(job: Job) -> Rendered:
    """A customer edited a message the staff member got: the notice drawn again with the new text."""
    payload = _payload(job)
    t = staff_texts.for_language(payload.get("lang"))
    markup = None
    if isinstance(payload.get("dialog_message_id"), int):
        markup = kb.reply_button(t, payload["dialog_message_id"])
    text = notice_text(t, payload)
    return Rendered(text, markup, body=edit_body(payload, text, f"{t.edited}\n{text}"))
