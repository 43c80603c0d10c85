"""Orders in: upsert each order, its contact and LTV, and derive its events, all in one transaction.

Set-based per batch (see tests/benchmarks/RESULTS-orders.md, issue 5): a batch costs about fifteen
statements, not fifteen per order. Contacts are matched in memory against one query's worth of
candidates (`contacts.ContactBook`), orders and lines go in with Core executemany (COPY for many
new rows on PostgreSQL), LTV deltas are summed per (contact, currency) and contact summaries
refreshed once. Per order, in batch order, only pure Python runs, so the result is the same as
ingesting the orders one by one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app

from webapp.extensions import db
from webapp.models import Contact, utcnow
from webapp.schemas.canonical.orders import CanonicalOrder, line_keys, order_to_canonical_json
from webapp.services.contacts import ltv
from webapp.services.contacts.consent import ConsentChange
from webapp.services.contacts.matching import ContactBook, contact_payload, live, upsert_contact
from webapp.services.orders import rows as order_rows
from webapp.services.orders import state as order_state
from webapp.services.orders.consent import consent_events
from webapp.services.orders.outbox import NewEvent, Target, active_targets, write_events
from webapp.services.platform import bulk_rows, write_races

LINE_FIELDS = ("product_id", "sku", "name", "quantity", "price", "total", "url", "image_url", "categories", "brand")


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


@dataclass
class _ContactState:
    """The contact as this order saw it: later orders of the batch may change it again."""

    contact: Contact
    payload: dict[str, Any]
    profile_fingerprint: str | None
    profile_changed: bool
    consent: list[ConsentChange]


@dataclass
class _Plan:
    """One order worked out in memory; written with the rest of its batch."""

    incoming: CanonicalOrder
    stored: Any  # the stored order row (Core), or None when new
    row: dict[str, Any]  # the orders columns to write
    keys: list[str]
    derivation: order_state.Derivation
    contact: _ContactState
    event_names: list[str]
    order_id: int | None = None


def ingest_orders(orders: list[CanonicalOrder], *, historical: bool = False) -> list[OrderResult]:
    """Store a validated batch atomically, then signal delivery (Redis down = the sweeper catches up).

    A request that loses a race with a concurrent one (both creating the same contact or order) is
    rolled back and run again; it then finds the other's rows (webapp.services.platform.write_races).
    """
    results, touched, targets = write_races.in_one_transaction(lambda: _ingest_once(orders, historical))
    signal_destinations(touched, targets)
    return results


def _ingest_once(orders: list[CanonicalOrder], historical: bool) -> tuple[list[OrderResult], set[int], list[Target]]:
    """One attempt, inside the caller's transaction."""
    targets = active_targets()
    results: list[OrderResult] = []
    touched: set[int] = set()
    with db.session.no_autoflush:
        for part in _without_repeats(orders):
            part_results, part_touched = _ingest_part(part, targets, historical)
            results += part_results
            touched |= part_touched
    return results, touched, targets


def signal_destinations(destination_ids: set[int], targets: list[Target]) -> None:
    """Wake delivery for the realtime destinations that got events: one Redis round trip for all of them."""
    from workers.queue import JOB_DELIVER, deliver_signal_key, safe_signal_many

    realtime = {t.id for t in targets if t.mode == "realtime"}
    jobs = [(deliver_signal_key(destination_id), (destination_id,)) for destination_id in
            sorted(destination_ids & realtime)]
    safe_signal_many(current_app.config.get("REDIS_URL"), "delivery", JOB_DELIVER, jobs)


def _without_repeats(orders: list[CanonicalOrder]) -> Iterator[list[CanonicalOrder]]:
    """Split where an order id comes back (the API refuses that; imports may not), so each part
    sees the previous part's writes, exactly as ingesting one by one would."""
    part: list[CanonicalOrder] = []
    seen: set[str] = set()
    for incoming in orders:
        if incoming.id in seen:
            yield part
            part, seen = [], set()
        part.append(incoming)
        seen.add(incoming.id)
    if part:
        yield part


def _ingest_part(orders: list[CanonicalOrder], targets: list[Target],
                 historical: bool) -> tuple[list[OrderResult], set[int]]:
    """Orders with distinct ids: plan each in memory, then write the part with a few statements."""
    now = utcnow()
    stored = order_rows.load_orders([incoming.id for incoming in orders])
    book = ContactBook.load([incoming.customer for incoming in orders])
    accepted = frozenset().union(*(target.accepts for target in targets))
    plans = [_plan(incoming, stored.get(incoming.id), book, now, historical, accepted) for incoming in orders]
    batch_ltv = _contact_figures(plans)
    bulk_rows.reserve_ids(Contact, [c for c in db.session.new if isinstance(c, Contact) and c.id is None])
    db.session.flush()  # contacts: new ones get their ids, each is written once with its new figures
    _write_orders(plans)
    _write_lines(plans, order_rows.load_lines([plan.stored.id for plan in plans if plan.stored is not None]))
    batch_ltv.write()
    events = [event for plan in plans for event in _events(plan, now, historical)]
    touched = write_events(events, targets)
    results = [OrderResult(plan.incoming.id, plan.stored is None, plan.derivation.applied_status,
                           plan.event_names, plan.derivation.anomaly) for plan in plans]
    return results, touched


def _plan(incoming: CanonicalOrder, stored: Any, book: ContactBook, now: datetime, historical: bool,
          accepted: frozenset[str]) -> _Plan:
    """Everything about one order that needs no database: state move, contact upsert, new column values."""
    previous = order_state.OrderSnapshot.from_json(stored.derived) if stored is not None and stored.derived else None
    derivation = order_state.derive(previous, incoming.status, incoming.refunded_amount)
    address = _address_json(incoming.billing_address or incoming.shipping_address)
    change = upsert_contact(incoming.customer, address, incoming.placed_at, book,
                            source="import" if historical else "order")
    contact = change.contact
    state = _ContactState(contact, contact_payload(contact), contact.profile_fingerprint, change.profile_changed,
                          change.consent_changes)
    keys = line_keys(incoming.items)
    row = _order_row(incoming, stored, previous, derivation, now, historical)
    names = _event_names(derivation, keys, state)
    if accepted.intersection(names):
        row["delivery_state"] = "pending"
    return _Plan(incoming, stored, row, keys, derivation, state, names)


def _order_row(incoming: CanonicalOrder, stored: Any, previous: order_state.OrderSnapshot | None,
               derivation: order_state.Derivation, now: datetime, historical: bool) -> dict[str, Any]:
    """The order's columns after this state (contact_id is filled in once contacts have ids)."""
    status = derivation.applied_status
    history = list(stored.status_history) if stored is not None else []
    anomalies = list(stored.anomalies) if stored is not None else []
    if previous is None or status != previous.status:
        history.append({"status": status, "at": now.isoformat(), "historical": historical})
    if derivation.anomaly:
        anomalies.append({"at": now.isoformat(), "message": derivation.anomaly, "sent_status": incoming.status})
    refunded = (incoming.refunded_amount if status in order_state.REFUND_STATUSES
                else stored.refunded_amount if stored is not None else None)
    return {
        "external_id": incoming.id, "status": status, "currency": incoming.currency, "total": incoming.total,
        "subtotal": incoming.subtotal, "tax": incoming.tax, "shipping": incoming.shipping,
        "discount_code": incoming.discount.code if incoming.discount else None,
        "discount_value": incoming.discount.value if incoming.discount else None,
        "email": incoming.customer.email, "placed_at": incoming.placed_at,
        "fulfilled_at": incoming.fulfilled_at, "cancelled_at": incoming.cancelled_at,
        "refunded_at": incoming.refunded_at, "refunded_amount": refunded, "reason": incoming.reason,
        "historical": bool(stored is not None and stored.historical) or historical,
        "data": order_to_canonical_json(incoming), "status_history": history, "anomalies": anomalies,
        "derived": derivation.new_snapshot.to_json(),
        "delivery_state": stored.delivery_state if stored is not None else "none",
    }


def _event_names(derivation: order_state.Derivation, keys: list[str], contact: _ContactState) -> list[str]:
    names = []
    for name in derivation.events:
        names += [name] * len(keys) if name == order_state.ORDERED_PRODUCT else [name]
    if contact.profile_changed:
        names.append("profile_upsert")
    names += ["consent_change"] * len(contact.consent)
    return names


def _write_orders(plans: list[_Plan]) -> None:
    """New orders: one INSERT ... RETURNING executemany; changed ones: one UPDATE executemany."""
    for plan in plans:
        plan.row["contact_id"] = live(plan.contact.contact).id
    new = [plan for plan in plans if plan.stored is None]
    if new:
        for plan, order_id in zip(new, order_rows.insert_orders([plan.row for plan in new]), strict=True):
            plan.order_id = order_id
    changed = []
    for plan in plans:
        if plan.stored is not None:
            plan.order_id = plan.stored.id
            if any(getattr(plan.stored, name) != value for name, value in plan.row.items()):
                changed.append({"b_id": plan.order_id, **plan.row})
    order_rows.update_orders(changed)


def _write_lines(plans: list[_Plan], stored_lines: dict[int, list[Any]]) -> None:
    """Lines keyed by line key: kept ones updated only when they changed, gone ones deleted, new ones added."""
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    deletes: list[int] = []
    for plan in plans:
        current = {line.line_key: line for line in stored_lines.get(plan.order_id, [])}
        for key, item in zip(plan.keys, plan.incoming.items, strict=True):
            values = {name: getattr(item, name) for name in LINE_FIELDS}
            line = current.pop(key, None)
            if line is None:
                inserts.append({"order_id": plan.order_id, "line_key": key, **values})
            elif any(getattr(line, name) != value for name, value in values.items()):
                updates.append({"b_id": line.id, **values})
        deletes += [line.id for line in current.values()]
    order_rows.write_lines(inserts, updates, deletes)


def _contact_figures(plans: list[_Plan]) -> ltv.BatchLtv:
    """LTV rows and contact summaries as they will stand after this part, worked out before anything
    is written, so each contact is written once (a new one with its figures in its INSERT)."""
    deltas = _ltv_deltas(plans)
    contacts = _touched_contacts(plans, deltas)
    batch = ltv.plan_deltas(deltas, contacts)
    stored = ltv.order_dates([contact.id for contact in contacts if contact.id is not None],
                             excluding=[plan.incoming.id for plan in plans])
    placed: dict[Contact, list[datetime]] = {}
    for plan in plans:
        if plan.row["status"] != "pending":
            placed.setdefault(live(plan.contact.contact), []).append(plan.row["placed_at"])
    for contact in contacts:
        first, last, count = stored.get(contact.id, (None, None, 0)) if contact.id is not None else (None, None, 0)
        times = placed.get(contact, [])
        if times:
            first = min(times if first is None else [first, *times])
            last = max(times if last is None else [last, *times])
            count += len(times)
        ltv.set_summary(contact, batch.rows_of(contact), first, last, count)
    return batch


def _ltv_deltas(plans: list[_Plan]) -> dict[tuple[Contact, str], ltv.Contribution]:
    """What the part changes per (live contact, currency): new contribution minus the order's old one."""
    deltas: dict[tuple[Contact, str], ltv.Contribution] = {}

    def add(key: tuple[Contact, str], delta: ltv.Contribution) -> None:
        deltas[key] = deltas[key].minus(ltv.Contribution().minus(delta)) if key in deltas else delta

    for plan in plans:
        row, stored = plan.row, plan.stored
        contact = live(plan.contact.contact)
        new = ltv.contribution(row["status"], row["total"], row["refunded_amount"])
        old = ltv.Contribution()
        if stored is not None and stored.contact_id is not None:
            old = ltv.contribution(stored.status, stored.total, stored.refunded_amount)
            old_contact = live(db.session.get(Contact, stored.contact_id))  # a merge may have moved it
            if old_contact is not contact or stored.currency != row["currency"]:
                add((old_contact, stored.currency), ltv.Contribution().minus(old))
                old = ltv.Contribution()
        add((contact, row["currency"]), new.minus(old))
    return deltas


def _touched_contacts(plans: list[_Plan], deltas: dict[tuple[Contact, str], ltv.Contribution]) -> list[Contact]:
    """Contacts whose summary may move: each order's contact (merged-away ones too, which go to zero),
    where it lives now, and any contact an order moved away from."""
    found = {plan.contact.contact: None for plan in plans}
    found |= {live(contact): None for contact in list(found)}
    found |= {contact: None for contact, _ in deltas}
    return list(found)


def _events(plan: _Plan, now: datetime, historical: bool) -> list[NewEvent]:
    return _order_events(plan, historical) + _contact_events(plan.contact, now, historical)


def _order_events(plan: _Plan, historical: bool) -> list[NewEvent]:
    incoming, derivation = plan.incoming, plan.derivation
    data = plan.row["data"]
    payload = {"order": data, "contact": plan.contact.payload}
    times = {"placed_order": incoming.placed_at, "ordered_product": incoming.placed_at,
             "pending_order": incoming.placed_at, "fulfilled_order": incoming.fulfilled_at,
             "cancelled_order": incoming.cancelled_at, "refunded_order": incoming.refunded_at}
    events = []
    for name in derivation.events:
        when: datetime = times.get(name) or utcnow()
        common = {"occurred_at": when, "order_id": plan.order_id, "contact_id": plan.row["contact_id"],
                  "historical": historical}
        if name == "ordered_product":
            for key, line in zip(plan.keys, data["items"], strict=True):
                events.append(NewEvent(name, f"{incoming.id}:{key}",
                                       payload | {"line": line | {"line_key": key}}, **common))
        elif name == "refunded_order":
            unique = order_state.refund_unique_id(incoming.id, derivation.refund_sequence or 1)
            events.append(NewEvent(name, unique, payload, **common))
        else:
            events.append(NewEvent(name, incoming.id, payload, **common))
    return events


def _contact_events(state: _ContactState, now: datetime, historical: bool) -> list[NewEvent]:
    contact_id = state.contact.id
    payload = {"contact": state.payload}
    events = []
    if state.profile_changed:
        events.append(NewEvent("profile_upsert", f"{contact_id}:{state.profile_fingerprint}", payload, now,
                               contact_id=contact_id, historical=historical))
    return events + consent_events(contact_id, state.payload, state.consent, historical)


def _address_json(address: Any) -> dict[str, Any] | None:
    if address is None:
        return None
    data = address.model_dump(mode="json", exclude_none=True)
    return data or None
