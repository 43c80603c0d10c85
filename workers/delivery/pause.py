"""A platform's "wait" for the whole account: when it answers 429 (or 503 with Retry-After), every worker, new
event, retry and sweep of its destinations waits until the time it gave, plus a little jitter.

The pause is a Redis hash per platform account (`until` in µs of the Redis clock, and `streak`: 429s without
Retry-After in a row, for the exponential backoff), only ever extended (a Lua max). The rate limiter reads it
in its slot reservation (rate_limit.py), so the check costs no extra round trip on the hot path. Its copy in the
database (destinations.rate_limited_until, written when the pause starts, also only extended) outlives a
flushed Redis: the pause in effect is the later of the two, and a run that finds only the database's puts it
back into Redis for the other workers.
"""

from __future__ import annotations

import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError

from webapp.extensions import db
from webapp.models import Destination
from webapp.models.base import UtcDateTime
from webapp.services.platform.crypto import decrypt_json
from workers.destinations import get_adapter_class
from workers.destinations.base import Classification

log = logging.getLogger(__name__)

JITTER_SECONDS = (0.1, 0.6)       # added to a Retry-After: never before it, and the workers do not restart at once
BACKOFF_SECONDS = (2.0, 300.0)    # 429 without Retry-After: 2 s doubling per 429 in a row, capped at 5 min ...
BACKOFF_JITTER = (1.0, 1.25)      # ... times this
KEPT_SECONDS = 3600               # the streak outlives its pause this long (a success resets it sooner)

# KEYS: the pause hash. ARGV: µs to wait from now (-1: back off by the streak), backoff base µs, cap µs,
# jitter factor, an absolute floor in µs (0: none). Returns {until µs (string), streak}.
_EXTEND = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local delay = tonumber(ARGV[1])
local streak = tonumber(redis.call('HGET', KEYS[1], 'streak') or '0')
if delay < 0 then
  streak = streak + 1
  redis.call('HSET', KEYS[1], 'streak', streak)
  delay = math.min(tonumber(ARGV[2]) * 2 ^ (streak - 1), tonumber(ARGV[3])) * tonumber(ARGV[4])
end
local target = math.max(now + delay, tonumber(ARGV[5]))
local current = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if target > current then
  redis.call('HSET', KEYS[1], 'until', string.format('%.0f', target))
else
  target = current
end
redis.call('PEXPIREAT', KEYS[1], math.floor(target / 1000) + 1000 * tonumber(ARGV[6]))
return {string.format('%.0f', target), streak}
"""


def pause_key(account: str) -> str:
    return f"shoprelay:pause:{account}"


def throttled(classification: Classification, status: int | None) -> bool:
    """The platform asked the whole account to wait: 429 (with or without Retry-After), 503 with Retry-After."""
    return status == 429 or (status == 503 and classification.retry_after is not None)


def _at(micros: float | int | str | None) -> datetime | None:
    return datetime.fromtimestamp(int(micros) / 1_000_000, UTC) if micros and int(micros) > 0 else None


def _micros(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


@dataclass
class Pause:
    """One run's view of its account's pause: what the last slot reservation saw, and how to start one."""

    redis: Redis | None
    account: str
    destination_id: int
    kind: str
    until: datetime | None = None  # as last seen (reservation, start or check)
    streak: int = 0

    @property
    def key(self) -> str:
        return pause_key(self.account)

    def seen(self, until_micros: int | str | None, streak: int | str | None) -> None:
        """What a slot reservation read from the pause hash (the limiter calls this)."""
        self.until, self.streak = _at(until_micros), int(streak or 0)

    def active(self, now: datetime | None = None) -> datetime | None:
        now = now or datetime.now(UTC)
        return self.until if self.until is not None and self.until > now else None

    def start(self, retry_after: float | None, rng: random.Random | None = None) -> datetime:
        """The platform said wait: extend the pause in Redis (every worker stops at its next reservation),
        then its database copy for every destination of the account. Returns the time the pause ends."""
        rng = rng or random
        delay = -1.0 if retry_after is None else retry_after + rng.uniform(*JITTER_SECONDS)
        until = None
        if self.redis is not None:
            try:
                until = self._extend(delay, rng.uniform(*BACKOFF_JITTER))
            except RedisError as exc:
                log.warning("could not store the pause of destination %s in Redis (%s); the database has it",
                            self.destination_id, exc)
        if until is None:  # no Redis: the streak is unknown, back off from the start
            seconds = delay if delay >= 0 else BACKOFF_SECONDS[0] * rng.uniform(*BACKOFF_JITTER)
            until = datetime.now(UTC) + timedelta(seconds=seconds)
        self.until = until
        write_db_pause(self.sharing_account(), until)
        return until

    def _extend(self, delay: float, jitter: float, floor: datetime | None = None) -> datetime:
        until, streak = self.redis.register_script(_EXTEND)(keys=[self.key], args=[
            int(delay * 1_000_000), int(BACKOFF_SECONDS[0] * 1_000_000), int(BACKOFF_SECONDS[1] * 1_000_000),
            jitter, _micros(floor) if floor else 0, KEPT_SECONDS])
        self.streak = int(streak)
        return _at(until)

    def reset_backoff(self) -> None:
        """The first success after 429s without Retry-After: the next one backs off from the start again."""
        self.streak = 0
        if self.redis is not None:
            with contextlib.suppress(RedisError):
                self.redis.hdel(self.key, "streak")

    def check(self, db_until: datetime | None) -> datetime | None:
        """The pause in effect now (the later of Redis's and the database's), or None. When only the database
        still has it (Redis flushed), it goes back into Redis, so every worker's reservation sees it again."""
        now = datetime.now(UTC)
        redis_until = None
        if self.redis is not None:
            try:
                until, streak = self.redis.hmget(self.key, ["until", "streak"])
                self.seen(until, streak)
                redis_until = self.until
                if db_until is not None and db_until > now and (redis_until is None or db_until > redis_until):
                    redis_until = self._extend(0.0, 1.0, floor=db_until)
            except RedisError as exc:
                log.warning("could not read the pause of destination %s from Redis (%s)", self.destination_id, exc)
        self.until = max((at for at in (redis_until, db_until) if at is not None), default=None)
        return self.active(now)

    def sharing_account(self) -> list[int]:
        """This destination and every other one on the same platform account (same kind, URL and key)."""
        table = Destination.__table__
        rows = db.session.execute(sa.select(table.c.id, table.c.credentials_encrypted, table.c.base_url,
                                            table.c.settings).where(table.c.kind == self.kind)).all()
        cls, ids = get_adapter_class(self.kind), [self.destination_id]
        for row in rows:
            if row.id == self.destination_id:
                continue
            try:
                if cls(decrypt_json(row.credentials_encrypted), row.base_url, row.settings).account() == self.account:
                    ids.append(row.id)
            except (ValueError, TypeError):  # credentials that no longer decrypt or are incomplete
                continue
        return ids


def write_db_pause(destination_ids: list[int], until: datetime) -> None:
    """Extend (never shorten) the database copy of the pause; its own short transaction."""
    table = Destination.__table__
    column, value = table.c.rate_limited_until, sa.bindparam("until", until, type_=UtcDateTime())
    db.session.execute(sa.update(table).where(table.c.id.in_(destination_ids)).values(
        rate_limited_until=sa.case((sa.or_(column.is_(None), column < value), value), else_=column)))
    db.session.commit()
