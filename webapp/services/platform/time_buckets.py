"""Time windows cut into equal UTC-aligned buckets (hours or days), and the SQL that puts a timestamp into
its bucket on SQLite and PostgreSQL, so dashboard charts aggregate in the database, never row by row here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.services.platform.statements import dialect_name

# name -> (bucket size in seconds, number of buckets)
WINDOWS: dict[str, tuple[int, int]] = {"24h": (3600, 24), "7d": (86400, 7), "30d": (86400, 30)}
DEFAULT_WINDOW = "24h"


@dataclass(frozen=True)
class Window:
    """`buckets` buckets of `bucket_seconds`, the last one holding `now` (so it is still filling)."""

    name: str
    start: datetime
    now: datetime
    bucket_seconds: int
    buckets: int

    @property
    def hourly(self) -> bool:
        return self.bucket_seconds < 86400

    @property
    def length(self) -> timedelta:
        return timedelta(seconds=self.bucket_seconds * self.buckets)

    def bucket_starts(self) -> list[datetime]:
        return [self.start + timedelta(seconds=i * self.bucket_seconds) for i in range(self.buckets)]

    def labels(self) -> list[str]:
        fmt = "%H:00" if self.hourly else "%b %d"
        return [start.strftime(fmt) for start in self.bucket_starts()]


def make_window(name: str, now: datetime | None = None) -> Window:
    """The named window ending now; unknown names fall back to the default (it comes from a query string)."""
    if name not in WINDOWS:
        name = DEFAULT_WINDOW
    size, count = WINDOWS[name]
    now = now or datetime.now(UTC)
    epoch = int(now.timestamp())
    current = datetime.fromtimestamp(epoch - epoch % size, UTC)
    return Window(name=name, start=current - timedelta(seconds=size * (count - 1)), now=now,
                  bucket_seconds=size, buckets=count)


def bucket_of(column: sa.ColumnElement, window: Window) -> sa.ColumnElement[int]:
    """SQL for the bucket index (0 = first bucket) of a timestamp column within `window`."""
    start = int(window.start.timestamp())
    if dialect_name() == "postgresql":
        # date_part is double precision; extract() is numeric since PostgreSQL 14 and several times slower.
        seconds = sa.func.date_part("epoch", column) - start
        return sa.cast(sa.func.floor(seconds / window.bucket_seconds), sa.Integer)
    # SQLite stores UTC text; strftime('%s') turns it into epoch seconds, integer division floors (>= 0 here).
    seconds = sa.cast(sa.func.strftime("%s", column), sa.Integer) - start
    return seconds // window.bucket_seconds


def seconds_between(earlier: sa.ColumnElement, later: sa.ColumnElement) -> sa.ColumnElement[float]:
    """SQL for `later - earlier` in (fractional) seconds on either database."""
    if dialect_name() == "postgresql":
        return sa.func.date_part("epoch", later - earlier)
    return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0


def without_jit() -> None:
    """PostgreSQL's JIT compiles big-looking aggregates for ~40 ms, longer than they then run; turn it off
    for the rest of this transaction (the request's), nowhere else."""
    if dialect_name() == "postgresql":
        db.session.execute(sa.text("SET LOCAL jit = off"))


def fill(pairs: Iterable[tuple[int | None, Any]], window: Window) -> list[Any]:
    """Per-bucket totals from (bucket index, value) rows; buckets without rows are 0, strays are dropped.

    Values keep their type (counts stay int, money stays Decimal).
    """
    values: list[Any] = [0] * window.buckets
    for index, value in pairs:
        if index is not None and 0 <= int(index) < window.buckets:
            values[int(index)] += value or 0
    return values
