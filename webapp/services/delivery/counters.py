"""Delivery counters that pruning cannot lower: attempts per outcome, settled events, the latency histogram.

The delivery recorder adds one group's increments in the same transaction as the rows they count (one
multi-row upsert per group), so a counter never runs ahead of or behind its rows, and /metrics reads a few
rows per destination instead of scanning events and attempts. Pruning deletes rows, never counters.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import EVENT_STATES, DeliveryCounter, Event
from webapp.services.platform.statements import dialect_name, per_dialect

# Upper bounds (seconds) of the delivery latency histogram; the last bucket (index len) is +Inf.
LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400)
# States whose events are pruned after the retention period: their totals come from the counters.
PRUNED_STATES = ("delivered", "skipped")
LIVE_STATES = tuple(state for state in EVENT_STATES if state not in PRUNED_STATES)
SLOTS = 8


class Increments:
    """A group's counter increments: name -> [count, seconds]."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

    def add(self, name: str, count: int = 1, seconds: float = 0.0) -> None:
        entry = self.values[name]
        entry[0] += count
        entry[1] += seconds

    def delivered(self, created_at: datetime, delivered_at: datetime) -> None:
        seconds = max(0.0, (delivered_at - created_at).total_seconds())
        self.add("events:delivered", 1, seconds)
        self.add(f"latency:{latency_bucket(seconds)}")

    def __bool__(self) -> bool:
        return bool(self.values)


def latency_bucket(seconds: float) -> int:
    """Index of the first bucket whose bound holds `seconds` (len(LATENCY_BUCKETS) for +Inf)."""
    return next((i for i, bound in enumerate(LATENCY_BUCKETS) if seconds <= bound), len(LATENCY_BUCKETS))


def _slot() -> int:
    """Recorders of one destination in different processes/threads mostly write different rows."""
    return (os.getpid() + threading.get_ident()) % SLOTS


@per_dialect
def _upsert(dialect: str) -> sa.Insert:
    """Built once per dialect (a fresh multi-row statement compiled on every group cost ~4 ms)."""
    table = DeliveryCounter.__table__
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return insert.on_conflict_do_update(
        index_elements=["destination_id", "name", "slot"],
        set_={"count": table.c.count + insert.excluded.count, "seconds": table.c.seconds + insert.excluded.seconds})


_PG_UPSERT = ("INSERT INTO delivery_counters (destination_id, name, slot, count, seconds) "
              "SELECT %s, n, %s, c, s FROM unnest(%s::text[], %s::bigint[], %s::float8[]) AS v (n, c, s) "
              "ON CONFLICT (destination_id, name, slot) DO UPDATE SET count = delivery_counters.count + "
              "excluded.count, seconds = delivery_counters.seconds + excluded.seconds")


def add(destination_id: int, increments: Increments) -> None:
    """All of a group's increments in one statement, in the caller's transaction (rows sorted: a fixed lock
    order for concurrent recorders on PostgreSQL, one round trip there through unnest)."""
    if not increments:
        return
    slot = _slot()
    items = sorted(increments.values.items())
    if dialect_name() == "postgresql":
        db.session.connection().exec_driver_sql(_PG_UPSERT, (
            destination_id, slot, [name for name, _ in items], [int(v[0]) for _, v in items],
            [float(v[1]) for _, v in items]))
        return
    db.session.execute(_upsert(), [
        {"destination_id": destination_id, "name": name, "slot": slot, "count": int(count),
         "seconds": float(seconds)} for name, (count, seconds) in items])


def totals() -> dict[int, dict[str, tuple[int, float]]]:
    """{destination id: {counter name: (count, seconds)}}, slots summed (a few rows per destination)."""
    result: dict[int, dict[str, tuple[int, float]]] = defaultdict(dict)
    for destination_id, name, count, seconds in db.session.execute(
            sa.select(DeliveryCounter.destination_id, DeliveryCounter.name, sa.func.sum(DeliveryCounter.count),
                      sa.func.sum(DeliveryCounter.seconds))
            .group_by(DeliveryCounter.destination_id, DeliveryCounter.name)).all():
        result[destination_id][name] = (int(count or 0), float(seconds or 0.0))
    return dict(result)


def state_counts(destination_ids: Iterable[int] | None = None,
                 counters: dict[int, dict[str, tuple[int, float]]] | None = None) -> dict[int, dict[str, int]]:
    """Events per destination and state: live rows for the states retention keeps (an index range on
    (state, created_at) each), the counters for delivered and skipped (whose rows are pruned)."""
    ids = None if destination_ids is None else list(destination_ids)
    result: dict[int, dict[str, int]] = defaultdict(dict)
    query = (sa.select(Event.destination_id, Event.state, sa.func.count())
             .where(Event.state.in_(LIVE_STATES)).group_by(Event.destination_id, Event.state))
    if ids is not None:
        query = query.where(Event.destination_id.in_(ids))
    for destination_id, state, count in db.session.execute(query).all():
        result[destination_id][state] = count
    for destination_id, names in (totals() if counters is None else counters).items():
        if ids is not None and destination_id not in ids:
            continue
        for state in PRUNED_STATES:
            if f"events:{state}" in names:
                result[destination_id][state] = names[f"events:{state}"][0]
    return dict(result)
