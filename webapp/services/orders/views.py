"""Serialising an order with its delivery state per destination (API and dashboard share it)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Destination, Event, Order
from webapp.services.platform.jsonutil import iso


def event_json(event: Event) -> dict[str, Any]:
    return {"id": event.id, "name": event.name, "unique_id": event.unique_id, "state": event.state,
            "attempts": event.attempts, "occurred_at": iso(event.occurred_at),
            "next_attempt_at": iso(event.next_attempt_at) if event.state in ("pending", "retrying") else None,
            "delivered_at": iso(event.delivered_at), "last_error": event.last_error,
            "historical": event.historical}


def order_json(order: Order) -> dict[str, Any]:
    """The canonical order as last received, plus what shoprelay did with it."""
    events = db.session.scalars(sa.select(Event).where(Event.order_id == order.id)
                                .order_by(Event.destination_id, Event.sequence, Event.id)).all()
    destination_ids = {event.destination_id for event in events}
    destinations = {d.id: d for d in db.session.scalars(
        sa.select(Destination).where(Destination.id.in_(destination_ids))).all()} if destination_ids else {}
    per_destination: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        per_destination.setdefault(event.destination_id, []).append(event_json(event))
    return {
        **order.data,
        "status": order.status,
        "delivery_state": order.delivery_state,
        "status_history": order.status_history,
        "anomalies": order.anomalies,
        "historical": order.historical,
        "received_at": iso(order.created_at),
        "updated_at": iso(order.updated_at),
        "destinations": [
            {"id": dest_id, "name": destinations[dest_id].name, "kind": destinations[dest_id].kind,
             "events": items}
            for dest_id, items in per_destination.items() if dest_id in destinations],
    }
