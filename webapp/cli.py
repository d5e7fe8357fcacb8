"""Admin commands: `flask --app wsgi outbox list|retry`, `flask --app wsgi webhooks list|retry` and
`flask --app wsgi purge [--dry-run]`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from models import iso
from services import outbox_admin, retention
from services.errors import ServiceError

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

outbox = AppGroup("outbox", help="Status updates and messages for the bot to deliver: list them, queue failed ones again.")
webhooks = AppGroup("webhooks", help="Events for the backend's webhook: list them, queue failed ones again.")


def register(app: Flask) -> None:
    app.cli.add_command(outbox)
    app.cli.add_command(webhooks)
    app.cli.add_command(purge)


def _cell(value: object, width: int | None) -> str:
    text = "-" if value is None or value == "" else " ".join(str(value).split())
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], wide: bool) -> None:
    """A plain text table; long last_error cells are cut unless `wide`."""
    cut = headers.index("last_error") if not wide and "last_error" in headers else -1
    cells = [[_cell(v, 60 if i == cut else None) for i, v in enumerate(row)] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    for line in [list(headers), *cells]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def state_options(choices: Sequence[str]) -> Callable[[F], F]:
    """--failed, --pending, ... as one `state` argument (default: all)."""

    def decorate(f: F) -> F:
        f = click.option("--all", "state", flag_value="all", default=True, help="Every state (the default).")(f)
        for choice in reversed(choices):
            f = click.option(f"--{choice}", "state", flag_value=choice, help=f"Only {choice} ones.")(f)
        return f

    return decorate


def list_options(f: F) -> F:
    f = click.option("--wide", is_flag=True, help="Show last_error in full.")(f)
    return click.option(
        "--limit",
        type=click.IntRange(1, outbox_admin.MAX_LIMIT),
        default=50,
        show_default=True,
        help="At most this many rows, newest first.",
    )(f)


def retry_options(f: F) -> F:
    f = click.option("--all-failed", is_flag=True, help="Every failed one.")(f)
    return click.argument("ids", nargs=-1, type=click.IntRange(min=1))(f)


def report_retry(result: outbox_admin.RetryResult) -> None:
    if result.retried:
        click.echo(
            f"queued again: {len(result.retried)} ({', '.join(map(str, result.retried[:50]))}"
            f"{', …' if len(result.retried) > 50 else ''})"
        )
    else:
        click.echo("nothing to queue again")
    for skipped in result.skipped:
        click.echo(
            f"skipped {skipped.id}: {'no such row' if skipped.reason == 'not_found' else 'it is ' + skipped.reason}", err=True
        )
    if result.skipped:
        click.get_current_context().exit(1)


def _run(action: Callable[..., T], *args: Any) -> T:
    try:
        return action(*args)
    except ServiceError as exc:
        raise click.UsageError(exc.message) from None


@outbox.command("list")
@state_options(("failed", "blocked", "pending", "sent"))
@list_options
def outbox_list(state: str, limit: int, wide: bool) -> None:
    """Messages for the bot to deliver, newest first, with the reason they failed."""
    items = _run(outbox_admin.list_outbox, state, limit)
    headers = ("id", "kind", "bot", "chat", "order", "status", "state", "attempts", "last_error", "created_at")
    rows = [
        (
            m.id,
            m.kind,
            m.bot,
            m.chat_id,
            f"{m.horeca_id}/{m.order_id}" if m.order_id else None,
            m.status,
            m.state,
            m.attempts,
            m.last_error,
            iso(m.created_at),
        )
        for m in items
    ]
    print_table(headers, rows, wide)
    click.echo(f"({len(rows)} shown, state: {state})", err=True)


@outbox.command("retry")
@retry_options
def outbox_retry(ids: tuple[int, ...], all_failed: bool) -> None:
    """Queue failed (or blocked) messages again: IDS..., or --all-failed."""
    if not ids and not all_failed:
        raise click.UsageError("give the ids to queue again, or --all-failed")
    report_retry(_run(outbox_admin.retry_outbox, ids, all_failed))


@webhooks.command("list")
@state_options(("failed", "pending", "sent"))
@list_options
def webhooks_list(state: str, limit: int, wide: bool) -> None:
    """Events for the backend's webhook, newest first, with the reason they failed."""
    items = _run(outbox_admin.list_webhooks, state, limit)
    headers = ("id", "event_id", "type", "state", "attempts", "last_error", "created_at")
    rows = [(e.id, e.event_id, e.type, e.state, e.attempts, e.last_error, iso(e.created_at)) for e in items]
    print_table(headers, rows, wide)
    click.echo(f"({len(rows)} shown, state: {state})", err=True)


@webhooks.command("retry")
@retry_options
def webhooks_retry(ids: tuple[int, ...], all_failed: bool) -> None:
    """Queue failed webhook events again: IDS..., or --all-failed."""
    if not ids and not all_failed:
        raise click.UsageError("give the ids to queue again, or --all-failed")
    report_retry(_run(outbox_admin.retry_webhooks, ids, all_failed))


@click.command("purge")
@with_appcontext
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted, per table.")
@click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="The retention window in days (default: RETENTION_DAYS).",
)
@click.option(
    "--batch-size", type=click.IntRange(1, 100_000), default=None, help="Rows per transaction (default: RETENTION_BATCH_SIZE)."
)
def purge(dry_run: bool, days: float | None, batch_size: int | None) -> None:
    """Delete finished history older than the retention window, as the bot process does hourly."""
    config = current_app.config
    window = float(config["RETENTION_DAYS"]) if days is None else days
    if not retention.enabled(window):
        raise click.UsageError("RETENTION_DAYS is 0 (keep everything): give --days to purge anyway")
    result = retention.purge(window, batch_size or int(config["RETENTION_BATCH_SIZE"]), dry_run=dry_run)
    print_table(("table", "would delete" if dry_run else "deleted"), [(t, n) for t, n in result.counts.items()], wide=True)
    verb = "would delete" if dry_run else f"deleted in {result.batches} batches"
    click.echo(f"({verb}: {result.total} rows older than {iso(result.cutoff)}, {window:g} days)", err=True)
