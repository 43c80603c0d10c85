"""Read-side of the destinations pages: per-state event counts, failing events, the request log.

Counts read the backlog's rows over the (destination_id, state, ...) index and the delivery counters for
everything settled, for all destinations at once; the request log pages by keyset on the id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import DeliveryRequest, Destination, Event, Order
from webapp.models.delivery import EVENT_STATES
from webapp.services.delivery import counters as delivery_counters
from webapp.services.delivery.retries import RETRYABLE_STATES
from webapp.services.platform.keyset import Page, SortKey, paginate

# The states the list shows as columns; in_flight counts as pending there (it is being sent right now).
LIST_STATES = ("pending", "retrying", "delivered", "rejected", "dead")
REQUESTS_PER_PAGE = 25
FAILED_EVENTS_SHOWN = 20


@dataclass(frozen=True)
class DestinationRow:
    destination: Destination
    label: str
    counts: dict[str, int]
    rate_limited_until: datetime | None = None

    @property
    def failing(self) -> int:
        return self.counts.get("rejected", 0) + self.counts.get("dead", 0)


@dataclass(frozen=True)
class FailedEvent:
    event: Event
    order_external_id: str | None


def kind_label(kind: str) -> str:
    from webapp.services.delivery.destinations import kinds

    cls = kinds().get(kind)
    return cls.label if cls is not None else kind


def event_counts(destination_ids: list[int]) -> dict[int, dict[str, int]]:
    """{destination id: {state: count}} with every state present (zeros included), pruned events too.

    The states retention keeps are counted from their rows (an index range each: the backlog, not the
    history); delivered and skipped come from the counters, which pruning never lowers — so the list and
    the destination page cost the same at ten million events as at ten thousand."""
    result = {destination_id: dict.fromkeys(EVENT_STATES, 0) for destination_id in destination_ids}
    if not destination_ids:
        return result
    for destination_id, states in delivery_counters.state_counts(destination_ids).items():
        result[destination_id].update(states)
    return result


def list_counts(counts: dict[str, int]) -> dict[str, int]:
    """The list's five columns: pending includes in-flight events."""
    shown = {state: counts.get(state, 0) for state in LIST_STATES}
    shown["pending"] += counts.get("in_flight", 0)
    return shown


def destination_rows() -> list[DestinationRow]:
    from webapp.services.delivery.destinations import rate_limited_until

    destinations = db.session.scalars(sa.select(Destination).order_by(Destination.name, Destination.id)).all()
    counts = event_counts([d.id for d in destinations])
    return [DestinationRow(d, kind_label(d.kind), list_counts(counts[d.id]), rate_limited_until(d))
            for d in destinations]


def failed_events(destination_id: int, limit: int = FAILED_EVENTS_SHOWN) -> list[FailedEvent]:
    """The newest events that did not get through (rejected, dead, or waiting for a retry).

    One LIMIT query per state, each a backwards range of ix_events_dest_state, merged: a single
    `state IN (...) ORDER BY id DESC` read every dead letter of the destination before it could sort."""
    newest: list[int] = []
    for state in RETRYABLE_STATES:
        newest += db.session.scalars(sa.select(Event.id).where(
            Event.destination_id == destination_id, Event.state == state)
            .order_by(Event.id.desc()).limit(limit)).all()
    newest = sorted(newest, reverse=True)[:limit]
    if not newest:
        return []
    rows = db.session.execute(
        sa.select(Event, Order.external_id).outerjoin(Order, Order.id == Event.order_id)
        .where(Event.id.in_(newest)).order_by(Event.id.desc())).all()
    return [FailedEvent(event, external_id) for event, external_id in rows]


def failed_event(event_id: int) -> FailedEvent | None:
    row = db.session.execute(
        sa.select(Event, Order.external_id).outerjoin(Order, Order.id == Event.order_id)
        .where(Event.id == event_id)).first()
    return FailedEvent(row[0], row[1]) if row else None


def request_log(destination_id: int, *, after: int | None = None, before: int | None = None,
                limit: int = REQUESTS_PER_PAGE) -> Page:
    """Newest first, keyset-paginated on the id (ids grow with time)."""
    query = sa.select(DeliveryRequest).where(DeliveryRequest.destination_id == destination_id)
    return paginate(query, SortKey(DeliveryRequest.id, descending=True), DeliveryRequest.id,
                    after=after, before=before, limit=limit)


def parse_utc_local(value: str | None) -> datetime | None:
    """A `datetime-local` input value (read as UTC) → aware datetime; '' → None; bad input → ValueError."""
    if not value or not value.strip():
        return None
    parsed = datetime.fromisoformat(value.strip())
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
