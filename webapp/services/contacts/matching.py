"""Contacts: matched by customer id, then email, then phone; merged when one order links two of them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Checkout, Contact, ContactLtv, Event, Order
from webapp.services.contacts import ltv
from webapp.services.contacts.consent import ConsentChange, apply_consent


@dataclass
class ContactChange:
    contact: Contact
    created: bool = False
    profile_changed: bool = False
    consent_changed: bool = False
    consent_changes: list[ConsentChange] = field(default_factory=list)
    merged_ids: tuple[int, ...] = ()


IDENTIFIERS = ("customer_id", "email", "phone")
_UNSAVED = 1 << 62  # sorts contacts created in this batch after every stored one, as their ids will


@dataclass
class _Customer:
    id: str | None
    email: str | None
    phone: str | None


class ContactBook:
    """The contacts a batch of orders can touch, loaded with one query and indexed in memory.

    Matching then costs no query per order and sees contacts created or changed earlier in the same
    batch. The index may hold stale entries (a value moved away); lookups re-check the current value.
    """

    def __init__(self) -> None:
        self._index: dict[str, dict[str, list[Contact]]] = {name: {} for name in IDENTIFIERS}
        self._unsaved: dict[int, int] = {}  # id(contact) -> creation order, for contacts without an id yet

    @classmethod
    def load(cls, customers: list[Any]) -> ContactBook:
        """Every stored contact (merged-away ones too) holding an identifier of these customers."""
        book = cls()
        values = {name: sorted({v for c in customers if (v := getattr(c, "id" if name == "customer_id" else name))})
                  for name in IDENTIFIERS}
        present = tuple(name for name, found in values.items() if found)
        if present:
            params = {name: values[name] for name in present}
            for contact in db.session.scalars(_holders_query(present), params).all():
                book.add(contact)
            book._load_merge_targets()
        return book

    def _load_merge_targets(self) -> None:
        """Bring the contacts that merged-away matches point at into the session (one query per hop)."""
        wanted = {c.merged_into_id for entries in self._index.values() for found in entries.values()
                  for c in found if c.merged_into_id is not None}
        seen: set[int] = set()
        while wanted - seen:
            batch = sorted(wanted - seen)
            seen |= wanted
            loaded = db.session.scalars(sa.select(Contact).where(Contact.id.in_(batch))
                                        .order_by(Contact.id).with_for_update()).all()
            wanted = {c.merged_into_id for c in loaded if c.merged_into_id is not None}

    def add(self, contact: Contact) -> None:
        """Index the contact under its current identifiers (call again after changing them)."""
        if contact.id is None and id(contact) not in self._unsaved:
            self._unsaved[id(contact)] = len(self._unsaved)
        for name in IDENTIFIERS:
            value = getattr(contact, name)
            if value:
                found = self._index[name].setdefault(value, [])
                if contact not in found:
                    found.append(contact)

    def holders(self, name: str, value: str, besides: Contact) -> list[Contact]:
        """Contacts other than `besides` that hold `value` in column `name` right now."""
        return [c for c in self._index[name].get(value, ()) if c is not besides and getattr(c, name) == value]

    def find(self, customer_id: str | None, email: str | None, phone: str | None) -> list[Contact]:
        """Every distinct live contact any identifier points at, best match (customer id) first."""
        found: list[Contact] = []
        for name, value in (("customer_id", customer_id), ("email", email), ("phone", phone)):
            if not value:
                continue
            candidates = [c for c in self._index[name].get(value, ()) if getattr(c, name) == value]
            if not candidates:
                continue
            contact = live(min(candidates, key=self._rank))
            if contact not in found:
                found.append(contact)
        return found

    def _rank(self, contact: Contact) -> tuple[bool, int]:
        # The stored query's order: live before merged-away, then oldest (lowest id) first.
        return contact.merged_into_id is not None, (
            contact.id if contact.id is not None else _UNSAVED + self._unsaved.get(id(contact), 0))


@cache
def _holders_query(names: tuple[str, ...]) -> sa.Select:
    """Contacts holding any of the listed values of these identifiers (built once per combination).

    Locked, in id order: a concurrent request for the same contact waits until this one has written
    its LTV and summary, then reads them (webapp.services.platform.write_races).
    """
    return (sa.select(Contact).where(sa.or_(*(getattr(Contact, name).in_(sa.bindparam(name, expanding=True))
                                              for name in names)))
            .order_by(Contact.id).with_for_update())


def live(contact: Contact) -> Contact:
    """Follow merges to the contact that absorbed this one (identity map hits when preloaded)."""
    while contact.merged_into_id is not None:
        contact = db.session.get(Contact, contact.merged_into_id)
    return contact


def find_contact(customer_id: str | None, email: str | None, phone: str | None) -> list[Contact]:
    """Every distinct live contact any identifier points at, best match (customer id) first."""
    customer = _Customer(customer_id, email, phone)
    return ContactBook.load([customer]).find(customer_id, email, phone)


def upsert_contact(customer: Any, address: dict[str, Any] | None, at: datetime,
                   book: ContactBook | None = None, source: str = "order") -> ContactChange:
    """Create or update the contact of an order's `customer`; merge contacts it proves are one person.

    With a `book` (a batch) nothing is flushed unless an identifier moves between contacts or contacts
    merge; new contacts get their ids at the caller's next flush. Without one the contact is flushed.
    `source` says where its consent came from (webapp.services.contacts.consent.SOURCES).
    """
    standalone = book is None
    book = book or ContactBook.load([customer])
    matches = book.find(customer.id, customer.email, customer.phone)
    if not matches:
        contact = Contact(customer_id=customer.id, email=customer.email, phone=customer.phone)
        db.session.add(contact)
        change = ContactChange(contact, created=True)
    else:
        contact = matches[0]
        change = ContactChange(contact)
        for other in matches[1:]:
            merge_contacts(contact, other)
        change.merged_ids = tuple(other.id for other in matches[1:])
    book.add(contact)
    for name in IDENTIFIERS:
        value = getattr(customer, name if name != "customer_id" else "id")
        if value and getattr(contact, name) != value:
            if name != "phone":  # unique: another row (maybe merged-away) may still hold it
                holders = book.holders(name, value, besides=contact)
                for holder in holders:
                    setattr(holder, name, None)
                if holders:
                    db.session.flush()  # the old holder lets go before the new one takes it
            setattr(contact, name, value)
            book.add(contact)
    for name in ("first_name", "last_name"):
        value = getattr(customer, name)
        if value:
            setattr(contact, name, value)
    if address:
        contact.address = address
    said = {"email": customer.accepts_marketing, "sms": getattr(customer, "accepts_sms_marketing", None)}
    change.consent_changes = apply_consent(contact, said, at, source)
    change.consent_changed = bool(change.consent_changes)
    fingerprint = profile_fingerprint(contact)
    if fingerprint != contact.profile_fingerprint:
        contact.profile_fingerprint = fingerprint
        change.profile_changed = True
    if standalone:
        db.session.flush()
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
            "accepts_marketing": contact.accepts_marketing,
            "accepts_sms_marketing": contact.accepts_sms_marketing, "address": contact.address}
