"""Started checkouts (server-side) and their abandonment when no order follows in time."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from webapp.extensions import db
from webapp.models import Checkout, Order, utcnow
from webapp.schemas.canonical.checkouts import CanonicalCheckout, checkout_json
from webapp.services.contacts.matching import contact_payload, upsert_contact
from webapp.services.orders.consent import consent_events
from webapp.services.orders.ingest import signal_destinations
from webapp.services.orders.outbox import NewEvent, Target, active_targets, write_events
from webapp.services.platform import write_races


def record_checkout(incoming: CanonicalCheckout) -> tuple[Checkout, bool]:
    """Upsert a checkout; the first time it is seen emits Started Checkout (write_races: a concurrent
    request creating the same checkout or contact makes this one run again and find theirs)."""
    checkout, created, touched, targets = write_races.in_one_transaction(lambda: _record(incoming))
    signal_destinations(touched, targets)
    return checkout, created


def _record(incoming: CanonicalCheckout) -> tuple[Checkout, bool, set[int], list[Target]]:
    targets = active_targets()
    checkout = db.session.scalar(sa.select(Checkout).where(Checkout.external_id == incoming.id))
    created = checkout is None
    change = upsert_contact(incoming.customer, None, incoming.started_at, source="checkout")
    data = checkout_json(incoming)
    if created:
        checkout = Checkout(external_id=incoming.id, started_at=incoming.started_at)
        db.session.add(checkout)
    checkout.contact_id, checkout.email, checkout.data = change.contact.id, incoming.customer.email, data
    db.session.flush()
    contact = contact_payload(change.contact)
    events = consent_events(change.contact.id, contact, change.consent_changes)
    if created:
        events.append(NewEvent("started_checkout", incoming.id, {"checkout": data, "contact": contact},
                               incoming.started_at, contact_id=change.contact.id))
    touched = write_events(events, targets)
    return checkout, created, touched, targets


def detect_abandoned(now: datetime | None = None) -> int:
    """Checkouts older than the delay with no order from the same contact since: Abandoned Checkout."""
    now = now or utcnow()
    cutoff = now - timedelta(minutes=current_app.config["ABANDONED_CHECKOUT_MINUTES"])
    targets = active_targets()
    candidates = db.session.scalars(sa.select(Checkout).where(
        Checkout.abandoned_at.is_(None), Checkout.completed_order_id.is_(None),
        Checkout.started_at <= cutoff).limit(5000)).all()
    touched: set[int] = set()
    abandoned = 0
    for checkout in candidates:
        completed = db.session.scalar(sa.select(Order.external_id).where(
            Order.contact_id == checkout.contact_id, Order.placed_at >= checkout.started_at).limit(1))
        if completed:
            checkout.completed_order_id = completed
            continue
        checkout.abandoned_at = now
        touched |= write_events([NewEvent("abandoned_checkout", checkout.external_id,
                                          {"checkout": checkout.data, "contact": {
                                              "email": checkout.email, "customer_id": checkout.data.get(
                                                  "customer", {}).get("id")}},
                                          now, contact_id=checkout.contact_id)], targets)
        abandoned += 1
    db.session.commit()
    signal_destinations(touched, targets)
    return abandoned
