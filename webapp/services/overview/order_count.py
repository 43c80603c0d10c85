"""How many orders are stored, for /metrics, without counting the whole table at every scrape.

A mark in Redis holds (last id, orders up to it). Each call counts only the orders after the mark (a
primary-key range: the orders of the last few minutes) and moves the mark up to the orders stored more than
SETTLE ago — by then every transaction that took a lower id has committed or rolled back, so no order is
counted twice or missed. Without a mark (first call, Redis flushed or away) one full count rebuilds it.
Orders are never deleted today; whatever comes to delete them must drop the mark (`forget`).
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

import orjson
import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError

from webapp.extensions import db
from webapp.models import Order, utcnow

MARK_KEY = "shoprelay:metrics:orders-mark"
SETTLE = timedelta(minutes=10)


def stored_orders(connection: Redis | None, now: datetime | None = None) -> int:
    """Orders in the table: the mark's count plus the orders after it; the mark moves up when it can."""
    last_id, counted = _read(connection)
    after = db.session.scalar(sa.select(sa.func.count()).where(Order.id > last_id)) or 0
    if connection is None or not after:
        return counted + after
    settled_id = db.session.scalar(sa.select(sa.func.max(Order.id)).where(
        Order.id > last_id, Order.created_at < (now or utcnow()) - SETTLE))
    if settled_id is not None:  # every id up to it is long committed: count the range, whatever its times
        settled = db.session.scalar(sa.select(sa.func.count()).where(Order.id > last_id, Order.id <= settled_id))
        _write(connection, settled_id, counted + (settled or 0))
    return counted + after


def forget(connection: Redis) -> None:
    """Drop the mark (after orders were deleted): the next call counts the table once."""
    connection.delete(MARK_KEY)


def _read(connection: Redis | None) -> tuple[int, int]:
    if connection is None:
        return 0, 0
    try:
        raw = connection.get(MARK_KEY)
    except RedisError:
        return 0, 0
    if not raw:
        return 0, 0
    mark = orjson.loads(raw)
    return int(mark["id"]), int(mark["count"])


def _write(connection: Redis, last_id: int, count: int) -> None:
    with contextlib.suppress(RedisError):  # lost: the next call counts from the previous mark (or all) again
        connection.set(MARK_KEY, orjson.dumps({"id": last_id, "count": count}))
