"""The transactional outbox: event rows written in the same transaction as the change that caused them.

One row per (destination, event name, unique id); inserting an existing key does nothing, so re-sends and
retries can never create a second event. Redis is signalled only after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import Destination, Event

# Delivery order within one order and destination (see workers.delivery.claim: lower goes first).
SEQUENCE = {"pending_order": 0, "placed_order": 1, "ordered_product": 1, "fulfilled_order": 2,
            "cancelled_order": 3, "refunded_order": 4}


@dataclass
class NewEvent:
    name: str
    unique_id: str
    payload: dict[str, Any]
    occurred_at: datetime
    order_id: int | None = None
    contact_id: int | None = None
    historical: bool = False


@dataclass
class Target:
    """A destination as the outbox needs it: which event names it takes."""

    id: int
    mode: str
    accepts: frozenset[str]


def active_targets() -> list[Target]:
    """Enabled destinations (paused ones too: their events wait) and the events each takes."""
    from workers.destinations import get_adapter_class  # pure adapter metadata; no circle

    targets = []
    for destination in db.session.scalars(sa.select(Destination).where(Destination.enabled)).all():
        supported = get_adapter_class(destination.kind).supported_events
        wanted = set(destination.events or supported)
        targets.append(Target(destination.id, destination.mode, frozenset(wanted & supported)))
    return targets


def write_events(events: list[NewEvent], targets: list[Target]) -> set[int]:
    """Insert one row per target that takes the event; returns the ids of destinations that got rows."""
    rows = []
    for event in events:
        for target in targets:
            if event.name in target.accepts:
                rows.append({"destination_id": target.id, "name": event.name, "unique_id": event.unique_id,
                             "order_id": event.order_id, "contact_id": event.contact_id,
                             "payload": event.payload, "state": "pending",
                             "sequence": SEQUENCE.get(event.name, 0), "historical": event.historical,
                             "attempts": 0, "occurred_at": event.occurred_at, "created_at": _now(),
                             "next_attempt_at": _now()})
    if not rows:
        return set()
    dialect = db.engine.dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Event.__table__)
    statement = insert.on_conflict_do_nothing(index_elements=["destination_id", "name", "unique_id"])
    for start in range(0, len(rows), 1000):
        db.session.execute(statement, rows[start:start + 1000])
    return {row["destination_id"] for row in rows}


def _now() -> datetime:
    from webapp.models import utcnow

    return utcnow()
