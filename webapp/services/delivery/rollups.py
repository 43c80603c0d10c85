"""Roll-ups of pruned events: folded in by retention just before the rows go, added back by the pages that
count events (overview day buckets, destination and contact totals), so a prune changes no total."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import ContactEventRollup, EventRollup
from webapp.services.platform.statements import dialect_name


def _upsert(model: type, keys: list[str], rows: list[dict[str, Any]], summed: list[str]) -> None:
    if not rows:
        return
    insert = (postgresql.insert if dialect_name() == "postgresql" else sqlite.insert)(model)
    db.session.execute(insert.values(rows).on_conflict_do_update(
        index_elements=keys, set_={name: getattr(model, name) + getattr(insert.excluded, name) for name in summed}))


def fold(rows: Iterable[Any]) -> None:
    """Add deleted events (destination_id, contact_id, state, created_at, delivered_at) to the roll-ups, in
    the transaction that deletes them."""
    per_day: dict[tuple, list[float]] = defaultdict(lambda: [0, 0.0])
    per_contact: dict[tuple, int] = defaultdict(int)
    for row in rows:
        entry = per_day[row.destination_id, row.created_at.date(), row.state]
        entry[0] += 1
        if row.state == "delivered" and row.delivered_at is not None:
            entry[1] += max(0.0, (row.delivered_at - row.created_at).total_seconds())
        if row.contact_id is not None:
            per_contact[row.contact_id, row.destination_id, row.state] += 1
    _upsert(EventRollup, ["destination_id", "day", "state"],
            [{"destination_id": d, "day": day, "state": s, "count": c, "seconds": sec}
             for (d, day, s), (c, sec) in sorted(per_day.items())], ["count", "seconds"])
    _upsert(ContactEventRollup, ["contact_id", "destination_id", "state"],
            [{"contact_id": c, "destination_id": d, "state": s, "count": n}
             for (c, d, s), n in sorted(per_contact.items())], ["count"])


def days_since(start: datetime) -> list[tuple[int, datetime, str, int, float]]:
    """(destination id, day start (UTC), state, count, seconds) of pruned events created on or after
    `start`'s day: at most one row per destination, day and state."""
    rows = db.session.execute(sa.select(EventRollup.destination_id, EventRollup.day, EventRollup.state,
                                        EventRollup.count, EventRollup.seconds)
                              .where(EventRollup.day >= start.date())).all()
    return [(d, datetime(day.year, day.month, day.day, tzinfo=start.tzinfo), s, c, sec)
            for d, day, s, c, sec in rows]


def per_destination(destination_ids: Sequence[int] | None = None) -> dict[int, dict[str, int]]:
    """{destination id: {state: pruned events}} (one row per destination, day and state is summed)."""
    query = (sa.select(EventRollup.destination_id, EventRollup.state, sa.func.sum(EventRollup.count))
             .group_by(EventRollup.destination_id, EventRollup.state))
    if destination_ids is not None:
        query = query.where(EventRollup.destination_id.in_(list(destination_ids)))
    result: dict[int, dict[str, int]] = defaultdict(dict)
    for destination_id, state, count in db.session.execute(query).all():
        result[destination_id][state] = int(count or 0)
    return dict(result)


def per_contact(contact_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """{destination id: {state: pruned events}} of these contacts."""
    result: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for destination_id, state, count in db.session.execute(
            sa.select(ContactEventRollup.destination_id, ContactEventRollup.state,
                      sa.func.sum(ContactEventRollup.count))
            .where(ContactEventRollup.contact_id.in_(list(contact_ids)))
            .group_by(ContactEventRollup.destination_id, ContactEventRollup.state)).all():
        result[destination_id][state] += int(count or 0)
    return {d: dict(states) for d, states in result.items()}


def add_counts(target: dict[int, dict[str, int]], extra: dict[int, dict[str, int]]) -> None:
    """target[destination][state] += extra[destination][state], for destinations already in target."""
    for destination_id, states in extra.items():
        if destination_id in target:
            for state, count in states.items():
                target[destination_id][state] = target[destination_id].get(state, 0) + count
