"""Long polling for one bot, stoppable between two updates without losing or repeating any.

Handlers run in this thread, one update at a time. An update counts as done (its offset is confirmed to
Telegram) only after its handler returned, so updates fetched but not handled when the process dies
are fetched again by the next process. On a clean stop the offset of what was handled is confirmed.

With several bot processes on PostgreSQL only the one `bot/election.py` elects polls; a poller that loses
the election drops what it fetched unhandled (the new poller fetches it again) and stops asking.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from telebot import TeleBot
from telebot.apihelper import ApiTelegramException
from telebot.types import Update

from bot.telegram import ALLOWED_UPDATES, describe

log = logging.getLogger(__name__)

BEAT_EVERY = 1.0
IDLE_WAIT = 0.5  # seconds between looks at the election by a process that does not poll


class Poller:
    """Runs `getUpdates` in a loop in a daemon thread and feeds each update to the bot's handlers."""

    def __init__(
        self,
        name: str,
        bot: TeleBot,
        stop: threading.Event,
        poll_timeout: int,
        on_ok: Callable[[], None] | None = None,
        on_fatal: Callable[[str], None] | None = None,
        leading: Callable[[], bool] | None = None,
    ) -> None:
        self.name = name
        self.bot = bot
        self.stop = stop
        self.poll_timeout = poll_timeout
        self.on_ok = on_ok
        self.on_fatal = on_fatal
        self.leading = leading or (lambda: True)  # whether this process is the one that polls (bot/election.py)
        self.offset = 0  # the next update id to ask for: everything below it has been handled
        self._asked = 0  # the offset sent with the last getUpdates (what Telegram knows as confirmed)
        self._handling = threading.Lock()
        self._closed = False
        self._last_beat = 0.0
        self.thread = threading.Thread(target=self._run, name=f"poll-{name}", daemon=True)

    def start(self) -> None:
        """Start polling in the background."""
        self.thread.start()

    def _run(self) -> None:
        error_wait = 0.5
        while not self.stop.is_set():
            if not self.leading():
                self.stop.wait(IDLE_WAIT)  # another process polls: ask again later whether we should
                continue
            try:
                self._asked = self.offset
                updates = self.bot.get_updates(
                    offset=self.offset or None,
                    timeout=self.poll_timeout + 10,
                    long_polling_timeout=self.poll_timeout,
                    allowed_updates=ALLOWED_UPDATES,
                )
            except ApiTelegramException as exc:
                if self.stop.is_set():
                    return  # e.g. the 409 our own closing getUpdates causes
                if exc.error_code == 401:
                    log.critical("bot %s: Telegram rejects the token (401 Unauthorized); polling stops", self.name)
                    if self.on_fatal:
                        self.on_fatal(self.name)
                    return
                if exc.error_code == 409:
                    log.warning(
                        "bot %s: getUpdates conflict (another instance polling, or a webhook set): %s", self.name, describe(exc)
                    )
                else:
                    log.warning("bot %s: getUpdates failed: %s", self.name, describe(exc))
                self.stop.wait(error_wait)
                error_wait = min(error_wait * 2, 30.0)
                continue
            except Exception as exc:  # noqa: BLE001 - network trouble: wait and poll again
                if self.stop.is_set():
                    return
                log.warning("bot %s: getUpdates failed: %s", self.name, describe(exc))
                self.stop.wait(error_wait)
                error_wait = min(error_wait * 2, 30.0)
                continue
            error_wait = 0.5
            self._beat()
            with self._handling:
                if self._closed or self.stop.is_set():
                    return  # not handled, not confirmed: the next process gets these updates again
                for update in updates:
                    if self.stop.is_set() or not self.leading():
                        break  # not handled, not confirmed: whoever polls next fetches the rest again
                    self._handle(update)
                    self.offset = update.update_id + 1

    def _handle(self, update: Update) -> None:
        try:
            self.bot.process_new_updates([update])
        except Exception:
            # Handlers are guarded; this is telebot itself failing on an odd update. Skip it.
            log.exception("bot %s: update %s could not be processed", self.name, getattr(update, "update_id", "?"))

    def _beat(self) -> None:
        now = time.monotonic()
        if self.on_ok is None or now - self._last_beat < BEAT_EVERY:
            return
        self._last_beat = now
        try:
            self.on_ok()
        except Exception as exc:  # noqa: BLE001 - a missed heartbeat must not stop polling
            log.warning("bot %s: heartbeat failed: %s", self.name, type(exc).__name__)

    def close(self, timeout: float) -> None:
        """Stop after the update being handled, and confirm what was handled (call after setting `stop`)."""
        if not self._handling.acquire(timeout=timeout):
            log.warning("bot %s: a handler is still running after %.0f s; leaving it", self.name, timeout)
            return
        try:
            self._closed = True
            if self.offset > self._asked and self.leading():  # not leading: asking would cut off the new poller
                # Handled updates Telegram has not been told about: confirm them, or the next start repeats them.
                try:
                    self.bot.get_updates(offset=self.offset, limit=1, timeout=3, long_polling_timeout=1)
                except Exception as exc:  # noqa: BLE001 - worst case: those updates are handled again
                    log.warning("bot %s: could not confirm handled updates: %s", self.name, describe(exc))
        finally:
            self._handling.release()
