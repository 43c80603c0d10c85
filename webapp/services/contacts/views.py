"""Serialising a contact with its LTV summary (the `GET /api/v1/contacts/<email>` contract)."""

from __future__ import annotations

from typing import Any

from webapp.models import Contact
from webapp.services.contacts.consent import consent_state
from webapp.services.contacts.ltv import ltv_json
from webapp.services.platform.jsonutil import iso


def rfm_json(contact: Contact) -> dict[str, Any] | None:
    if contact.rfm_segment is None:
        return None
    return {"recency": contact.rfm_recency, "frequency": contact.rfm_frequency,
            "monetary": contact.rfm_monetary, "segment": contact.rfm_segment}


def contact_json(contact: Contact) -> dict[str, Any]:
    return {
        "email": contact.email,
        "customer_id": contact.customer_id,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "accepts_marketing": contact.accepts_marketing,
        "accepts_sms_marketing": contact.accepts_sms_marketing,
        "consent": [{**row, "at": iso(row["at"])} for row in consent_state(contact)],
        "erased": contact.erased_at is not None,
        "first_order_at": iso(contact.first_order_at),
        "last_order_at": iso(contact.last_order_at),
        "ltv": ltv_json(list(contact.ltv)),
        "rfm": rfm_json(contact),
    }
