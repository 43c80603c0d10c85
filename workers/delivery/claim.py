"""Claiming due events safely with many workers.

Each claim is one UPDATE ... WHERE id IN (picked ids) RETURNING statement that both picks and leases the
rows and hands back everything the adapter needs (no second SELECT, no ORM objects). Candidates come
from the partial index `ix_events_claim` in (next_attempt_at, id) order, so a round costs the same with a
backlog of 100 or 1,000,000 events. On PostgreSQL the candidate select uses FOR UPDATE SKIP LOCKED, so
concurrent workers take disjoint sets without waiting; SQLite has a single writer, so the statement
itself is the lock. A worker that dies leaves `in_flight` rows whose lease runs out; a separate, cheap
statement claims those again (the unique id makes a resend harmless).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import aliased

from webapp.extensions import db
from webapp.models import Event

RETRYABLE = ("pending", "retrying")
BLOCKING = ("pending", "retrying", "in_flight")
# Candidates read per round beyond the limit, so a few blocked lifecycle events at the head of the
# queue do not shrink the batch.
CANDIDATE_FACTOR = 2


@dataclass(slots=True)
class ClaimedEvent:
    """A leased outbox row as the engine needs it (plain values: commits never reload anything)."""

    id: int
    name: str
    unique_id: str
    order_id: int | None
    payload: dict[str, Any]
    occurred_at: datetime
    historical: bool
    attempts: int
    created_at: datetime
    sequence: int


_RETURNED = (Event.id, Event.name, Event.unique_id, Event.order_id, sa.cast(Event.payload, sa.Text),
             Event.occurred_at, Event.historical, Event.attempts, Event.created_at, Event.sequence)


def ids_match(column: Any, ids: list[int]):  # noqa: ANN201
    """`column IN ids`; on PostgreSQL one array parameter, so a 1,000-id statement stays short and its
    parsed form is cached by psycopg (a 1,000-placeholder IN list is re-parsed every time)."""
    if db.engine.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(ids), type_=ARRAY(sa.BigInteger)))
    return column.in_(list(ids))


def due_condition(now: datetime):  # noqa: ANN201
    """Rows a worker may take now: due pending/retrying rows and in-flight rows whose lease ran out."""
    return sa.or_(_due_retryable(now), _lease_expired(now))


def _due_retryable(now: datetime):  # noqa: ANN202
    return sa.and_(Event.state.in_(RETRYABLE), Event.next_attempt_at <= now)


def _lease_expired(now: datetime):  # noqa: ANN202
    return sa.and_(Event.state == "in_flight", Event.lease_until < now)


def _not_blocked(row: Any = Event):  # noqa: ANN202
    """Fulfilled/Cancelled/Refunded wait until the earlier events of their order (Placed Order) settle."""
    earlier = aliased(Event)
    return ~sa.exists().where(
        earlier.destination_id == row.destination_id,
        earlier.order_id == row.order_id,
        earlier.sequence < row.sequence,
        earlier.state.in_(BLOCKING),
    )


def _locked(select: sa.Select) -> sa.Select:
    """Row locks that other workers skip instead of waiting for (PostgreSQL; SQLite has one writer)."""
    return select.with_for_update(skip_locked=True) if db.engine.dialect.name == "postgresql" else select


def _indexed_pick(destination_id: int, limit: int, now: datetime) -> sa.Select:
    """The first due rows by index order, then the blocked ones dropped: O(limit), not O(backlog)."""
    candidates = _locked(
        sa.select(Event.id, Event.destination_id, Event.order_id, Event.sequence, Event.next_attempt_at)
        .where(Event.destination_id == destination_id, _due_retryable(now))
        .order_by(Event.next_attempt_at, Event.id)
        .limit(limit * CANDIDATE_FACTOR)).subquery("candidates")
    return (sa.select(candidates.c.id).where(_not_blocked(candidates.c))
            .order_by(candidates.c.next_attempt_at, candidates.c.id).limit(limit))


def _full_pick(destination_id: int, limit: int, now: datetime) -> sa.Select:
    """Every due row checked for blocking: only needed when the head of the queue is all blocked."""
    return _locked(sa.select(Event.id)
                   .where(Event.destination_id == destination_id, _due_retryable(now), _not_blocked())
                   .order_by(Event.next_attempt_at, Event.id).limit(limit))


def _expired_pick(destination_id: int, limit: int, now: datetime) -> sa.Select:
    """In-flight rows of a dead worker (served by ix_events_due: few rows, rarely any)."""
    return _locked(sa.select(Event.id)
                   .where(Event.destination_id == destination_id, _lease_expired(now), _not_blocked())
                   .order_by(Event.id).limit(limit))


def _lease(pick: sa.Select, still: Any, worker_id: str, lease_until: datetime) -> list[ClaimedEvent]:
    rows = db.session.execute(
        sa.update(Event)
        .where(Event.id.in_(pick.scalar_subquery()), still)
        .values(state="in_flight", lease_until=lease_until, leased_by=worker_id)
        .returning(*_RETURNED)
        .execution_options(synchronize_session=False)).all()
    return [ClaimedEvent(row[0], row[1], row[2], row[3], orjson.loads(row[4]), *row[5:]) for row in rows]


def claim_due(destination_id: int, limit: int, worker_id: str, lease_seconds: float,
              now: datetime) -> list[ClaimedEvent]:
    """Lease up to `limit` due events of one destination, in (sequence, id) order; one short transaction."""
    lease_until = now + timedelta(seconds=lease_seconds)
    claimed = _lease(_expired_pick(destination_id, limit, now), _lease_expired(now), worker_id, lease_until)
    if len(claimed) < limit:
        left = limit - len(claimed)
        fresh = _lease(_indexed_pick(destination_id, left, now), _due_retryable(now), worker_id, lease_until)
        if not fresh:
            fresh = _lease(_full_pick(destination_id, left, now), _due_retryable(now), worker_id, lease_until)
        claimed += fresh
    db.session.commit()
    claimed.sort(key=lambda event: (event.sequence, event.id))
    return claimed


def release(events: list[ClaimedEvent], *, not_before: datetime | None = None) -> None:
    """Hand claimed but unsent events back (no attempt counted), optionally not before a time."""
    if not events:
        return
    values: dict = {"lease_until": None, "leased_by": None}
    if not_before is not None:
        values["next_attempt_at"] = not_before
    for state in ("pending", "retrying"):
        ids = [e.id for e in events if (e.attempts == 0) == (state == "pending")]
        if ids:
            db.session.execute(sa.update(Event).where(ids_match(Event.id, ids), Event.state == "in_flight")
                               .values(state=state, **values).execution_options(synchronize_session=False))
    db.session.commit()
