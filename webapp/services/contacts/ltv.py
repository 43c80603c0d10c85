"""Lifetime value, maintained incrementally on ingest and rebuildable from the orders.

Both paths use the same `contribution()` of one order, so `shoprelay contacts recompute` gives exactly
the numbers the incremental path produced. Definitions (per currency, DESIGN.md):
placed = Σ total of orders placed; cancelled = Σ total of cancelled ones; refunded = Σ refunded amounts
(the total for a full refund); net = placed − cancelled − refunded; orders = placed orders not cancelled;
aov = (placed − cancelled) / orders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Contact, ContactLtv, Order

ZERO = Decimal(0)
_CHUNK = 500  # ids per IN (...) list


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


@dataclass
class BatchLtv:
    """A batch's LTV rows, worked out before new contacts have ids; `write` stores them after the flush."""

    rows: dict[Contact, dict[str, dict[str, Any]]]  # every row of each contact, as it will stand
    inserts: list[tuple[Contact, str]]
    updates: list[tuple[Contact, str]]

    def write(self) -> None:
        """One executemany for new rows, one for changed rows."""
        names = [f.name for f in fields(Contribution)]
        if self.inserts:
            db.session.execute(_insert_ltv(), [
                {"contact_id": contact.id, "currency": currency}
                | {name: self.rows[contact][currency][name] for name in names}
                for contact, currency in self.inserts])
        if self.updates:
            db.session.execute(
                _update_ltv(),
                [{"b_contact_id": contact.id, "b_currency": currency}
                 | {name: self.rows[contact][currency][name] for name in names}
                 for contact, currency in self.updates])

    def rows_of(self, contact: Contact) -> list[Any]:
        return [_Row(currency=currency, **values) for currency, values in sorted(self.rows.get(contact, {}).items())]


def plan_deltas(deltas: dict[tuple[Contact, str], Contribution], contacts: Iterable[Contact]) -> BatchLtv:
    """`apply_delta` for a whole batch, in memory: one SELECT for the stored rows of these contacts.

    Same arithmetic as `apply_delta` (stored value + delta, in Python), so recompute still matches.
    """
    deltas = {key: delta for key, delta in deltas.items() if not delta.is_zero()}
    names = [f.name for f in fields(Contribution)]
    everyone = {contact: None for contact in contacts} | {contact: None for contact, _ in deltas}
    rows: dict[Contact, dict[str, dict[str, Any]]] = {contact: {} for contact in everyone}
    by_id = {contact.id: contact for contact in everyone if contact.id is not None}
    ids = sorted(by_id)
    for start in range(0, len(ids), _CHUNK):
        for row in db.session.execute(_ltv_query(), {"ids": ids[start:start + _CHUNK]}):
            rows[by_id[row.contact_id]][row.currency] = {name: getattr(row, name) for name in names}
    batch = BatchLtv(rows, [], [])
    for (contact, currency), delta in deltas.items():
        row = rows[contact].get(currency)
        (batch.inserts if row is None else batch.updates).append((contact, currency))
        base = row if row is not None else {name: getattr(Contribution(), name) for name in names}
        rows[contact][currency] = {name: base[name] + getattr(delta, name) for name in names}
    return batch


class _Row:
    """An LTV row as plain attributes (what `net`, `aov` and the summary read)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def order_dates(contact_ids: list[int], excluding: Iterable[str] = ()) -> dict[int, tuple[Any, Any, int]]:
    """First and last placed_at and the count of non-pending orders per contact, leaving out the
    orders `excluding` names (a batch about to rewrite them adds their new state itself)."""
    excluded = sorted(set(excluding))
    dates: dict[int, tuple[Any, Any, int]] = {}
    ids = sorted(set(contact_ids))
    query = _dates_query(bool(excluded))
    for start in range(0, len(ids), _CHUNK):
        params = {"ids": ids[start:start + _CHUNK], "excluded": excluded}
        dates.update({contact_id: (first, last, count) for contact_id, first, last, count
                      in db.session.execute(query, params)})
    return dates


@cache
def _dates_query(excluding: bool) -> sa.Select:
    query = (sa.select(Order.contact_id, sa.func.min(Order.placed_at), sa.func.max(Order.placed_at),
                       sa.func.count())
             .where(Order.contact_id.in_(sa.bindparam("ids", expanding=True)), Order.status != "pending")
             .group_by(Order.contact_id))
    if excluding:
        query = query.where(Order.external_id.not_in(sa.bindparam("excluded", expanding=True)))
    return query


@cache
def _ltv_query() -> sa.Select:
    table = ContactLtv.__table__
    return sa.select(table).where(table.c.contact_id.in_(sa.bindparam("ids", expanding=True)))


@cache
def _insert_ltv() -> sa.Insert:
    return sa.insert(ContactLtv.__table__)


@cache
def _update_ltv() -> sa.Update:
    table = ContactLtv.__table__
    return sa.update(table).where(table.c.contact_id == sa.bindparam("b_contact_id"),
                                  table.c.currency == sa.bindparam("b_currency"))


def refresh_contact_summary(contact: Contact) -> None:
    """Contact-level figures derived from its LTV rows and order dates (cheap: per contact)."""
    db.session.flush()
    refresh_contact_summaries([contact])


def refresh_contact_summaries(contacts: list[Contact]) -> None:
    """`refresh_contact_summary` for many contacts with two queries (the caller flushes first)."""
    stored = plan_deltas({}, contacts)
    dates = order_dates([contact.id for contact in contacts])
    for contact in contacts:
        set_summary(contact, stored.rows_of(contact), *dates.get(contact.id, (None, None, 0)))


def set_summary(contact: Contact, rows: list[Any], first: datetime | None, last: datetime | None,
                count: int) -> None:
    """Contact-level figures from its LTV rows and its non-pending orders' dates and count."""
    contact.orders_count = sum(row.orders for row in rows)
    primary = max(rows, key=lambda row: (row.orders, row.placed), default=None)
    contact.ltv_primary = net(primary) if primary else ZERO
    contact.ltv_primary_currency = primary.currency if primary else None
    contact.first_order_at, contact.last_order_at = first, last
    contact.avg_days_between_orders = (
        round((last - first).total_seconds() / 86400 / (count - 1), 2) if count and count > 1 else None)


def net(row: Any) -> Decimal:
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
