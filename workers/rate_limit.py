"""Per-account rate limits shared by every worker: a sliding log of send times in Redis.

Each platform account (the destinations on one key, see the engine's `limiters`) has a sorted set of recent
request times (Redis server clock, so all workers agree). A request may go when fewer than `burst_per_second`
were sent in the last second and fewer than `per_minute` in the last minute; this is stricter than the
platforms' own fixed windows, so however many workers run, the platform never sees more than its documented
limits. The same round trip reads the account's pause (a platform's 429, workers/delivery/pause.py): no slot
is given while it lasts.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from redis import Redis

# KEYS: the log, the account's pause hash (workers/delivery/pause.py). ARGV: burst per second, per minute
# (0 = no limit), a unique member prefix, slots wanted, hold (microseconds). Returns {slots taken,
# microseconds to wait when none, the pause's end (µs, string) or false, the 429 streak}: while the platform
# said wait, no slot is given. Slots taken for later use are stamped `hold` in the future: a window then counts
# each of them from its reservation until a second (a minute) after the latest moment it may be used, which
# covers the real send time whatever it is.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pause = redis.call('HMGET', KEYS[2], 'until', 'streak')
local paused = tonumber(pause[1] or '0')
local streak = tonumber(pause[2] or '0')
if paused > now then
  return {0, paused - now, pause[1], streak}
end
local burst = tonumber(ARGV[1])
local per_min = tonumber(ARGV[2])
local wanted = tonumber(ARGV[4])
local stamp = now + tonumber(ARGV[5])
if burst <= 0 and per_min <= 0 then
  return {wanted, 0, false, streak}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000000)
local room = wanted
if burst > 0 then
  room = math.min(room, burst - redis.call('ZCOUNT', KEYS[1], now - 1000000, '+inf'))
  if room <= 0 then
    local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], now - 1000000, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    return {0, math.max(1, tonumber(oldest[2]) + 1000000 - now), false, streak}
  end
end
if per_min > 0 then
  room = math.min(room, per_min - redis.call('ZCARD', KEYS[1]))
  if room <= 0 then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, math.max(1, tonumber(oldest[2]) + 60000000 - now), false, streak}
  end
end
local members = {}
for i = 1, room do
  members[#members + 1] = stamp
  members[#members + 1] = now .. ':' .. ARGV[3] .. ':' .. i
end
redis.call('ZADD', KEYS[1], unpack(members))
redis.call('PEXPIRE', KEYS[1], 61000 + math.ceil(tonumber(ARGV[5]) / 1000))
return {room, 0, false, streak}
"""


@dataclass(frozen=True)
class Limits:
    burst_per_second: float = 0
    per_minute: float = 0

    @classmethod
    def from_dict(cls, values: dict | None) -> Limits:
        values = values or {}
        return cls(float(values.get("burst_per_second") or 0), float(values.get("per_minute") or 0))


class PauseWatch(Protocol):
    """Who hears what a reservation read of the account's pause (workers/delivery/pause.Pause)."""

    key: str

    def seen(self, until_micros: int | str | None, streak: int | str | None) -> None: ...


class RateLimiter:
    """`acquire()` blocks until one request fits both windows (or `max_wait` passes). With a `pause`, every
    reservation also reads the platform account's pause and gives no slot while it lasts, limits or not."""

    def __init__(self, connection: Redis, key: str, limits: Limits, pause: PauseWatch | None = None) -> None:
        self.connection = connection
        self.key = f"shoprelay:rl:{key}"
        self.limits = limits
        self.pause = pause
        self.paused = False  # the last reservation found the account paused (its end is in `pause.until`)
        self._script = connection.register_script(_TAKE)
        self._counter = 0
        self._instance = uuid.uuid4().hex[:12]

    @property
    def unlimited(self) -> bool:
        """No limits and no pause to read: nothing to ask Redis."""
        return not self.limits.burst_per_second and not self.limits.per_minute and self.pause is None

    def try_acquire(self, wanted: int = 1, hold: float = 0.0) -> tuple[int, float]:
        """Take up to `wanted` slots now, to be used within `hold` seconds: (slots taken, seconds to wait)."""
        if self.unlimited:
            return wanted, 0.0
        self._counter += 1
        taken, micros, paused, streak = self._script(keys=[self.key, self.pause.key if self.pause else
                                                           "shoprelay:pause:-"], args=[
            int(self.limits.burst_per_second), int(self.limits.per_minute), f"{self._instance}-{self._counter}",
            max(1, wanted), int(hold * 1_000_000)])
        self.paused = bool(paused)
        if self.pause is not None:
            self.pause.seen(paused or None, streak)
        return int(taken), int(micros) / 1_000_000

    def acquire_many(self, wanted: int, hold: float, max_wait: float = 120.0) -> int:
        """Block until at least one of `wanted` slots is free (or `max_wait` passes); returns how many were taken.

        One Redis round trip buys several single-event requests, instead of one per request.
        """
        deadline = time.monotonic() + max_wait
        while True:
            taken, wait = self.try_acquire(wanted, hold)
            if taken:
                return taken
            if time.monotonic() + wait > deadline:
                return 0
            time.sleep(min(wait + 0.001, 1.0))

    def acquire(self, max_wait: float = 120.0) -> bool:
        return self.acquire_many(1, 0.0, max_wait) == 1


class Slots:
    """Slots reserved ahead for a run of single requests; unused ones lapse after `hold` seconds."""

    def __init__(self, limiter: RateLimiter | None, hold: float = 0.5, chunk: int = 32) -> None:
        self.limiter, self.hold, self.chunk = limiter, hold, chunk
        self.left = 0
        self.valid_until = 0.0

    def take(self, upcoming: int, max_wait: float) -> bool:
        """One slot for the next request (`upcoming` = requests still to send, so no slot is reserved idly).
        False when none comes within `max_wait`, or at once while the account is paused (`limiter.paused`)."""
        if self.limiter is None or self.limiter.unlimited:
            return True
        if self.left <= 0 or time.monotonic() >= self.valid_until:
            deadline = time.monotonic() + max_wait
            while True:
                started = time.monotonic()
                taken, wait = self.limiter.try_acquire(min(self.chunk, max(1, upcoming)), self.hold)
                if taken:
                    break
                if self.limiter.paused or started + wait > deadline:
                    return False
                time.sleep(min(wait + 0.001, 1.0))
            # Redis stamped the slots at its own clock + hold, which is no earlier than `started` + hold.
            self.left, self.valid_until = taken, started + self.hold
        self.left -= 1
        return True
