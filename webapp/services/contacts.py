"""Contacts: matched by customer id, then email, then phone; merged when one order links two of them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Checkout, Contact, ContactLtv, Event, Order
from webapp.services import ltv


@dataclass
class ContactChange:
    contact: Contact
    created: bool = False
    profile_changed: bool = False
    consent_changed: bool = False
    merged_ids: tuple[int, ...] = ()


def find_contact(customer_id: str | None, email: str | None, phone: str | None) -> list[Contact]:
    """Every distinct live contact any identifier points at, best match (customer id) first."""
    found: list[Contact] = []
    for column, value in ((Contact.customer_id, customer_id), (Contact.email, email), (Contact.phone, phone)):
        if not value:
            continue
        contact = db.session.scalars(sa.select(Contact).where(column == value)
                                     .order_by(Contact.merged_into_id.is_not(None), Contact.id).limit(1)).first()
        while contact is not None and contact.merged_into_id is not None:  # follow merges
            contact = db.session.get(Contact, contact.merged_into_id)
        if contact is not None and contact not in found:
            found.append(contact)
    return found


def upsert_contact(customer: Any, address: dict[str, Any] | None, at: datetime) -> ContactChange:
    """Create or update the contact of an order's `customer`; merge contacts it proves are one person."""
    matches = find_contact(customer.id, customer.email, customer.phone)
    if not matches:
        contact = Contact(customer_id=customer.id, email=customer.email, phone=customer.phone)
        db.session.add(contact)
        db.session.flush()
        change = ContactChange(contact, created=True)
    else:
        contact = matches[0]
        change = ContactChange(contact)
        for other in matches[1:]:
            merge_contacts(contact, other)
        change.merged_ids = tuple(other.id for other in matches[1:])
    for name in ("customer_id", "email", "phone"):
        value = getattr(customer, name if name != "customer_id" else "id")
        if value and getattr(contact, name) != value:
            if name != "phone":  # unique: a merged-away row may still hold it
                column = getattr(Contact, name)
                db.session.execute(sa.update(Contact).where(column == value, Contact.id != contact.id)
                                   .values({name: None}).execution_options(synchronize_session="fetch"))
            setattr(contact, name, value)
    for name in ("first_name", "last_name"):
        value = getattr(customer, name)
        if value:
            setattr(contact, name, value)
    if address:
        contact.address = address
    if customer.accepts_marketing is not None and customer.accepts_marketing != contact.accepts_marketing:
        change.consent_changed = contact.accepts_marketing is not None or customer.accepts_marketing
        contact.accepts_marketing = customer.accepts_marketing
        contact.consent_changed_at = at
    fingerprint = profile_fingerprint(contact)
    if fingerprint != contact.profile_fingerprint:
        contact.profile_fingerprint = fingerprint
        change.profile_changed = True
    return change


def merge_contacts(keep: Contact, other: Contact) -> None:
    """Fold `other` into `keep`: its orders, checkouts and events move over; LTV is rebuilt for `keep`."""
    for column in ("customer_id", "email", "phone"):
        value = getattr(other, column)
        if value and not getattr(keep, column):
            setattr(other, column, None)  # unique columns move; others stay and resolve via merged_into_id
            db.session.flush()
            setattr(keep, column, value)
    for name in ("first_name", "last_name", "address"):
        if not getattr(keep, name) and getattr(other, name):
            setattr(keep, name, getattr(other, name))
    db.session.flush()
    for model in (Order, Checkout, Event):
        db.session.execute(sa.update(model).where(model.contact_id == other.id).values(contact_id=keep.id)
                           .execution_options(synchronize_session=False))
    for row in db.session.scalars(sa.select(ContactLtv).where(ContactLtv.contact_id == other.id)).all():
        ltv.apply_delta(keep.id, row.currency, ltv.Contribution(
            row.placed, row.cancelled, row.refunded, row.orders, row.fulfilled_orders, row.fulfilled_value))
        db.session.delete(row)
    other.merged_into_id = keep.id
    other.orders_count = 0
    other.ltv_primary = ltv.ZERO
    db.session.flush()


def profile_fingerprint(contact: Contact) -> str:
    """Changes only when something a platform's profile shows changes (so re-sends send nothing)."""
    data = [contact.email, contact.phone, contact.customer_id, contact.first_name, contact.last_name,
            contact.address]
    return hashlib.blake2b(json.dumps(data, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def contact_payload(contact: Contact) -> dict[str, Any]:
    """The contact as events carry it (see workers.destinations.base.OutboundEvent)."""
    return {"customer_id": contact.customer_id, "email": contact.email, "phone": contact.phone,
            "first_name": contact.first_name, "last_name": contact.last_name,
            "accepts_marketing": contact.accepts_marketing, "address": contact.address}
