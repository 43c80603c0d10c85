"""The contact page's consent panel: each channel's value, when and where it was said, and what each
platform was sent about it (the `consent_change` events and their delivery state)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from webapp.extensions import db
from webapp.models import Event


@dataclass(frozen=True)
class ConsentDelivery:
    destination: str
    kind: str
    channel: str
    subscribed: bool | None
    source: str | None
    state: str
    at: datetime
    message: str | None


def consent_deliveries(contact_ids: Sequence[int], limit: int = 20) -> list[ConsentDelivery]:
    """The newest consent events of these contacts, per destination, with their delivery state."""
    events = db.session.scalars(sa.select(Event).where(Event.contact_id.in_(contact_ids),
                                                       Event.name == "consent_change")
                                .options(selectinload(Event.destination))
                                .order_by(Event.created_at.desc(), Event.id.desc()).limit(limit)).all()
    rows = []
    for event in events:
        consent = event.payload.get("consent") or {}
        contact = event.payload.get("contact") or {}
        channel = consent.get("channel", "email")
        subscribed = consent["subscribed"] if "subscribed" in consent else contact.get("accepts_marketing")
        rows.append(ConsentDelivery(event.destination.name, event.destination.kind, channel, subscribed,
                                    consent.get("source"), event.state, event.occurred_at, event.last_error))
    return rows
