"""The one table of outbox renderers: which function draws each (bot, kind) of outbox row."""

from __future__ import annotations

from bot import rendering
from bot.rendered import NoRenderer, Rendered, Renderer
from bot.staff import notices, topics
from models import BotName, OutboxKind
from services.delivery import Job

RENDERERS: dict[tuple[str, str], Renderer] = {
    (BotName.CUSTOMER, OutboxKind.STATUS): rendering.render_status,
    (BotName.CUSTOMER, OutboxKind.MESSAGE): rendering.render_customer_message,
    (BotName.CUSTOMER, OutboxKind.ORDER_NOTE): rendering.render_order_note,
    (BotName.HORECA, OutboxKind.STAFF_NOTICE): notices.render_notice,
    (BotName.HORECA, OutboxKind.GROUP_MESSAGE): topics.render_group_message,
    (BotName.CUSTOMER, OutboxKind.EDIT): rendering.render_customer_edit,
    (BotName.HORECA, OutboxKind.EDIT): lambda job: (
        topics.render_group_edit(job) if topics.into_group(job) else notices.render_notice_edit(job)
    ),
}


def render(job: Job) -> Rendered:
    """The message for a claimed row; NoRenderer when its (bot, kind) is unknown to this version."""
    renderer = RENDERERS.get((job.bot, job.kind))
    if renderer is None:
        raise NoRenderer(f"no renderer for bot {job.bot!r} kind {job.kind!r}")
    return renderer(job)
