"""Misbehaviour on command: queued fault rules that the server consults before answering.

Rules are consulted in the order they were added; the first one that matches the
request's platform (or any platform when the rule has none) and is still active
is applied and, when counted, used up.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

FAIL = "fail"
RATE_LIMIT = "rate_limit"
TIMEOUT = "timeout"
REJECT = "reject"


@dataclass(slots=True)
class Fault:
    """One rule: what to do, to which platform, how many times or until when."""

    kind: str
    platform: str | None = None
    remaining: int | None = None  # None → bounded by `until` instead
    until: float | None = None
    status: int = 500
    retry_after: float | None = 2  # None: the time left of a time-bounded rule
    delay: float = 0.0
    detail: str = ""
    header: bool = True  # RATE_LIMIT: send Retry-After (False: a bare 429/503, the client must back off)

    def matches(self, platform: str, now: float) -> bool:
        if self.platform is not None and self.platform != platform:
            return False
        if self.remaining is not None:
            return self.remaining > 0
        return self.until is not None and now < self.until

    def spent(self, now: float) -> bool:
        if self.remaining is not None:
            return self.remaining <= 0
        return self.until is None or now >= self.until


class Faults:
    """Thread-safe fault queue plus per-platform forced auth failures; shares the server's lock."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._rules: list[Fault] = []
        self._auth_broken: set[str] = set()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._rules.append(fault)

    def take(self, platform: str) -> Fault | None:
        """The fault to apply to this request, if any (counted rules are decremented)."""
        if not self._rules:  # fast path without the lock: the benchmark mostly runs fault-free
            return None
        now = time.monotonic()
        with self._lock:
            chosen = None
            for rule in self._rules:
                if rule.matches(platform, now):
                    chosen = rule
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    break
            self._rules = [rule for rule in self._rules if not rule.spent(now)]
            return chosen

    def set_auth_failure(self, platform: str, broken: bool) -> None:
        with self._lock:
            if broken:
                self._auth_broken.add(platform)
            else:
                self._auth_broken.discard(platform)

    def auth_broken(self, platform: str) -> bool:
        return platform in self._auth_broken

    def pending(self) -> int:
        """How many rules are still waiting (lets a test check that its faults were all used)."""
        now = time.monotonic()
        with self._lock:
            return sum(1 for rule in self._rules if not rule.spent(now))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._auth_broken.clear()
