"""Onsite activity as the dashboard reads it, from the outbox (no table of its own).

An onsite event is written once per destination that takes it, all copies sharing one unique id; these
queries count and list each unique id once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Event

ONSITE_EVENTS = ("active_on_site", "viewed_product", "added_to_cart")
LABELS = {"active_on_site": "Active on Site", "viewed_product": "Viewed Product", "added_to_cart": "Added to Cart"}


@dataclass(frozen=True)
class OnsiteEvent:
    name: str
    label: str
    occurred_at: datetime
    url: str | None
    product: str | None
    value: Any
    destinations: int


def contact_onsite_events(contact_id: int, limit: int = 50) -> list[OnsiteEvent]:
    """A contact's latest onsite events (browsing before and between orders), newest first."""
    table = Event.__table__
    rows = db.session.execute(
        sa.select(table.c.unique_id, sa.func.min(table.c.name).label("name"),
                  sa.func.min(table.c.occurred_at).label("occurred_at"), sa.func.min(table.c.id).label("first_id"),
                  sa.func.count().label("copies"))
        .where(table.c.contact_id == contact_id, table.c.name.in_(ONSITE_EVENTS))
        .group_by(table.c.unique_id).order_by(sa.desc("occurred_at"), sa.desc("first_id")).limit(limit)).all()
    payloads = dict(db.session.execute(
        sa.select(table.c.id, table.c.payload).where(table.c.id.in_([row.first_id for row in rows])))
        .all()) if rows else {}
    return [_event(row, payloads.get(row.first_id) or {}) for row in rows]


def _event(row: Any, payload: dict[str, Any]) -> OnsiteEvent:
    activity = payload.get("activity") or {}
    product = activity.get("product") or {}
    cart = activity.get("cart") or {}
    value = cart.get("total") if row.name == "added_to_cart" and cart else product.get("price")
    return OnsiteEvent(name=row.name, label=LABELS.get(row.name, row.name), occurred_at=row.occurred_at,
                       url=product.get("url") or activity.get("url"), product=product.get("name"), value=value,
                       destinations=row.copies)
