"""The texts of the staff bot's screens, drawn from service outcomes (HTML parse mode: every dynamic value escaped).

Words come from the `StaffTexts` catalogs; this module only puts them together.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from bot.staff.texts import StaffTexts
from models import PromptEnd, utcnow
from services.cabinet import MAX_TEXT, DialogPage
from services.canned import MAX_REPLIES, Reply
from services.conversation import OpenedDialog
from services.errors import Invalid
from services.media import MAX_CAPTION
from services.outreach import Sent, Target

MAX_SHOWN_MESSAGE = 300  # characters of one message in an opened dialog


def dialogs_text(t: StaffTexts, page: DialogPage) -> str:
    """The text above the cabinet's buttons."""
    lines = [t.dialogs_title.format(horeca=escape(page.horeca_name))]
    if not page.items:
        lines.append(t.dialogs_empty)
        if page.selected:
            lines.append(t.selected_count.format(n=page.selected))
        return "\n".join(lines)
    last = page.first + len(page.items) - 1
    lines.append(t.dialogs_range.format(first=page.first, last=last, total=page.total))
    lines.append(t.dialogs_hint)
    for item in page.items:
        if item.colleague:
            lines.append(t.colleague_line.format(colleague=escape(item.colleague), customer=escape(item.name)))
    lines.append(t.selected_count.format(n=page.selected))
    return "\n".join(lines)


def compose_prompt(t: StaffTexts, target: Target, with_replies: bool) -> str:
    """ "Write your message": to whom, from which horeca, who of the colleagues answered them just now."""
    horeca = escape(target.horeca_name)
    if target.count == 1:
        customer = escape(target.names[0]) if target.names else "?"
        if target.order_id:
            text = t.compose_one_order.format(customer=customer, order_id=escape(target.order_id), horeca=horeca)
        else:
            text = t.compose_one.format(customer=customer, horeca=horeca)
    else:
        text = t.compose_many.format(n=target.count, names=t.names(target.names, target.count), horeca=horeca)
    for customer, colleague in target.colleagues.items():
        text += "\n" + t.compose_colleague.format(colleague=escape(colleague), customer=escape(customer))
    if with_replies:
        text += "\n\n" + t.compose_canned_hint
    return text


def sent_text(t: StaffTexts, sent: Sent) -> str:
    """What the staff member hears right after sending; the delivery summary follows from the delivery job."""
    if sent.summarized:
        return t.nothing_sent_blocked.format(names=t.names(sent.blocked_names, sent.blocked))
    text = t.count(t.sending, sent.queued)
    if sent.blocked:
        text += "\n" + t.count(t.sending_blocked, sent.blocked)
    return text


def prompt_ended(t: StaffTexts, end: PromptEnd) -> tuple[str, str | None]:
    """A button of a prompt that ended was pressed: the toast, and the line the prompt gets (None: "Cancelled")."""
    if end == PromptEnd.SENT:
        return t.prompt_sent_toast, t.prompt_sent_line
    if end == PromptEnd.SAVED:
        return t.prompt_saved_toast, t.prompt_saved_line
    if end == PromptEnd.CANCELLED:
        return t.prompt_cancelled_toast, None
    return t.prompt_closed_toast, t.prompt_closed_line


def explain(t: StaffTexts, error: Invalid) -> str:
    """Why a text or a button was refused."""
    if error.code == "empty_text":
        return t.empty_text
    if error.code == "text_too_long":
        return t.too_long.format(limit=MAX_TEXT)
    if error.code == "caption_too_long":
        return t.too_long.format(limit=MAX_CAPTION)
    if error.code == "file_too_big":
        return t.media_too_big
    if error.code == "too_many_replies":
        return t.too_many_replies.format(n=MAX_REPLIES)
    if error.code == "nothing_selected":
        return t.alert_nothing_selected
    return t.idle_hint


def replies_text(t: StaffTexts, horeca_name: str, items: list[Reply]) -> str:
    """The list of canned replies."""
    lines = [t.replies_title.format(horeca=escape(horeca_name))]
    if not items:
        lines.append(t.replies_empty)
    else:
        lines.extend(f"{n}. {escape(r.text)}" for n, r in enumerate(items, start=1))
        lines.append("")
        lines.append(t.replies_hint)
    return "\n".join(lines)


def _ago(t: StaffTexts, when: datetime, now: datetime) -> str:
    return t.ago(max(0, int((now - when).total_seconds())))


# How an opened dialog marks a media message (before its caption); an album: the mark of its first item.
MEDIA_MARKS = {
    "photo": "🖼",
    "album": "🖼",
    "document": "📄",
    "voice": "🎤",
    "audio": "🎵",
    "video": "🎬",
    "video_note": "⏺",
    "sticker": "💟",
    "animation": "🎞",
    "location": "📍",
    "venue": "📍",
    "contact": "👤",
}


def dialog_text(t: StaffTexts, opened: OpenedDialog, now: datetime | None = None) -> str:
    """An opened dialog: the customer, their order, a colleague's recent answer, the last messages."""
    now = now or utcnow()
    found = opened.conversation
    customer = escape(found.customer_name)
    lines = [t.dialog_title.format(customer=customer)]
    if opened.order:
        lines.append(t.dialog_order.format(order_id=escape(opened.order.order_id), status=t.status(opened.order.status)))
    if opened.colleague:
        lines.append(t.colleague_line.format(colleague=escape(opened.colleague), customer=customer))
    lines.append("")
    if not found.messages:
        lines.append(t.dialog_empty)
    for m in found.messages:
        when = _ago(t, m.created_at, now)
        shown = m.text if len(m.text) <= MAX_SHOWN_MESSAGE else m.text[: MAX_SHOWN_MESSAGE - 1] + "…"
        if m.media is not None:  # a media message: its kind as a mark, then its caption
            mark = MEDIA_MARKS.get(m.media.kind, "📎")
            shown = f"{mark}×{len(m.media.items)} {shown}" if m.media.album else f"{mark} {shown}"
        if m.direction == "in":
            lines.append(t.dialog_in.format(time=when, text=escape(shown)))
        else:
            name = escape(m.staff.name) if m.staff else "?"
            lines.append(t.dialog_out.format(time=when, staff=name, text=escape(shown)))
    return "\n".join(lines)
