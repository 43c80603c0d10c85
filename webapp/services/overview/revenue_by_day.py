"""Revenue per day for the overview chart (30 days), with the closed days cached in Redis.

Scanning a month of orders is the overview's most expensive query, and days before today rarely change
(a late status change, a historical import): they are cached for CLOSED_DAYS_TTL seconds, today is always
computed live. Without Redis everything is computed live.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import suppress
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from flask import current_app
from redis.exceptions import RedisError

from webapp.services.overview.stats import revenue
from webapp.services.platform.time_buckets import Window

CLOSED_DAYS_TTL = 300


def revenue_by_day(window: Window) -> dict[str, list[Decimal]]:
    """currency -> revenue per day of a day-bucketed window (the last bucket is today, so far)."""
    today_start = window.start + timedelta(days=window.buckets - 1)
    closed_days = replace(window, now=today_start - timedelta(microseconds=1), buckets=window.buckets - 1)
    closed = _cached_revenue(closed_days)
    today = revenue(replace(window, start=today_start, buckets=1))
    result: dict[str, list[Decimal]] = {}
    for currency in sorted(set(closed) | set(today)):
        result[currency] = closed.get(currency, [Decimal(0)] * closed_days.buckets) + today.get(
            currency, [Decimal(0)])
    return result


def _cached_revenue(window: Window) -> dict[str, list[Decimal]]:
    connection = _redis()
    database = hashlib.sha256(current_app.config["SQLALCHEMY_DATABASE_URI"].encode()).hexdigest()[:12]
    key = f"shoprelay:overview:revenue:{database}:{window.start.date()}:{window.buckets}"
    if connection is not None:
        try:
            cached = connection.get(key)
            if cached:
                return {currency: [Decimal(v) for v in values] for currency, values in json.loads(cached).items()}
        except RedisError:
            connection = None
    values = revenue(window)
    if connection is not None:
        with suppress(RedisError):  # a cache that cannot be written is only slower
            connection.set(key, json.dumps({c: [str(v) for v in vs] for c, vs in values.items()}),
                           ex=CLOSED_DAYS_TTL)
    return values


def _redis():  # noqa: ANN202
    from workers.queue import connect

    url = current_app.config.get("REDIS_URL")
    return connect(url) if url else None
