"""One order's story for its dashboard page: status changes, anomalies, and every delivery attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from webapp.extensions import db
from webapp.models import DeliveryAttempt, Destination, Event, Order, utcnow
from webapp.services.orders.rollup import rollup

ACTIVE_STATES = ("pending", "in_flight", "retrying")  # the page keeps polling while any event is in one
RETRYABLE_STATES = ("pending", "retrying", "rejected", "dead")  # what retries.retry_event accepts


@dataclass(frozen=True)
class StatusStep:
    status: str
    at: datetime | None
    historical: bool


@dataclass(frozen=True)
class Anomaly:
    at: datetime | None
    message: str
    sent_status: str | None


@dataclass(frozen=True)
class EventView:
    event: Event
    attempts: list[DeliveryAttempt]

    @property
    def waiting(self) -> bool:
        """A next attempt is scheduled (shown as 'next retry')."""
        return self.event.state in ("pending", "retrying")

    @property
    def due_now(self) -> bool:
        """Waiting and already due (e.g. just retried): the next worker run sends it."""
        return self.waiting and self.event.next_attempt_at <= utcnow()

    @property
    def retryable(self) -> bool:
        return self.event.state in RETRYABLE_STATES

    @property
    def failed(self) -> bool:
        return self.event.state in ("retrying", "rejected", "dead")


@dataclass
class DestinationTimeline:
    destination: Destination
    events: list[EventView] = field(default_factory=list)

    @property
    def state(self) -> str:
        """The same worst-state-wins roll-up the orders list uses, for this destination only."""
        return rollup(view.event.state for view in self.events)

    @property
    def replayable_count(self) -> int:
        return sum(1 for view in self.events if ":replay-" not in view.event.unique_id)


@dataclass(frozen=True)
class OrderDeliveries:
    destinations: list[DestinationTimeline]

    @property
    def active(self) -> bool:
        return any(view.event.state in ACTIVE_STATES for d in self.destinations for view in d.events)


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def find_order(external_id: str) -> Order | None:
    return db.session.scalar(sa.select(Order).options(selectinload(Order.lines))
                             .where(Order.external_id == external_id))


def status_steps(order: Order) -> list[StatusStep]:
    return [StatusStep(str(step.get("status")), _time(step.get("at")), bool(step.get("historical")))
            for step in order.status_history or []]


def anomalies(order: Order) -> list[Anomaly]:
    return [Anomaly(_time(item.get("at")), str(item.get("message", "")), item.get("sent_status"))
            for item in order.anomalies or []]


def order_deliveries(order: Order) -> OrderDeliveries:
    """Events grouped per destination, each with its attempts and the HTTP request behind each attempt."""
    events = db.session.scalars(
        sa.select(Event).where(Event.order_id == order.id)
        .options(selectinload(Event.attempt_rows).selectinload(DeliveryAttempt.request),
                 selectinload(Event.destination))
        .order_by(Event.destination_id, Event.sequence, Event.id)).all()
    timelines: dict[int, DestinationTimeline] = {}
    for event in events:
        timeline = timelines.setdefault(event.destination_id, DestinationTimeline(event.destination))
        timeline.events.append(EventView(event, list(event.attempt_rows)))
    return OrderDeliveries(sorted(timelines.values(), key=lambda t: t.destination.name.lower()))


def event_view(event_id: int) -> EventView | None:
    event = db.session.scalar(sa.select(Event).where(Event.id == event_id).options(
        selectinload(Event.attempt_rows).selectinload(DeliveryAttempt.request), selectinload(Event.destination)))
    return EventView(event, list(event.attempt_rows)) if event is not None else None
