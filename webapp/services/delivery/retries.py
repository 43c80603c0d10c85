"""What people do to deliveries: retry one event, retry a destination's failures, replay an order."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Event, Order, utcnow
from webapp.services.delivery.destinations import signal_delivery
from webapp.services.orders.rollup import refresh_delivery_state

RETRYABLE_STATES = ("rejected", "dead", "retrying")


def retry_event(event: Event) -> Event:
    """Make one event due now (a delivered one stays delivered: use replay to send it again)."""
    if event.state in ("delivered", "skipped", "in_flight"):
        raise ValueError(f"event is {event.state}; only failed or waiting events can be retried")
    event.state = "retrying" if event.attempts else "pending"
    event.next_attempt_at = utcnow()
    event.last_error = None if event.state == "pending" else event.last_error
    if event.order_id:
        refresh_delivery_state([event.order_id])
    db.session.commit()
    signal_delivery(event.destination_id)
    return event


def _failed_query(destination_id: int, since: datetime | None, until: datetime | None):  # noqa: ANN202
    query = sa.select(Event.id).where(Event.destination_id == destination_id,
                                      Event.state.in_(RETRYABLE_STATES))
    if since is not None:
        query = query.where(Event.created_at >= since)
    if until is not None:
        query = query.where(Event.created_at <= until)
    return query


def count_failed(destination_id: int, since: datetime | None = None, until: datetime | None = None) -> int:
    """How many events a bulk retry would touch (shown before the user confirms)."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(
        _failed_query(destination_id, since, until).subquery())) or 0


def retry_failed(destination_id: int, since: datetime | None = None, until: datetime | None = None) -> int:
    ids = list(db.session.scalars(_failed_query(destination_id, since, until)).all())
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        db.session.execute(sa.update(Event).where(Event.id.in_(chunk)).values(
            state="retrying", next_attempt_at=utcnow()).execution_options(synchronize_session=False))
        order_ids = db.session.scalars(sa.select(Event.order_id).where(
            Event.id.in_(chunk), Event.order_id.is_not(None)).distinct()).all()
        refresh_delivery_state(order_ids)
    db.session.commit()
    if ids:
        signal_delivery(destination_id)
    return len(ids)


def replay_order(order: Order, destination_id: int, *, new_unique_ids: bool = False) -> int:
    """Send an order's events to a destination again.

    With the same unique ids the platform de-duplicates (safe, e.g. to re-check a delivery); with
    `new_unique_ids` it counts them again, which is only right after the platform lost them.
    """
    events = db.session.scalars(sa.select(Event).where(
        Event.order_id == order.id, Event.destination_id == destination_id,
        ~Event.unique_id.contains(":replay-")).order_by(Event.sequence, Event.id)).all()
    if not events:
        raise ValueError("this order has no events for that destination")
    if any(not event.payload for event in events):
        raise ValueError("this order's event payloads were pruned (retention): it cannot be sent again")
    now = utcnow()
    if not new_unique_ids:
        for event in events:
            if event.state != "in_flight":
                event.state, event.next_attempt_at = ("retrying" if event.attempts else "pending"), now
    else:
        round_number = 1 + (db.session.scalar(sa.select(sa.func.count()).where(
            Event.order_id == order.id, Event.destination_id == destination_id,
            Event.unique_id.contains(":replay-"), Event.name == events[0].name)) or 0)
        for event in events:
            db.session.add(Event(
                destination_id=destination_id, name=event.name,
                unique_id=f"{event.unique_id}:replay-{round_number}", order_id=event.order_id,
                contact_id=event.contact_id, payload=event.payload, state="pending", sequence=event.sequence,
                historical=event.historical, attempts=0, occurred_at=event.occurred_at, created_at=now,
                next_attempt_at=now))
    db.session.flush()
    refresh_delivery_state([order.id])
    db.session.commit()
    signal_delivery(destination_id)
    return len(events)
