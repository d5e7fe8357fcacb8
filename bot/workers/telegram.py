"""The delivery job: send what the web app queued in the outbox, within Telegram's limits, and record each outcome.

One scheduler tick claims due rows in batches, sends them from a small thread pool (each thread keeps
its own HTTP session), and keeps going while rows are due. Every row is marked `sending` and committed
before Telegram is called and recorded right after it answers, so a kill -9 loses nothing and can repeat
only the sends that were in flight at that moment.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from flask import Flask
from telebot import TeleBot
from telebot.types import LinkPreviewOptions

from bot import cancel_button, renderers
from bot.ratelimit import Limiter
from bot.rendered import NoRenderer
from bot.settings import BotSettings
from bot.shared_budget import limiters
from bot.staff.topics import send as staff_group_send
from bot.telegram import BLOCKED, FINAL, NOT_MODIFIED, RATE_LIMITED, Failure, classify
from bot.texts import PARSE_MODE
from bot.workers.common import RetryPolicy, scheduled
from bot.workers.media_send import MediaSender
from models import BotName, utcnow
from services import delivery, heartbeat, status_card
from services.delivery import Job, Sent
from services.status_card import StatusCard

log = logging.getLogger(__name__)

MAX_INLINE_WAIT = 1.0  # a worker waits this long for a send slot; longer, the row goes back with a due time
SWEEP_EVERY = 5.0  # seconds between looks for keyboards that should be gone (edits that failed, crashes)
BEAT_EVERY = 1.0  # seconds between heartbeat writes
LATE_SLOT = 0.02  # seconds a worker may be late for its send slot; later, it takes a new one (issue 10)
MAX_LATE_SLOTS = 5  # late that many times in a row: the row goes back to the outbox


class Delivery:
    """The outbox sender of one bot process, for every bot it runs (picked by `row.bot`)."""

    def __init__(
        self,
        app: Flask,
        bots: Mapping[str, TeleBot],
        settings: BotSettings,
        stop: threading.Event,
        usernames: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.bots = dict(bots)
        self.settings = settings
        self.stop = stop
        self.usernames = dict(usernames or {})
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.limiters = limiters(app, list(self.bots), settings)  # shared by every bot process on PostgreSQL
        self.pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="delivery")
        self.recorder = Recorder(app)
        # Half of base·2^(n-1) (capped) plus up to as much again; the last attempt happens at the deadline.
        self.retry = RetryPolicy(
            base=settings.backoff_base,
            cap=settings.backoff_max,
            deadline=settings.retry_deadline,
            jitter_low=0.5,
            jitter_high=1.0,
        )
        self._tick_job = scheduled(app, "delivery tick", self._tick)
        self._next_sweep = 0.0
        self._strip_after: dict[int, float] = {}  # row id → no new attempt to remove its keyboard before this
        self._last_beat = 0.0
        self._link_preview = LinkPreviewOptions(is_disabled=True)
        self.media = MediaSender(app, self.bots, settings.request_timeout)

    # --- the scheduler job -------------------------------------------------------------------------

    def tick(self) -> int:
        """Deliver everything that is due (the scheduler job); returns how many rows were attempted."""
        return self._tick_job()

    def _tick(self) -> int:
        self._beat()
        target = max(self.settings.batch_size, self.settings.workers * 2)
        inflight: set[Future[Any]] = set()
        attempted = 0
        while True:
            if time.monotonic() >= self._next_sweep and not self.stop.is_set():
                self._sweep()
            free = target - len(inflight)
            # Claim in batches, topping up once half the batch is done; claims are cheap index range scans.
            if not self.stop.is_set() and free >= max(1, target // 2) and not self._paused():
                with self.app.app_context():
                    jobs = delivery.claim_due(
                        self.worker, self.bots, free, self.settings.claim_timeout, self.settings.coalesce_after
                    )
                for job in jobs:
                    inflight.add(self.pool.submit(self._deliver, job))
                attempted += len(jobs)
            if not inflight:
                break  # nothing due and nothing in flight: the next tick looks again
            done, inflight = wait(inflight, timeout=1.0, return_when=FIRST_COMPLETED)
            sent = [result for future in done if isinstance(result := future.result(), Sent)]
            for ref in self._superseded(sent):
                inflight.add(self.pool.submit(self._strip_safely, ref))
            self._beat()
        return attempted

    def _superseded(self, sent: list[Sent]) -> list[StatusCard]:
        """Older keyboards of the orders that just got a new message: one query for all of them."""
        orders = [s.supersedes_in_order for s in sent if s.supersedes_in_order is not None]
        if not orders:
            return []
        try:
            with self.app.app_context():
                return status_card.superseded(orders)
        except Exception as exc:  # noqa: BLE001 - the sweep finds them later
            log.warning("looking up superseded keyboards failed: %s", type(exc).__name__)
            return []

    def _paused(self) -> bool:
        return all(limiter.paused_for() > MAX_INLINE_WAIT for limiter in self.limiters.values())

    def _beat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat < BEAT_EVERY:
            return
        self._last_beat = now
        try:
            with self.app.app_context():
                for name in self.bots:
                    heartbeat.beat(name, self.usernames.get(name), delivery_tick=True)
        except Exception as exc:  # noqa: BLE001 - a missed heartbeat must not stop delivery
            log.warning("heartbeat failed: %s", type(exc).__name__)

    def close(self) -> None:
        """Wait for the sends in flight and their records, then stop the threads."""
        self.pool.shutdown(wait=True)
        self.recorder.close()

    # --- one message -------------------------------------------------------------------------------

    def _deliver(self, job: Job) -> Sent | None:
        try:
            return self._deliver_one(job)
        except Exception:
            # Typically the database stayed away while recording, beyond `delivery.record_sent`'s retries on a
            # fresh connection: the row stays claimed and is sent again after the claim timeout (docs/deploy.md).
            log.exception("delivering outbox row %s failed", job.id)
            return None

    def _deliver_one(self, job: Job) -> Sent | None:
        """Send one claimed row and record the outcome; a success is also returned (the tick retires older keyboards)."""
        bot = self.bots[job.bot]
        limiter = self.limiters[job.bot]
        try:
            rendered = renderers.render(job)
        except NoRenderer as exc:
            self._retry(job, str(exc), self._backoff(job.attempts))
            return None
        except Exception as exc:  # noqa: BLE001 - a row we cannot render must not stop the others
            log.exception("outbox row %s (%s/%s) cannot be rendered", job.id, job.bot, job.kind)
            self._fail(job, f"cannot render: {type(exc).__name__}")
            return None
        if rendered.body is not None:
            self.media.wait_ready(job.bot, rendered)  # another thread may be uploading its file right now
        if not self._take_slot(limiter, job):
            return None
        try:
            # How a row goes out is the renderer's word: into a topic of the staff group (opened when needed),
            # media or an edit, or a plain text.
            if rendered.topic:
                message_id = staff_group_send(
                    self.app,
                    bot,
                    job,
                    rendered,
                    self.settings.request_timeout,
                    lambda chat, thread: self.media.send(job.bot, bot, chat, rendered, thread),
                )
            elif rendered.body is not None:  # media or an edit (bot/workers/media_send.py)
                message_id = self.media.send(job.bot, bot, job.chat_id, rendered)
            else:
                message_id = bot.send_message(
                    job.chat_id,
                    rendered.text,
                    parse_mode=PARSE_MODE,
                    reply_markup=rendered.markup,
                    link_preview_options=self._link_preview,
                    timeout=self.settings.request_timeout,  # type: ignore[arg-type]  # telebot's int; requests takes a float
                ).message_id
        except Exception as exc:  # noqa: BLE001 - every failure is sorted by classify()
            self._failed(job, limiter, classify(exc))
            return None
        sent = Sent(
            job.id,
            message_id,
            rendered.has_button,
            job.order_pk if rendered.supersedes else None,
            proves_chat=job.chat_id if job.unproven else None,
        )
        # Wait until it is committed: a worker never has more than one sent-but-unrecorded message, so a
        # kill -9 can repeat at most one message per worker.
        self.recorder.record(sent)
        log.debug("outbox row %s sent as message %s", job.id, message_id)
        return sent

    def _take_slot(self, limiter: Limiter, job: Job) -> bool:
        """Wait for a send slot; False (row given back) when stopping or the wait would be long."""
        late = 0
        while True:
            if self.stop.is_set():
                self._release(job, 0.0)
                return False
            pause = limiter.reserve(job.chat_id, MAX_INLINE_WAIT)
            if pause is None:
                self._release(job, limiter.earliest(job.chat_id))
                return False
            slot = time.monotonic() + pause
            if pause > 0 and self.stop.wait(pause):
                self._release(job, 0.0)
                return False
            if limiter.paused_for() > 0:  # a 429 arrived while we waited
                continue
            if time.monotonic() - slot <= LATE_SLOT:
                return True
            # This thread woke too late (a busy machine): sent now, the message would crowd the next slots' second
            # and provoke a 429. The slot is left unused; a new one is taken.
            late += 1
            if late >= MAX_LATE_SLOTS:
                self._release(job, 0.0)
                return False

    def _release(self, job: Job, delay: float) -> None:
        with self.app.app_context():
            delivery.release([job.id], self.worker, delay)

    def _failed(self, job: Job, limiter: Limiter, failure: Failure) -> None:
        if failure.kind == RATE_LIMITED:
            limiter.pause(failure.retry_after)
            log.warning("Telegram asks %s to wait %.0f s (429); row %s waits", job.bot, failure.retry_after, job.id)
            self._retry(job, failure.reason, failure.retry_after)
        elif failure.kind == BLOCKED:
            log.info("chat %s has blocked bot %s: row %s and the chat's pending rows are blocked", job.chat_id, job.bot, job.id)
            with self.app.app_context():
                delivery.record_blocked(job.id, self.worker, job.bot, job.chat_id, failure.deactivated)
        elif failure.kind == FINAL and failure.not_started and job.bot == BotName.CUSTOMER:
            log.info("chat %s never started bot %s (%s): row %s waits for /start", job.chat_id, job.bot, failure.reason, job.id)
            with self.app.app_context():
                delivery.record_chat_not_found(job.id, self.worker, job.kind, job.chat_id, failure.reason)
        elif failure.kind in (FINAL, NOT_MODIFIED):
            self._fail(job, failure.reason)
        else:
            self._retry(job, failure.reason, self._backoff(job.attempts))

    def _retry(self, job: Job, reason: str, delay: float) -> None:
        """Try again after `delay`, or give up once the retry deadline has passed."""
        now = utcnow()
        wait = self.retry.delay(job.first_attempt_at, now, delay)
        if wait is None:
            elapsed = (now - job.first_attempt_at).total_seconds()
            self._fail(job, f"gave up after {job.attempts} attempts in {elapsed:.0f} s: {reason}")
            return
        delay = wait
        log.warning("outbox row %s attempt %d failed (%s); retrying in %.1f s", job.id, job.attempts, reason, delay)
        with self.app.app_context():
            delivery.record_retry(job.id, self.worker, reason, delay)

    def _fail(self, job: Job, reason: str) -> None:
        log.error("outbox row %s to chat %s failed for good: %s", job.id, job.chat_id, reason)
        with self.app.app_context():
            stale = delivery.record_failed(job.id, self.worker, reason)
        for ref in stale:
            self._strip(ref)

    def _backoff(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failure (`self.retry`'s backoff)."""
        return self.retry.backoff(attempts)

    # --- keyboards that must go ---------------------------------------------------------------------

    def _sweep(self) -> None:
        """Remove keyboards that outlived their order or a newer message (after a failed edit or a crash)."""
        self._next_sweep = time.monotonic() + SWEEP_EVERY
        try:
            with self.app.app_context():
                refs = status_card.stale(self.bots)
        except Exception as exc:  # noqa: BLE001 - the next sweep tries again
            log.warning("looking for stale buttons failed: %s", type(exc).__name__)
            return
        now = time.monotonic()
        self._strip_after = {k: v for k, v in self._strip_after.items() if v > now}
        due = [r for r in refs if self._strip_after.get(r.row_id, 0.0) <= now]
        for future in [self.pool.submit(self._strip_safely, ref) for ref in due]:
            future.result()

    def _strip_safely(self, ref: StatusCard) -> None:
        try:
            self._strip(ref)
        except Exception:
            log.exception("removing the keyboard of outbox row %s failed", ref.row_id)

    def _strip(self, ref: StatusCard) -> None:
        """Take the card's keyboard (and the cancel hint) off within the bot's rate limit; retry later what may pass."""
        bot, limiter = self.bots.get(ref.bot), self.limiters.get(ref.bot)
        if bot is None or limiter is None or self.stop.is_set():
            return  # the sweep after the next start finds it
        pause = limiter.reserve(None, MAX_INLINE_WAIT)
        if pause is None:
            self._strip_after[ref.row_id] = time.monotonic() + limiter.earliest(None)
            return
        if pause > 0 and self.stop.wait(pause):
            return
        with self.app.app_context():
            failure = cancel_button.strip(bot, ref, timeout=self.settings.request_timeout)
        if failure is None:
            return
        if failure.kind == BLOCKED:
            with self.app.app_context():
                delivery.chat_blocked(ref.bot, ref.chat_id, failure.deactivated)
        elif failure.kind != FINAL:  # FINAL: the message is gone, nothing left to remove
            if failure.kind == RATE_LIMITED:
                limiter.pause(failure.retry_after)
            wait_for = max(failure.retry_after, self._backoff(2))
            self._strip_after[ref.row_id] = time.monotonic() + wait_for
            log.warning("removing the keyboard of row %s failed (%s); trying again later", ref.row_id, failure.reason)
            return
        with self.app.app_context():
            cancel_button.forget(ref)


class RecordFailed(RuntimeError):
    """The database did not take a record of sent messages."""


class Recorder:
    """Records sent messages for every worker: whatever queued up meanwhile goes in one transaction (group commit)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._queue: queue.SimpleQueue[tuple[Sent, threading.Event, list[BaseException | None]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="delivery-recorder", daemon=True)
        self._thread.start()

    def record(self, sent: Sent, timeout: float = 60.0) -> None:
        """Queue `sent` and wait until it is committed; RecordFailed if it could not be."""
        done = threading.Event()
        outcome: list[BaseException | None] = [None]
        self._queue.put((sent, done, outcome))
        if not done.wait(timeout):
            raise RecordFailed(f"outbox row {sent.row_id}: no record after {timeout:.0f} s")
        if outcome[0] is not None:
            raise RecordFailed(f"outbox row {sent.row_id}: {type(outcome[0]).__name__}") from outcome[0]

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            items = [item for item in batch if item is not None]
            error: BaseException | None = None
            try:
                with self.app.app_context():
                    delivery.record_sent([sent for sent, _, _ in items])
            except Exception as exc:  # noqa: BLE001 - handed to each waiting worker
                error = exc
            for _, done, outcome in items:
                outcome[0] = error
                done.set()
            if len(items) < len(batch):
                return  # close() was called

    def close(self) -> None:
        """Stop after recording what is queued."""
        self._queue.put(None)
        self._thread.join(10)
