"""Consent in: the `consent_change` events of a contact's consent changes, from orders, checkouts and onsite.

Orders and checkouts call `consent_events` inside their own transaction; onsite identify (and any other
place a shopper says yes or no) calls `record_consent`, which does the whole thing in one transaction and
wakes delivery after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from webapp.models import utcnow
from webapp.services.contacts.consent import ConsentChange, consent_payload, consent_unique_id
from webapp.services.contacts.matching import contact_payload, upsert_contact
from webapp.services.orders.outbox import NewEvent, Target, active_targets, write_events
from webapp.services.platform import write_races


def consent_events(contact_id: int | None, contact: dict, changes: list[ConsentChange],
                   historical: bool = False) -> list[NewEvent]:
    """One event per changed channel, dated when the customer said it (Klaviyo's `consented_at` on imports)."""
    return [NewEvent("consent_change", consent_unique_id(contact_id, change), consent_payload(contact, change),
                     change.at, contact_id=contact_id, historical=historical)
            for change in changes]


@dataclass
class _Shopper:
    """The customer shape `upsert_contact` reads, for callers without an order."""

    id: str | None
    email: str | None
    phone: str | None
    first_name: str | None = None
    last_name: str | None = None
    accepts_marketing: bool | None = None
    accepts_sms_marketing: bool | None = None


def record_consent(*, email: str | None = None, phone: str | None = None, customer_id: str | None = None,
                   accepts_marketing: bool | None = None, accepts_sms_marketing: bool | None = None,
                   source: str = "onsite", at: datetime | None = None) -> list[str]:
    """Record what a shopper said about marketing outside an order (onsite identify, a sign-up form): the
    contact is found or created by its identifiers, and each changed channel becomes a `consent_change`
    event. `phone` must already be E.164 for SMS consent to count. Returns the event names written (none
    when nothing changed). Commits."""
    if not (email or phone or customer_id):
        raise ValueError("consent needs an email, a phone or a customer id to belong to")
    shopper = _Shopper(customer_id, email.strip().lower() if email else None, phone,
                       accepts_marketing=accepts_marketing, accepts_sms_marketing=accepts_sms_marketing)
    when = at or utcnow()

    def write() -> tuple[list[str], set[int], list[Target]]:
        targets = active_targets()
        change = upsert_contact(shopper, None, when, source=source)
        events = consent_events(change.contact.id, contact_payload(change.contact), change.consent_changes)
        return [event.name for event in events], write_events(events, targets), targets

    names, touched, targets = write_races.in_one_transaction(write)
    from webapp.services.orders.ingest import signal_destinations

    signal_destinations(touched, targets)
    return names
