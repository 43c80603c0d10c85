"""Delivery latency (event created -> delivered) percentiles for a window.

PostgreSQL computes them in SQL (`percentile_cont`, one sort for both); SQLite has no percentile function,
so we read the durations of at most the latest SAMPLE_LIMIT delivered events and interpolate the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from webapp.extensions import db
from webapp.models import Event
from webapp.services.platform.statements import dialect_name
from webapp.services.platform.time_buckets import Window, seconds_between

SAMPLE_LIMIT = 10_000
BACKLOG_LOOKBACK = timedelta(days=1)


@dataclass(frozen=True)
class Latency:
    p50: float | None  # seconds
    p95: float | None
    count: int         # delivered events measured (capped at SAMPLE_LIMIT on SQLite)


def percentile(values: Sequence[float], share: float) -> float | None:
    """Linear interpolation between closest ranks: what PostgreSQL's percentile_cont returns."""
    if not values:
        return None
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _delivered_in(window: Window) -> list[sa.ColumnElement[bool]]:
    """Delivered inside the window. Created at most a day (or one window) earlier keeps the scan on the
    (state, created_at) index while still counting a backlog that drained during the window."""
    lookback = min(window.length, BACKLOG_LOOKBACK)
    return [Event.state == "delivered", Event.created_at >= window.start - lookback,
            Event.delivered_at >= window.start]


def delivery_latency(window: Window) -> Latency:
    if dialect_name() == "postgresql":
        return _latency_in_sql(window)
    return _latency_from_sample(window)


def _latency_in_sql(window: Window) -> Latency:
    seconds = seconds_between(Event.created_at, Event.delivered_at)
    shares = sa.literal([0.5, 0.95], postgresql.ARRAY(sa.Float))
    values, count = db.session.execute(
        sa.select(sa.func.percentile_cont(shares).within_group(seconds), sa.func.count())
        .where(*_delivered_in(window))).one()
    p50, p95 = values if values else (None, None)
    return Latency(p50=p50, p95=p95, count=count)


def _latency_from_sample(window: Window) -> Latency:
    durations = [max(0.0, float(seconds)) for seconds in db.session.scalars(
        sa.select(seconds_between(Event.created_at, Event.delivered_at))
        .where(*_delivered_in(window)).order_by(Event.created_at.desc()).limit(SAMPLE_LIMIT))]
    return Latency(p50=percentile(durations, 0.5), p95=percentile(durations, 0.95), count=len(durations))
