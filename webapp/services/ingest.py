"""Orders in: upsert each order, its contact and LTV, and derive its events, all in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from webapp.extensions import db
from webapp.models import Contact, Order, OrderLine, utcnow
from webapp.schemas.orders import CanonicalOrder, line_keys, order_to_canonical_json
from webapp.services import ltv, order_state
from webapp.services.contacts import ContactChange, contact_payload, upsert_contact
from webapp.services.outbox import NewEvent, Target, active_targets, write_events


@dataclass
class OrderResult:
    id: str
    created: bool
    status: str
    events: list[str] = field(default_factory=list)
    anomaly: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "result": "created" if self.created else "updated", "status": self.status,
                "events": self.events, "anomaly": self.anomaly}


def ingest_orders(orders: list[CanonicalOrder], *, historical: bool = False) -> list[OrderResult]:
    """Store a validated batch atomically, then signal delivery (Redis down = the sweeper catches up)."""
    targets = active_targets()
    existing = {order.external_id: order for order in db.session.scalars(
        sa.select(Order).where(Order.external_id.in_([o.id for o in orders]))).all()}
    results: list[OrderResult] = []
    events: list[NewEvent] = []
    contacts: dict[int, Contact] = {}
    try:
        for incoming in orders:
            result, order, order_events = _ingest_one(incoming, existing.get(incoming.id), historical)
            results.append(result)
            events += order_events
            contacts[order.contact_id] = order.contact
            if any(event.name in target.accepts for event in order_events for target in targets):
                order.delivery_state = "pending"
        # Once per batch, not per order: one executemany for the outbox, one summary per contact.
        touched = write_events(events, targets)
        for contact in contacts.values():
            ltv.refresh_contact_summary(contact)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    signal_destinations(touched, targets)
    return results


def signal_destinations(destination_ids: set[int], targets: list[Target]) -> None:
    from workers.queue import JOB_DELIVER, deliver_signal_key, safe_signal

    realtime = {t.id for t in targets if t.mode == "realtime"}
    for destination_id in destination_ids & realtime:
        safe_signal(current_app.config.get("REDIS_URL"), "delivery", JOB_DELIVER,
                    deliver_signal_key(destination_id), destination_id)


def _ingest_one(incoming: CanonicalOrder, order: Order | None,
                historical: bool) -> tuple[OrderResult, Order, list[NewEvent]]:
    now = utcnow()
    previous = order_state.OrderSnapshot.from_json(order.derived) if order is not None and order.derived else None
    derivation = order_state.derive(previous, incoming.status, incoming.refunded_amount)
    old_contribution = ltv.order_contribution(order) if order is not None else ltv.Contribution()
    old_contact_id = order.contact_id if order is not None else None
    old_currency = order.currency if order is not None else None

    address = _address_json(incoming.billing_address or incoming.shipping_address)
    change = upsert_contact(incoming.customer, address, incoming.placed_at)
    created = order is None
    if created:
        order = Order(external_id=incoming.id, status_history=[], anomalies=[], historical=historical)
        db.session.add(order)
    _apply_fields(order, incoming, derivation.applied_status, change.contact.id)
    order.historical = order.historical or historical
    order.derived = derivation.new_snapshot.to_json()
    if previous is None or derivation.applied_status != previous.status:
        order.status_history = [*order.status_history,
                                {"status": derivation.applied_status, "at": now.isoformat(),
                                 "historical": historical}]
    if derivation.anomaly:
        order.anomalies = [*order.anomalies, {"at": now.isoformat(), "message": derivation.anomaly,
                                              "sent_status": incoming.status}]
    keys = line_keys(incoming.items)
    _replace_lines(order, incoming, keys)
    db.session.flush()

    _update_ltv(order, old_contact_id, old_currency, old_contribution)
    events = _order_events(order, incoming, keys, derivation, change, historical)
    events += _contact_events(change, now, historical)
    return (OrderResult(incoming.id, created, derivation.applied_status, [e.name for e in events],
                        derivation.anomaly), order, events)


def _apply_fields(order: Order, incoming: CanonicalOrder, status: str, contact_id: int) -> None:
    order.contact_id = contact_id
    order.status = status
    order.currency = incoming.currency
    order.total = incoming.total
    order.subtotal, order.tax, order.shipping = incoming.subtotal, incoming.tax, incoming.shipping
    order.discount_code = incoming.discount.code if incoming.discount else None
    order.discount_value = incoming.discount.value if incoming.discount else None
    order.email = incoming.customer.email
    order.placed_at = incoming.placed_at
    order.fulfilled_at, order.cancelled_at = incoming.fulfilled_at, incoming.cancelled_at
    order.refunded_at, order.reason = incoming.refunded_at, incoming.reason
    if status in order_state.REFUND_STATUSES:
        order.refunded_amount = incoming.refunded_amount
    order.data = order_to_canonical_json(incoming)


def _replace_lines(order: Order, incoming: CanonicalOrder, keys: list[str]) -> None:
    current = {line.line_key: line for line in order.lines}
    wanted = []
    for key, item in zip(keys, incoming.items, strict=True):
        line = current.get(key) or OrderLine(line_key=key)
        line.product_id, line.sku, line.name = item.product_id, item.sku, item.name
        line.quantity, line.price, line.total = item.quantity, item.price, item.total
        line.url, line.image_url, line.categories, line.brand = item.url, item.image_url, item.categories, item.brand
        wanted.append(line)
    order.lines = wanted


def _update_ltv(order: Order, old_contact_id: int | None, old_currency: str | None,
                old: ltv.Contribution) -> None:
    new = ltv.order_contribution(order)
    if old_contact_id and (old_contact_id != order.contact_id or old_currency != order.currency):
        ltv.apply_delta(old_contact_id, old_currency, ltv.Contribution().minus(old))
        old = ltv.Contribution()
    ltv.apply_delta(order.contact_id, order.currency, new.minus(old))


def _order_events(order: Order, incoming: CanonicalOrder, keys: list[str], derivation: Any,
                  change: ContactChange, historical: bool) -> list[NewEvent]:
    payload = {"order": order.data, "contact": contact_payload(change.contact)}
    times = {"placed_order": incoming.placed_at, "ordered_product": incoming.placed_at,
             "pending_order": incoming.placed_at, "fulfilled_order": incoming.fulfilled_at,
             "cancelled_order": incoming.cancelled_at, "refunded_order": incoming.refunded_at}
    events = []
    for name in derivation.events:
        when: datetime = times.get(name) or utcnow()
        common = {"occurred_at": when, "order_id": order.id, "contact_id": order.contact_id,
                  "historical": historical}
        if name == "ordered_product":
            for key, line in zip(keys, order.data["items"], strict=True):
                events.append(NewEvent(name, f"{order.external_id}:{key}",
                                       payload | {"line": line | {"line_key": key}}, **common))
        elif name == "refunded_order":
            unique = order_state.refund_unique_id(order.external_id, derivation.refund_sequence or 1)
            events.append(NewEvent(name, unique, payload, **common))
        else:
            events.append(NewEvent(name, order.external_id, payload, **common))
    return events


def _contact_events(change: ContactChange, now: datetime, historical: bool) -> list[NewEvent]:
    contact = change.contact
    payload = {"contact": contact_payload(contact)}
    events = []
    if change.profile_changed:
        events.append(NewEvent("profile_upsert", f"{contact.id}:{contact.profile_fingerprint}", payload, now,
                               contact_id=contact.id, historical=historical))
    if change.consent_changed:
        stamp = (contact.consent_changed_at or now).isoformat()
        value = "subscribed" if contact.accepts_marketing else "unsubscribed"
        events.append(NewEvent("consent_change", f"{contact.id}:{value}:{stamp}", payload, now,
                               contact_id=contact.id, historical=historical))
    return events


def _address_json(address: Any) -> dict[str, Any] | None:
    if address is None:
        return None
    data = address.model_dump(mode="json", exclude_none=True)
    return data or None


