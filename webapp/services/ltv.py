"""Lifetime value, maintained incrementally on ingest and rebuildable from the orders.

Both paths use the same `contribution()` of one order, so `shoprelay contacts recompute` gives exactly
the numbers the incremental path produced. Definitions (per currency, DESIGN.md):
placed = Σ total of orders placed; cancelled = Σ total of cancelled ones; refunded = Σ refunded amounts
(the total for a full refund); net = placed − cancelled − refunded; orders = placed orders not cancelled;
aov = (placed − cancelled) / orders.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Contact, ContactLtv, Order

ZERO = Decimal(0)


@dataclass(frozen=True)
class Contribution:
    placed: Decimal = ZERO
    cancelled: Decimal = ZERO
    refunded: Decimal = ZERO
    orders: int = 0
    fulfilled_orders: int = 0
    fulfilled_value: Decimal = ZERO

    def minus(self, other: Contribution) -> Contribution:
        return Contribution(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))

    def is_zero(self) -> bool:
        return all(not getattr(self, f.name) for f in fields(self))


def contribution(status: str, total: Decimal, refunded_amount: Decimal | None) -> Contribution:
    """What one order adds to its contact's LTV in its currency."""
    if status == "pending":
        return Contribution()
    refunded = ZERO
    if status in ("refunded", "partially_refunded"):
        refunded = refunded_amount if refunded_amount is not None else total
        if status == "refunded" and refunded_amount is None:
            refunded = total
    cancelled = total if status == "cancelled" else ZERO
    fulfilled = status in ("fulfilled", "partially_refunded")
    return Contribution(
        placed=total, cancelled=cancelled, refunded=refunded,
        orders=0 if status == "cancelled" else 1,
        fulfilled_orders=1 if fulfilled else 0,
        fulfilled_value=(total - refunded) if fulfilled else ZERO)


def order_contribution(order: Order) -> Contribution:
    return contribution(order.status, order.total, order.refunded_amount)


def apply_delta(contact_id: int, currency: str, delta: Contribution) -> None:
    """Add a change to one contact's per-currency row (created on first use)."""
    if delta.is_zero():
        return
    row = db.session.get(ContactLtv, (contact_id, currency))
    if row is None:
        row = ContactLtv(contact_id=contact_id, currency=currency, placed=ZERO, cancelled=ZERO, refunded=ZERO,
                         orders=0, fulfilled_orders=0, fulfilled_value=ZERO)
        db.session.add(row)
    for f in fields(delta):
        setattr(row, f.name, getattr(row, f.name) + getattr(delta, f.name))


def refresh_contact_summary(contact: Contact) -> None:
    """Contact-level figures derived from its LTV rows and order dates (cheap: per contact)."""
    db.session.flush()
    rows = db.session.scalars(sa.select(ContactLtv).where(ContactLtv.contact_id == contact.id)).all()
    contact.orders_count = sum(row.orders for row in rows)
    primary = max(rows, key=lambda row: (row.orders, row.placed), default=None)
    contact.ltv_primary = net(primary) if primary else ZERO
    contact.ltv_primary_currency = primary.currency if primary else None
    first, last, count = db.session.execute(
        sa.select(sa.func.min(Order.placed_at), sa.func.max(Order.placed_at), sa.func.count())
        .where(Order.contact_id == contact.id, Order.status != "pending")).one()
    contact.first_order_at, contact.last_order_at = first, last
    contact.avg_days_between_orders = (
        round((last - first).total_seconds() / 86400 / (count - 1), 2) if count and count > 1 else None)


def net(row: ContactLtv) -> Decimal:
    return row.placed - row.cancelled - row.refunded


def aov(row: ContactLtv) -> Decimal | None:
    if not row.orders:
        return None
    return ((row.placed - row.cancelled) / row.orders).quantize(Decimal("0.01"))


def ltv_json(rows: list[ContactLtv]) -> list[dict]:
    """The contract's `ltv` list: one entry per currency, money as JSON numbers."""
    def number(value: Decimal | None) -> float | None:
        return None if value is None else float(value.quantize(Decimal("0.01")))

    return [{"currency": row.currency, "placed": number(row.placed), "cancelled": number(row.cancelled),
             "refunded": number(row.refunded), "net": number(net(row)), "orders": row.orders,
             "aov": number(aov(row))} for row in sorted(rows, key=lambda r: r.currency)]


def recompute_all(batch: int = 2000) -> int:
    """Rebuild every contact's LTV rows and summary from the orders (same arithmetic as ingest)."""
    db.session.execute(sa.delete(ContactLtv))
    totals: dict[tuple[int, str], Contribution] = {}
    query = (sa.select(Order.contact_id, Order.currency, Order.status, Order.total, Order.refunded_amount)
             .where(Order.contact_id.is_not(None)).execution_options(yield_per=batch))
    for contact_id, currency, status, total, refunded in db.session.execute(query):
        key = (contact_id, currency)
        current = totals.get(key, Contribution())
        totals[key] = current.minus(Contribution().minus(contribution(status, total, refunded)))
    for (contact_id, currency), value in totals.items():
        apply_delta(contact_id, currency, value)
    db.session.flush()
    count = 0
    for contact in db.session.scalars(sa.select(Contact).where(Contact.merged_into_id.is_(None))).all():
        refresh_contact_summary(contact)
        count += 1
    db.session.commit()
    return count
