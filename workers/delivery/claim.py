"""Claiming due events safely with many workers.

One UPDATE ... WHERE id IN (due ids) RETURNING statement both picks and leases the rows. On PostgreSQL the
inner select uses FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint sets without waiting; SQLite
has a single writer, so the statement itself is the lock. A worker that dies leaves `in_flight` rows whose
lease runs out; they become claimable again (the unique id makes a resend harmless).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from webapp.extensions import db
from webapp.models import Event

RETRYABLE = ("pending", "retrying")
BLOCKING = ("pending", "retrying", "in_flight")


def due_condition(now: datetime):  # noqa: ANN201
    """Rows a worker may take now: due pending/retrying rows and in-flight rows whose lease ran out."""
    return sa.or_(
        sa.and_(Event.state.in_(RETRYABLE), Event.next_attempt_at <= now),
        sa.and_(Event.state == "in_flight", Event.lease_until < now),
    )


def _not_blocked():  # noqa: ANN202
    """A lifecycle event waits until the earlier events of its order (Placed Order) are settled."""
    earlier = aliased(Event)
    return ~sa.exists().where(
        earlier.destination_id == Event.destination_id,
        earlier.order_id == Event.order_id,
        earlier.sequence < Event.sequence,
        earlier.state.in_(BLOCKING),
    )


def claim_due(destination_id: int, limit: int, worker_id: str, lease_seconds: float,
              now: datetime) -> list[Event]:
    due = (sa.select(Event.id)
           .where(Event.destination_id == destination_id, due_condition(now), _not_blocked())
           .order_by(Event.next_attempt_at, Event.id)
           .limit(limit))
    if db.engine.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    lease_until = now + timedelta(seconds=lease_seconds)
    ids = db.session.scalars(
        sa.update(Event)
        .where(Event.id.in_(due.scalar_subquery()), due_condition(now))
        .values(state="in_flight", lease_until=lease_until, leased_by=worker_id)
        .returning(Event.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    if not ids:
        return []
    return list(db.session.scalars(
        sa.select(Event).where(Event.id.in_(ids)).order_by(Event.sequence, Event.id)).all())


def release(events: list[Event], *, not_before: datetime | None = None) -> None:
    """Hand claimed but unsent events back (no attempt counted), optionally not before a time."""
    if not events:
        return
    values: dict = {"lease_until": None, "leased_by": None}
    if not_before is not None:
        values["next_attempt_at"] = not_before
    for state in ("pending", "retrying"):
        ids = [e.id for e in events if (e.attempts == 0) == (state == "pending")]
        if ids:
            db.session.execute(sa.update(Event).where(Event.id.in_(ids), Event.state == "in_flight")
                               .values(state=state, **values).execution_options(synchronize_session=False))
    db.session.commit()
