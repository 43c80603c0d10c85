"""The chunks of an erasure (webapp/services/contacts/erasure.py): each a short transaction that cleans up to
CHUNK rows of one phase and moves the erasure row's phase, cursor and progress with it.

Phases, in order: the person's orders (email column, customer and addresses in the stored order), their
checkouts, their events (payloads, error texts) with the attempts' messages and the logged request and
response bodies, then the small rest (back-in-stock subscriptions, import problems, the contact rows again).
Files and Redis follow (import uploads, onsite identities: erasure_outside.py). Values found in orders (a phone as typed, an
address) join the values removed from free text later.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import (
    BackInStockSubscription,
    Checkout,
    Contact,
    DeliveryAttempt,
    DeliveryRequest,
    Erasure,
    Event,
    ImportRun,
    Order,
    utcnow,
)
from webapp.services.contacts.scrub import personal_values, scrub_json_text, scrub_text, text_pattern
from webapp.services.platform import write_races
from webapp.services.platform.bulk_rows import json_text
from webapp.services.platform.crypto import encrypt_json
from webapp.services.platform.statements import dialect_name

log = logging.getLogger(__name__)

PHASES = ("orders", "checkouts", "events", "loose", "rest")
SCAN = 1000  # events without a contact looked at per chunk (onsite activity of an unmatched visitor, ...)
CHUNK = 200
ORDER_IDS_SENT = 1000  # order ids named in the deletion request (eSputnik deletes orders by id)
ONSITE_KEYS = "shoprelay:onsite:anon:*"
NO_ID = [-1]  # an IN list that matches nothing (a person with no contact left)
SQLITE_PAUSE = 0.1  # between chunks on SQLite: the longest sleep of its busy handler (sqlite3.c, delays[])


@dataclass
class Work:
    """What the chunks need: the contacts, the address, the values to remove from free text."""

    contact_ids: list[int]
    email: str
    values: set[str]
    asked_at: datetime
    customer_ids: set[str] = field(default_factory=set)
    _pattern: tuple[int, re.Pattern[str] | None] = field(default=(-1, None))

    def pattern(self) -> re.Pattern[str] | None:
        if self._pattern[0] != len(self.values):
            self._pattern = (len(self.values), text_pattern(self.values))
        return self._pattern[1]

    @property
    def ids(self) -> list[int]:
        return self.contact_ids or NO_ID


def forget_contacts(contact_ids: list[int]) -> None:
    """The contact rows keep their figures (LTV, RFM, order counts) and lose everything personal; matching can
    no longer find them, so the next order from the same address makes a new contact."""
    if not contact_ids:
        return
    db.session.execute(sa.update(Contact).where(Contact.id.in_(contact_ids)).values(
        email=None, phone=None, customer_id=None, first_name=None, last_name=None, address=None,
        profile_fingerprint=None, accepts_marketing=None, consent_changed_at=None, email_consent_source=None,
        accepts_sms_marketing=None, sms_consent_changed_at=None, sms_consent_source=None, erased_at=utcnow())
        .execution_options(synchronize_session=False))


def count_rows(contact_ids: list[int]) -> int:
    """Orders and events to clean (index range counts), for the progress bar."""
    ids = contact_ids or NO_ID
    orders = db.session.scalar(sa.select(sa.func.count()).select_from(Order).where(Order.contact_id.in_(ids)))
    events = db.session.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.contact_id.in_(ids)))
    return int(orders or 0) + int(events or 0)


def give_way() -> None:
    """SQLite: let the writers that queued behind a chunk in before the next one. A waiting writer retries every
    SQLITE_PAUSE seconds at most (SQLite's busy handler), and chunks taken back to back kept orders, checkouts
    and deliveries waiting for the whole erasure (seconds; past SHOPRELAY_DB_WAIT_SECONDS a 503)."""
    if dialect_name() == "sqlite":
        time.sleep(SQLITE_PAUSE)


def run_chunk(erasure_id: str, work: Work) -> Erasure:
    """Clean one chunk of the current phase and record it, in one write transaction (SQLite's write lock
    taken first, like ingest's, so neither fails the other; webapp.services.platform.write_races)."""
    return write_races.in_one_transaction(lambda: _chunk(erasure_id, work))


def _chunk(erasure_id: str, work: Work) -> Erasure:
    if dialect_name() == "sqlite":  # overwritten values are zeroed in the file, not left in free space
        db.session.execute(sa.text("PRAGMA secure_delete = ON"))
    erasure = db.session.get(Erasure, erasure_id, populate_existing=True, with_for_update=True)
    if erasure is None:
        raise LookupError(f"erasure {erasure_id} not found")
    known = len(work.values)
    cleaned, cursor, tally = _PHASE_STEPS[erasure.phase](work, erasure.cursor)
    counts = dict(erasure.counts)
    for name, number in tally.items():
        counts[name] = counts.get(name, 0) + number
    erasure.counts = counts
    erasure.done = min(erasure.total, erasure.done + cleaned) if erasure.total else erasure.done + cleaned
    erasure.progressed_at = utcnow()
    if cursor is None:
        position = PHASES.index(erasure.phase)
        if position + 1 < len(PHASES):
            erasure.phase, erasure.cursor = PHASES[position + 1], 0
        else:
            erasure.phase, erasure.local_done_at = "destinations", utcnow()
    else:
        erasure.cursor = cursor
    if len(work.values) != known:
        erasure.pending_values = encrypt_json({"email": work.email, "values": sorted(work.values),
                                               "customer_ids": sorted(work.customer_ids)})
    return erasure


def _orders_mine(work: Work) -> Any:
    return Order.__table__.c.contact_id.in_(work.ids)


def _checkouts_mine(work: Work) -> Any:
    """The person's checkouts, and those carrying the address under a contact that moved on, as they stood when
    the erasure was asked for."""
    table = Checkout.__table__
    return sa.or_(table.c.contact_id.in_(work.ids),
                  sa.and_(table.c.email == work.email, table.c.updated_at <= work.asked_at))


def _orders(work: Work, cursor: int) -> tuple[int, int | None, dict[str, int]]:
    table = Order.__table__
    page, rows, pattern = _scrub_chunk(work, table, _orders_mine(work), cursor)
    if rows:
        # events of these orders that name another contact (or none): cleaned here, the rest by contact
        events = Event.__table__
        strays = db.session.execute(sa.select(events.c.id, events.c.payload, events.c.last_error).where(
            events.c.order_id.in_([row.id for row in rows]),
            sa.or_(events.c.contact_id.is_(None), events.c.contact_id.not_in(work.ids)))).all()
        _clean_events(strays, pattern)
    return len(rows), _next(page), {"orders": len(rows)}


def _checkouts(work: Work, cursor: int) -> tuple[int, int | None, dict[str, int]]:
    """The person's checkouts, and checkouts that carry the address under a contact that moved on, as they
    stood when the erasure was asked for: one sent again since belongs to the new contact (its contact and
    `updated_at` say so) and is left alone."""
    page, rows, pattern = _scrub_chunk(work, Checkout.__table__, _checkouts_mine(work), cursor)
    return 0, _next(page), {"checkouts": len(rows)}


def _scrub_chunk(work: Work, table: sa.Table, mine: Any, cursor: int) -> tuple[list[int], list[Any], Any]:
    """The next chunk of orders or checkouts still the person's (locked), their values learnt, their email
    column cleared and their stored JSON scrubbed. Returns the chunk's ids, its rows and the pattern used."""
    page = _page(table, mine, cursor)
    rows = _still_theirs(table, page, mine, table.c.data)
    for row in rows:
        work.values |= personal_values(row.data)
    pattern = work.pattern()
    if rows:
        db.session.execute(sa.update(table).where(table.c.id == sa.bindparam("b_id")).values(
            email=None, data=sa.bindparam("b_data")),
            [{"b_id": row.id, "b_data": scrub_json_text(row.data, pattern)} for row in rows])
    return page, rows, pattern


def _page(table: sa.Table, mine: Any, cursor: int) -> list[int]:
    """The ids of the next chunk past the cursor (read without locks: only the cursor moves by them)."""
    return list(db.session.scalars(sa.select(table.c.id).where(mine, table.c.id > cursor)
                                   .order_by(table.c.id).limit(CHUNK)))


def _still_theirs(table: sa.Table, page: list[int], mine: Any, *columns: Any) -> list[Any]:
    """The rows of the page that are still the person's, locked until the chunk commits. An order or checkout
    of theirs sent again after the request moves to the new contact: on PostgreSQL (READ COMMITTED) a chunk
    that read it before that commit and wrote after would put the scrubbed old row back over the new contact's
    (and clean the new contact's events of it). Locked, the request waits for the chunk, or the chunk for the
    request and then finds the row gone from `mine`. (SQLite: one writer at a time already.)"""
    if not page:
        return []
    return db.session.execute(sa.select(table.c.id, *columns).where(table.c.id.in_(page), mine)
                              .order_by(table.c.id).with_for_update()).all()


def _next(page: list[int]) -> int | None:
    """The cursor after a page: its last id, or None when it was the phase's last (a short page)."""
    return page[-1] if len(page) == CHUNK else None


def _events(work: Work, cursor: int) -> tuple[int, int | None, dict[str, int]]:
    events = Event.__table__
    rows = db.session.execute(sa.select(events.c.id, events.c.payload, events.c.last_error).where(
        _events_mine(work), events.c.id > cursor).order_by(events.c.id).limit(CHUNK)).all()
    tally = _clean_events(rows, work.pattern())
    return len(rows), (rows[-1].id if len(rows) == CHUNK else None), tally


def _events_mine(work: Work) -> Any:
    return Event.__table__.c.contact_id.in_(work.ids)


def _clean_events(rows: list[Any], pattern: re.Pattern[str] | None) -> dict[str, int]:
    """Payloads and error texts of these events, their attempts' messages and their requests' bodies. A
    pending event stays pending: it goes out without the person (platforms skip what names no one)."""
    if not rows:
        return {"events": 0, "requests": 0}
    events = Event.__table__
    db.session.execute(sa.update(events).where(events.c.id == sa.bindparam("b_id")).values(
        payload=sa.bindparam("b_payload"), last_error=sa.bindparam("b_error")),
        [{"b_id": row.id, "b_payload": scrub_json_text(row.payload, pattern),
          "b_error": scrub_text(row.last_error, pattern)} for row in rows])
    return {"events": len(rows), "requests": clean_logs([row.id for row in rows], pattern)}


def clean_logs(event_ids: list[int], pattern: re.Pattern[str] | None) -> int:
    """The attempts of these events and the requests that carried them (a bulk request carries other people:
    only this person's values go)."""
    attempts, requests = DeliveryAttempt.__table__, DeliveryRequest.__table__
    rows = db.session.execute(sa.select(attempts.c.id, attempts.c.message, attempts.c.request_id).where(
        attempts.c.event_id.in_(event_ids))).all()
    changed = [{"b_id": row.id, "b_message": scrub_text(row.message, pattern)} for row in rows
               if row.message and scrub_text(row.message, pattern) != row.message]
    if changed:
        db.session.execute(sa.update(attempts).where(attempts.c.id == sa.bindparam("b_id"))
                           .values(message=sa.bindparam("b_message")), changed)
    request_ids = sorted({row.request_id for row in rows if row.request_id is not None})
    cleaned = 0
    for start in range(0, len(request_ids), CHUNK):
        found = db.session.execute(sa.select(requests.c.id, requests.c.url, requests.c.request_body,
                                             requests.c.response_body, requests.c.error)
                                   .where(requests.c.id.in_(request_ids[start:start + CHUNK]))).all()
        updates = []
        for row in found:
            new = {name: scrub_text(getattr(row, name), pattern)
                   for name in ("url", "request_body", "response_body", "error")}
            if any(new[name] != getattr(row, name) for name in new):
                updates.append({"b_id": row.id, **{f"b_{name}": value for name, value in new.items()}})
        if updates:
            db.session.execute(sa.update(requests).where(requests.c.id == sa.bindparam("b_id")).values(
                url=sa.bindparam("b_url"), request_body=sa.bindparam("b_request_body"),
                response_body=sa.bindparam("b_response_body"), error=sa.bindparam("b_error")), updates)
        cleaned += len(updates)
    return cleaned


def _loose(work: Work, cursor: int) -> tuple[int, int | None, dict[str, int]]:
    """Events tied to no contact that still name the person (onsite activity of a visitor no contact matched,
    back-in-stock requests): SCAN rows per chunk by id, the deletion requests themselves left alone. Only
    those written before the erasure was asked for: later ones are the new contact's (an address identified
    onsite again before its first new order)."""
    events = Event.__table__
    rows = db.session.execute(sa.select(events.c.id, events.c.payload, events.c.last_error).where(
        _loose_mine(work), events.c.id > cursor).order_by(events.c.id).limit(SCAN)).all()
    pattern = work.pattern()
    mine = [row for row in rows if pattern is not None and pattern.search(json_text(row.payload))]
    tally = _clean_events(mine, pattern)
    return 0, (rows[-1].id if len(rows) == SCAN else None), {"events": tally["events"],
                                                             "requests": tally["requests"]}


def _loose_mine(work: Work) -> Any:
    events = Event.__table__
    return sa.and_(events.c.contact_id.is_(None), events.c.name != "contact_erased",
                   events.c.created_at <= work.asked_at)


def _rest(work: Work, cursor: int) -> tuple[int, int | None, dict[str, int]]:
    """Back-in-stock subscriptions of the person, import problems that quote them, the contacts once more; of
    subscriptions and imports, those made before the erasure was asked for (later ones are the new contact's)."""
    pattern = work.pattern()
    subscriptions = BackInStockSubscription.__table__
    phones = [value for value in work.values if value.startswith("+")]
    removed = db.session.execute(sa.delete(subscriptions).where(sa.or_(
        subscriptions.c.email == work.email, subscriptions.c.phone.in_(phones or [""])),
        subscriptions.c.created_at <= work.asked_at)).rowcount
    imports = ImportRun.__table__
    fixed = 0
    for row in db.session.execute(sa.select(imports.c.id, imports.c.problems, imports.c.error)
                                  .where(imports.c.created_at <= work.asked_at)).all():
        problems, error = scrub_json_text(row.problems, pattern), scrub_text(row.error, pattern)
        if problems != row.problems or error != row.error:
            db.session.execute(sa.update(imports).where(imports.c.id == row.id)
                               .values(problems=problems, error=error))
            fixed += 1
    forget_contacts(work.contact_ids)
    return 0, None, {"back_in_stock": removed, "imports": fixed}


_PHASE_STEPS = {"orders": _orders, "checkouts": _checkouts, "events": _events, "loose": _loose, "rest": _rest}
# What each phase cleans, as a failure reason names it (`describe_chunk`, `left_from`).
PHASE_ROWS = {"orders": "orders", "checkouts": "checkouts", "events": "events with their delivery logs",
              "loose": "events tied to no contact", "rest": "back-in-stock subscriptions and import problems"}


def describe_chunk(phase: str, cursor: int, work: Work) -> str:
    """The rows of the chunk an erasure would clean next, for a reason that names them (read without locks)."""
    tables = {"orders": (Order.__table__, _orders_mine, CHUNK, "order"),
              "checkouts": (Checkout.__table__, _checkouts_mine, CHUNK, "checkout"),
              "events": (Event.__table__, _events_mine, CHUNK, "event"),
              "loose": (Event.__table__, _loose_mine, SCAN, "event")}
    if phase not in tables:
        return f"the {phase} phase ({PHASE_ROWS.get(phase, phase)}, the contact rows)"
    table, mine, size, noun = tables[phase]
    ids = list(db.session.scalars(sa.select(table.c.id).where(mine(work), table.c.id > cursor)
                                  .order_by(table.c.id).limit(size)))
    after = f"the chunk after {noun} {cursor}" if cursor else "its first chunk"
    if not ids:
        return f"the {phase} phase's {PHASE_ROWS[phase]} after {noun} {cursor}"
    return f"{noun}s {ids[0]}–{ids[-1]} of the {phase} phase ({after})"


def left_from(phase: str) -> str:
    """What an erasure stopped in `phase` has not cleaned yet: that phase's rows from its cursor and every later
    phase's, then the import files and onsite identities."""
    later = [PHASE_ROWS[name] for name in PHASES[PHASES.index(phase) + 1:]] if phase in PHASES else []
    return ", ".join([f"its {PHASE_ROWS.get(phase, phase)} from that chunk on", *later,
                      "uploaded import files and onsite identities"])


def clean_late_logs(contact_ids: list[int], since: datetime, values: set[str]) -> None:
    """Requests that were in flight while the erasure ran (their logs were written after it cleaned them):
    the attempts made since it was asked for, of the person's events, are cleaned again."""
    attempts, events = DeliveryAttempt.__table__, Event.__table__
    event_ids = db.session.scalars(sa.select(attempts.c.event_id).distinct().join(
        events, events.c.id == attempts.c.event_id).where(
        attempts.c.attempted_at >= since, events.c.contact_id.in_(contact_ids or NO_ID))
        .order_by(attempts.c.event_id)).all()
    pattern = text_pattern(value for value in values if value)
    for start in range(0, len(event_ids), CHUNK):
        clean_logs(list(event_ids[start:start + CHUNK]), pattern)
        db.session.commit()


def scrub_deletion_requests(erasure_id: str, values: set[str]) -> None:
    """The deletion events themselves named the person (platforms need to know whom to delete): once every
    destination answered, their payloads keep only the erasure id and their logged requests lose the values."""
    events = Event.__table__
    rows = db.session.execute(sa.select(events.c.id, events.c.last_error).where(
        events.c.name == "contact_erased", events.c.unique_id == f"erasure:{erasure_id}")).all()
    pattern = text_pattern(value for value in values if value)
    if rows:
        db.session.execute(sa.update(events).where(events.c.id == sa.bindparam("b_id")).values(
            payload={"erasure": {"id": erasure_id}}, last_error=sa.bindparam("b_error")),
            [{"b_id": row.id, "b_error": scrub_text(row.last_error, pattern)} for row in rows])
        clean_logs([row.id for row in rows], pattern)
    db.session.commit()


def settle_sqlite_files() -> None:
    """SQLite: write the WAL back into the database file and truncate it, so no old page copy lingers."""
    if dialect_name() != "sqlite":
        return
    try:
        db.session.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
        db.session.commit()
    except sa.exc.OperationalError as exc:
        db.session.rollback()
        log.info("erasure: WAL checkpoint deferred (%s)", exc)
