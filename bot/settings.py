"""The bot process's tuning knobs: the shared `Config` ones, plus a few of its own read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from config import ConfigError

MAX_CLAIM_TIMEOUT = 60.0  # the promise: a dead process's claim is taken over within a minute


def _number(config: Mapping[str, Any], name: str, default: float) -> float:
    """`name` from the app config if `Config` has it, else from the environment, else the default."""
    value = config.get(name)
    if value is None or value == "":
        value = os.environ.get(name, "").strip() or default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None


@dataclass(frozen=True)
class BotSettings:
    """Delivery and polling settings (see docs/bot.md for each variable)."""

    delivery_interval: float = 1.0
    global_rate: float = 30.0  # messages per second per bot; 0 = no limit
    per_chat_rate: float = 1.0  # messages per second per chat; 0 = no limit
    retry_deadline: float = 300.0
    claim_timeout: float = 30.0
    workers: int = 8
    batch_size: int = 32
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    request_timeout: float = 7.0
    poll_timeout: int = 20

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BotSettings:
        """Read from Flask's `app.config` (and the environment for the bot-only variables)."""
        settings = cls(
            delivery_interval=_number(config, "DELIVERY_INTERVAL_SECONDS", 1.0),
            global_rate=_number(config, "TELEGRAM_GLOBAL_RATE", 30.0),
            per_chat_rate=_number(config, "TELEGRAM_PER_CHAT_RATE", 1.0),
            retry_deadline=_number(config, "DELIVERY_RETRY_DEADLINE_SECONDS", 300.0),
            claim_timeout=min(_number(config, "CLAIM_TIMEOUT_SECONDS", 30.0), MAX_CLAIM_TIMEOUT),
            workers=int(_number(config, "DELIVERY_WORKERS", 8)),
            batch_size=int(_number(config, "DELIVERY_BATCH_SIZE", 32)),
            backoff_base=_number(config, "DELIVERY_BACKOFF_BASE_SECONDS", 1.0),
            backoff_max=_number(config, "DELIVERY_BACKOFF_MAX_SECONDS", 60.0),
            request_timeout=_number(config, "TELEGRAM_REQUEST_TIMEOUT_SECONDS", 7.0),
            poll_timeout=int(_number(config, "POLL_TIMEOUT_SECONDS", 20)),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse values that cannot work, in one line naming the variable."""
        problems = [
            ("DELIVERY_INTERVAL_SECONDS", self.delivery_interval > 0),
            ("TELEGRAM_GLOBAL_RATE", self.global_rate >= 0),
            ("TELEGRAM_PER_CHAT_RATE", self.per_chat_rate >= 0),
            ("DELIVERY_RETRY_DEADLINE_SECONDS", self.retry_deadline > 0),
            ("CLAIM_TIMEOUT_SECONDS", self.claim_timeout > self.request_timeout),
            ("DELIVERY_WORKERS", 1 <= self.workers <= 64),
            ("DELIVERY_BATCH_SIZE", 1 <= self.batch_size <= 1000),
            ("DELIVERY_BACKOFF_BASE_SECONDS", self.backoff_base > 0),
            ("DELIVERY_BACKOFF_MAX_SECONDS", self.backoff_max >= self.backoff_base),
            ("TELEGRAM_REQUEST_TIMEOUT_SECONDS", 0 < self.request_timeout <= 8),
            ("POLL_TIMEOUT_SECONDS", 0 <= self.poll_timeout <= 50),
        ]
        for name, ok in problems:
            if not ok:
                raise ConfigError(f"{name} has an unusable value (see docs/bot.md)")
