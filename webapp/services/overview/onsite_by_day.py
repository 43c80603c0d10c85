"""Onsite events per day for the overview chart: Active on Site, Viewed Product and Added to Cart, each
browser event counted once however many destinations took it.

The count scans a month of outbox rows by name; it is cached in Redis for CACHE_SECONDS (the chart is per day,
a few minutes behind is fine), computed live without Redis.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import suppress
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from webapp.extensions import db
from webapp.models import Event
from webapp.services.onsite.activity import LABELS, ONSITE_EVENTS
from webapp.services.platform.charts import Series
from webapp.services.platform.time_buckets import Window, bucket_of, fill, make_window

CACHE_SECONDS = 120


def onsite_by_day(window: Window) -> dict[str, list[int]]:
    """Label ("Viewed Product") -> events per bucket of the window, for every onsite event name."""
    table = Event.__table__
    per_copy = (sa.select(table.c.name, table.c.unique_id, bucket_of(table.c.occurred_at, window).label("bucket"))
                .where(table.c.name.in_(ONSITE_EVENTS), table.c.occurred_at >= window.start)
                .distinct().subquery())
    rows = db.session.execute(
        sa.select(per_copy.c.name, per_copy.c.bucket, sa.func.count())
        .group_by(per_copy.c.name, per_copy.c.bucket)).all()
    return {LABELS[name]: fill(((bucket, count) for row_name, bucket, count in rows if row_name == name), window)
            for name in ONSITE_EVENTS}


def cached_onsite_by_day(window: Window) -> dict[str, list[int]]:
    """onsite_by_day, cached per database and window start for CACHE_SECONDS."""
    from workers.queue import connect

    url = current_app.config.get("REDIS_URL")
    database = hashlib.sha256(current_app.config["SQLALCHEMY_DATABASE_URI"].encode()).hexdigest()[:12]
    key = f"shoprelay:overview:onsite:{database}:{window.start.isoformat()}:{window.buckets}"
    redis = connect(url) if url else None
    if redis is not None:
        with suppress(RedisError):
            cached = redis.get(key)
            if cached:
                return json.loads(cached)
    days = onsite_by_day(window)
    if redis is not None:
        with suppress(RedisError):
            redis.set(key, json.dumps(days), ex=CACHE_SECONDS)
    return days


def onsite_chart(now: datetime | None = None) -> dict[str, Any]:
    """The overview fragment's context: 30 days of onsite events per day, as series and as numbers."""
    window = make_window("30d", now)
    days = cached_onsite_by_day(window)
    return {"onsite_days": days, "onsite_labels": window.labels(),
            "onsite_series": [Series(label, [float(v) for v in values]) for label, values in days.items()],
            "onsite_total": sum(sum(values) for values in days.values())}
