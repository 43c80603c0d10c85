"""Per-destination rate limits shared by every worker: a sliding log of send times in Redis.

Each destination has a sorted set of recent request times (Redis server clock, so all workers agree).
A request may go when fewer than `burst_per_second` were sent in the last second and fewer than
`per_minute` in the last minute; this is stricter than the platforms' own fixed windows, so however
many workers run, the platform never sees more than its documented limits.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from redis import Redis

# KEYS: the log. ARGV: burst per second, per minute (0 = no limit), a unique member suffix.
# Returns 0 when a slot was taken, else the microseconds to wait before it is worth trying again.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local burst = tonumber(ARGV[1])
local per_min = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000000)
if burst > 0 then
  if redis.call('ZCOUNT', KEYS[1], now - 1000000, '+inf') >= burst then
    local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], now - 1000000, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    return math.max(1, tonumber(oldest[2]) + 1000000 - now)
  end
end
if per_min > 0 and redis.call('ZCARD', KEYS[1]) >= per_min then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + 60000000 - now)
end
redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], 61000)
return 0
"""


@dataclass(frozen=True)
class Limits:
    burst_per_second: float = 0
    per_minute: float = 0

    @classmethod
    def from_dict(cls, values: dict | None) -> Limits:
        values = values or {}
        return cls(float(values.get("burst_per_second") or 0), float(values.get("per_minute") or 0))


class RateLimiter:
    """`acquire()` blocks until one request fits both windows (or `max_wait` passes)."""

    def __init__(self, connection: Redis, key: str, limits: Limits) -> None:
        self.connection = connection
        self.key = f"shoprelay:rl:{key}"
        self.limits = limits
        self._script = connection.register_script(_TAKE)
        self._counter = 0
        self._instance = uuid.uuid4().hex[:12]

    def try_acquire(self) -> float:
        """Take a slot now (returns 0) or return the seconds to wait before trying again."""
        if not self.limits.burst_per_second and not self.limits.per_minute:
            return 0.0
        self._counter += 1
        micros = self._script(keys=[self.key], args=[int(self.limits.burst_per_second),
                                                      int(self.limits.per_minute), f"{self._instance}-{self._counter}"])
        return int(micros) / 1_000_000

    def acquire(self, max_wait: float = 120.0) -> bool:
        deadline = time.monotonic() + max_wait
        while True:
            wait = self.try_acquire()
            if wait <= 0:
                return True
            if time.monotonic() + wait > deadline:
                return False
            time.sleep(min(wait + 0.001, 1.0))
