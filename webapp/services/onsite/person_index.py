"""The onsite collector's index of browsers per person, so an erasure reads only the person's own browsers
instead of scanning every browser remembered (which grows to seconds inside the erasure request).

`shoprelay:onsite:person:email:<digest>` and `shoprelay:onsite:person:customer:<digest>` are sets of browser
ids; the digest is HMAC-SHA256 (SECRET_KEY) of the lower-cased email or the customer id, so no address shows in a
key name. The collector adds to them on every identity it stores (orders.onsite `queue_identity`), and each set
expires with the last browser added, which therefore outlives no browser it should name. Sets may still name a
browser that has since changed person or expired: readers check the browser's own hash.

Browsers remembered before the index existed are not in it until `backfill` has scanned them once; it then sets
`COMPLETE` to a fingerprint of SECRET_KEY. Until that marker holds the current key's fingerprint (a new
deployment, a flushed Redis, a changed SECRET_KEY), `browsers_of` answers None and the erasure scans as before.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import current_app

log = logging.getLogger(__name__)

BROWSER_PREFIX = b"shoprelay:onsite:anon:"
PERSON_PREFIX = "shoprelay:onsite:person"
COMPLETE = "shoprelay:onsite:person-index:complete"
BATCH = 1000  # browsers read per SCAN step and pipeline in the backfill


def digest(value: str) -> str:
    """Keyed hash of an email or customer id: a set's name without the value itself."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def person_sets(email: str | None, customer_ids: Iterable[str | None]) -> list[str]:
    """The sets that name a person's browsers: one per email (lower-cased) and per customer id."""
    sets = [f"{PERSON_PREFIX}:email:{digest(email.strip().lower())}"] if email and email.strip() else []
    return sets + sorted({f"{PERSON_PREFIX}:customer:{digest(value.strip())}"
                          for value in customer_ids if value and value.strip()})


def browser_key(browser_id: bytes | str) -> bytes:
    return BROWSER_PREFIX + (browser_id.encode() if isinstance(browser_id, str) else browser_id)


def browser_id(key: bytes) -> bytes:
    return key[len(BROWSER_PREFIX):]


def queue_add(pipe: Any, browser: str | bytes, email: str | None, customer_id: str | None, ttl: int) -> None:
    """Queue on the caller's pipeline (no round trip of its own): this browser now names this person. The set
    lives `ttl` from now, as long as the browser's hash stored in the same pipeline."""
    for name in person_sets(email, [customer_id]):
        pipe.sadd(name, browser)
        pipe.expire(name, ttl)


def fingerprint() -> str:
    """What COMPLETE holds: the index is complete for digests made with this SECRET_KEY only."""
    return digest("shoprelay:onsite:person-index")


def is_complete(redis: Any) -> bool:
    marker = redis.get(COMPLETE)
    return marker is not None and marker.decode() == fingerprint()


def browsers_of(redis: Any, email: str, customer_ids: Iterable[str]) -> list[bytes] | None:
    """The browser keys the index names for this person (one round trip), or None while the index is not
    complete: the caller then scans every browser."""
    names = person_sets(email, customer_ids)
    pipe = redis.pipeline(transaction=False)
    pipe.get(COMPLETE)
    for name in names:
        pipe.smembers(name)
    marker, *members = pipe.execute()
    if marker is None or marker.decode() != fingerprint():
        return None
    return sorted({browser_key(member) for found in members for member in found})


def forget(redis: Any, keys: list[bytes], email: str, customer_ids: Iterable[str]) -> None:
    """Delete these browsers and take them out of the person's sets, together (MULTI): a browser the collector
    identifies again meanwhile is then either gone from both or back in both."""
    pipe = redis.pipeline(transaction=True)
    pipe.delete(*keys)
    ids = [browser_id(key) for key in keys]
    for name in person_sets(email, customer_ids):
        pipe.srem(name, *ids)
    pipe.execute()


def backfill(redis: Any, ttl: int, should_stop: Callable[[], bool] | None = None) -> int | None:
    """Add every identified browser to its person's sets, then mark the index complete. Returns the browsers
    indexed, or None when asked to stop first (the next run starts over; adding twice is harmless).

    A browser identified meanwhile is indexed by the collector itself; one whose hash is read here and then
    changes person leaves a stale entry, which readers ignore."""
    mark = fingerprint()
    indexed = 0
    batch: list[bytes] = []
    for key in redis.scan_iter(match=BROWSER_PREFIX + b"*", count=BATCH):
        batch.append(key)
        if len(batch) >= BATCH:
            indexed += _index(redis, batch, ttl)
            batch = []
            if should_stop is not None and should_stop():
                return None
    indexed += _index(redis, batch, ttl)
    redis.set(COMPLETE, mark)
    return indexed


def _index(redis: Any, keys: list[bytes], ttl: int) -> int:
    if not keys:
        return 0
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
        pipe.hmget(key, "email", "customer_id")
    answers = pipe.execute(raise_on_error=False)  # a key that is not a hash answers an error: not a browser
    pipe = redis.pipeline(transaction=False)
    indexed = 0
    for key, kind, said in zip(keys, answers[::2], answers[1::2], strict=True):
        if kind not in (b"hash", "hash") or isinstance(said, Exception):
            continue
        email, customer_id = ((value or b"").decode(errors="replace") for value in said)
        if email.strip() or customer_id.strip():
            queue_add(pipe, browser_id(key), email, customer_id, ttl)
            indexed += 1
    pipe.execute()
    return indexed


def ensure_complete(should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """The periodic entry point: one GET when the index is complete, else the backfill."""
    from webapp.services.orders.onsite import ANON_TTL
    from workers.queue import connect

    url = current_app.config.get("REDIS_URL")
    if not url:
        return {"state": "no redis"}
    redis = connect(url)
    if is_complete(redis):
        return {"state": "complete"}
    indexed = backfill(redis, ANON_TTL, should_stop)
    if indexed is None:
        return {"state": "stopped"}
    log.info("onsite person index: %s browsers indexed, complete", indexed)
    return {"state": "backfilled", "browsers": indexed}
