"""The bot process's tuning knobs, taken from the one `config.Config` (which alone reads the environment)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from config import Config, ConfigError
from services.claims import MAX_CLAIM_TIMEOUT


def _number(config: Mapping[str, Any], name: str) -> float:
    """`name` of the config as a number; ConfigError naming it when it is not one."""
    value = config[name]
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
    coalesce_after: float = 10.0  # seconds a status may be late before its order's newest due status replaces it
    shared_budget: bool = True  # PostgreSQL: one send budget per bot for every bot process (issue 10)

    @classmethod
    def from_config(cls, config: Config | Mapping[str, Any]) -> BotSettings:
        """From a `Config` or Flask's `app.config` (made from one); refuses unusable values."""
        values = config if isinstance(config, Mapping) else config.as_flask()
        settings = cls(
            delivery_interval=_number(values, "DELIVERY_INTERVAL_SECONDS"),
            global_rate=_number(values, "TELEGRAM_GLOBAL_RATE"),
            per_chat_rate=_number(values, "TELEGRAM_PER_CHAT_RATE"),
            retry_deadline=_number(values, "DELIVERY_RETRY_DEADLINE_SECONDS"),
            claim_timeout=min(_number(values, "CLAIM_TIMEOUT_SECONDS"), MAX_CLAIM_TIMEOUT),
            workers=int(_number(values, "DELIVERY_WORKERS")),
            batch_size=int(_number(values, "DELIVERY_BATCH_SIZE")),
            backoff_base=_number(values, "DELIVERY_BACKOFF_BASE_SECONDS"),
            backoff_max=_number(values, "DELIVERY_BACKOFF_MAX_SECONDS"),
            request_timeout=_number(values, "TELEGRAM_REQUEST_TIMEOUT_SECONDS"),
            poll_timeout=int(_number(values, "POLL_TIMEOUT_SECONDS")),
            coalesce_after=_number(values, "COALESCE_AFTER_SECONDS"),
            shared_budget=bool(values.get("SHARED_SEND_BUDGET", True)),
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
            ("COALESCE_AFTER_SECONDS", self.coalesce_after >= 0),
        ]
        for name, ok in problems:
            if not ok:
                raise ConfigError(f"{name} has an unusable value (see docs/bot.md)")
