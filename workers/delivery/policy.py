"""Retry policy: exponential backoff with jitter, dead letter only after enough attempts AND enough time."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 10.0
    max_seconds: float = 3600.0
    max_attempts: int = 8
    max_age: timedelta = timedelta(hours=72)
    breaker: timedelta = timedelta(minutes=30)

    @classmethod
    def from_config(cls) -> RetryPolicy:
        config = current_app.config
        return cls(base_seconds=config["RETRY_BASE_SECONDS"], max_attempts=config["MAX_ATTEMPTS"],
                   max_age=timedelta(hours=config["MAX_EVENT_AGE_HOURS"]),
                   breaker=timedelta(minutes=config["BREAKER_MINUTES"]))

    def backoff(self, attempts: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds before the next try: SHOPRELAY_RETRY_BASE_SECONDS (10 s) doubling to 1 h, ±20 % jitter, never
        before Retry-After."""
        rng = rng or random
        delay = min(self.base_seconds * (2 ** max(0, attempts - 1)), self.max_seconds)
        delay *= rng.uniform(0.8, 1.2)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def is_dead(self, attempts: int, created_at: datetime, now: datetime) -> bool:
        return attempts >= self.max_attempts and now - created_at >= self.max_age
