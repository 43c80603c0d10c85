"""Erasure: forget one person everywhere, keep the numbers.

Asked for by email (`DELETE /api/v1/contacts/<email>`, `shoprelay contacts erase EMAIL`, the contact page):

1. In the request, in milliseconds: the person's contacts (the one holding the email and those merged into
   it) lose their personal data at once (so an order arriving meanwhile starts a new contact), an `erasures`
   row records the request, and every enabled destination gets a `contact_erased` event in the outbox
   (Klaviyo's data-privacy deletion job, the `contact.erased` webhook, ...), delivered, retried and logged
   like any other event. Then the browsers the onsite collector knows as the person are forgotten (read
   through the person index, onsite.person_index), so their page views from now on are nobody's.
2. In an RQ job, chunk by chunk (each chunk its own short transaction that also moves the row's cursor):
   orders, checkouts, event payloads, request and response bodies and attempt messages, back-in-stock
   subscriptions, import problems and files, onsite identities (erasure_steps.py). What the person sends
   after the request (orders, checkouts, onsite identify, also an old order or checkout sent again) belongs
   to the new contact and no chunk touches it: chunks take rows by the erased contacts, lock them, and take
   rows found by address or text only when written before the request. An order in flight when the request
   came lands wholly before it (erased with the rest) or wholly after it (the new contact's): the request and
   ingest queue on the contact's row lock (PostgreSQL) or the write lock (SQLite).
3. When the destinations have answered, `finish_ready` (periodic) removes the identifiers the deletion
   requests themselves carried, clears the encrypted values the job worked from, and settles the row.

A worker that dies mid-way is replaced, and a failed erasure can be finished: erasure_recovery.py.

The row keeps no personal data: the email only as a keyed hash (a repeat request while one runs gets the
running one), the values being removed encrypted with the instance key until the end. Amounts, dates,
statuses, items and aggregates stay, so revenue totals, charts, LTV and RFM do not move.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from webapp.extensions import db
from webapp.models import Contact, Destination, Erasure, Event, Order, utcnow
from webapp.services.contacts import erasure_outside as outside
from webapp.services.contacts import erasure_steps as steps
from webapp.services.contacts.scrub import personal_values
from webapp.services.platform import write_races
from webapp.services.platform.crypto import decrypt_json, encrypt_json
from webapp.services.platform.db_unavailable import DatabaseBusy
from webapp.services.platform.jsonutil import iso
from webapp.services.platform.row_jobs import (
    enqueue_row_job,
    new_job_id,
)

log = logging.getLogger(__name__)

EVENT = "contact_erased"
JOB_ERASE = "workers.jobs.erasures.erase_contact_job"
JOB_TIMEOUT = 6 * 3600
ACTIVE = ("queued", "running")
GRACE = timedelta(seconds=30)
STALE = timedelta(minutes=5)
SETTLED = {"delivered": "succeeded", "skipped": "not_supported", "rejected": "failed", "dead": "failed"}
REFUSED = ("rejected", "dead")  # a deletion request's states that settle as failed


def email_hash(email: str) -> str:
    """A keyed hash of the address: recognises a repeat request without keeping the address."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, normalise(email).encode(), hashlib.sha256).hexdigest()


def normalise(email: str) -> str:
    return email.strip().lower()


def get_erasure(erasure_id: str) -> Erasure | None:
    """The row as committed now (a worker's progress included); ends the read."""
    erasure = db.session.get(Erasure, erasure_id, populate_existing=True)
    db.session.commit()
    return erasure


def erasures_of(email: str, limit: int = 5) -> list[Erasure]:
    """Erasures asked for this address, newest first (found by the keyed hash)."""
    rows = db.session.scalars(sa.select(Erasure).where(Erasure.email_hash == email_hash(email))
                              .order_by(Erasure.created_at.desc()).limit(limit)).all()
    return list(rows)


def start_erasure(email: str, requested_by: str = "api", *, run_here: bool = False,
                  on_chunk: Callable[[Erasure], None] | None = None) -> Erasure:
    """Record the erasure, forget the contact at once and ask every destination to delete; the rest runs
    in an RQ job (or here, `run_here`, for the CLI). A request for an address whose erasure is still running
    answers that one."""
    email = normalise(email)
    if "@" not in email:
        raise ValueError("email: an email address is required")
    inline = run_here or not current_app.config.get("REDIS_URL")
    erasure, created, touched = write_races.in_one_transaction(
        lambda: _record(email, requested_by, None if inline else new_job_id("erasure")))
    if not created:
        return erasure
    signal_destinations(touched)
    # At once, not in the job: a page view from the person's browser between the request and the job's start
    # would otherwise be recorded under the address just erased (and sent on to the platforms).
    outside.forget_onsite(email, set(decrypt_json(erasure.pending_values).get("customer_ids", [])),
                        asked_at=erasure.created_at)
    if inline:
        return run_erasure(erasure.id, on_chunk=on_chunk)
    enqueue_row_job("erasure", erasure.id, JOB_ERASE, erasure.job_id, JOB_TIMEOUT)
    return erasure


def _record(email: str, requested_by: str, job_id: str | None) -> tuple[Erasure, bool, set[int]]:
    """One write transaction (the caller's): the row, the deletion events, the contacts forgotten. Taken with
    the write lock (SQLite) or the contacts' row locks (PostgreSQL), so an order for the same person lands
    wholly before (and is erased) or wholly after (and starts a new contact)."""
    digest = email_hash(email)
    running = db.session.scalar(sa.select(Erasure).where(Erasure.email_hash == digest,
                                                         Erasure.status.in_(ACTIVE)).limit(1))
    if running is not None:
        return running, False, set()
    contacts = _people(email)
    erasure = Erasure(id=secrets.token_hex(6), email_hash=digest, status="queued", phase=steps.PHASES[0],
                      cursor=0, contact_ids=[c.id for c in contacts], destinations=[], total=0, done=0,
                      counts={}, requested_by=requested_by, created_at=utcnow(), job_id=job_id)
    erasure.total = steps.count_rows(erasure.contact_ids)
    erasure.pending_values = encrypt_json({"email": email, "values": sorted(_contact_values(contacts, email)),
                                           "customer_ids": sorted({c.customer_id for c in contacts if c.customer_id})})
    db.session.add(erasure)
    db.session.flush()
    erasure.destinations, touched = _ask_destinations(erasure, email, contacts)
    steps.forget_contacts(erasure.contact_ids)
    return erasure, True, touched


def _people(email: str) -> list[Contact]:
    """The contact holding the address, the one it was merged into, and every contact merged into those."""
    found = db.session.scalar(sa.select(Contact).where(Contact.email == email).with_for_update())
    if found is None:
        return []
    while found.merged_into_id is not None:
        found = db.session.get(Contact, found.merged_into_id)
    people = {found.id: found}
    frontier = [found.id]
    while frontier:
        merged = db.session.scalars(sa.select(Contact).where(Contact.merged_into_id.in_(frontier))
                                    .with_for_update()).all()
        frontier = [contact.id for contact in merged if contact.id not in people]
        people |= {contact.id: contact for contact in merged}
    return list(people.values())


def _contact_values(contacts: list[Contact], email: str) -> set[str]:
    values = {email}
    for contact in contacts:
        values |= {str(v) for v in (contact.email, contact.phone, contact.customer_id, contact.first_name,
                                    contact.last_name) if v}
        values |= personal_values({"address": contact.address})
    return values


def _ask_destinations(erasure: Erasure, email: str, contacts: list[Contact]) -> tuple[list[dict[str, Any]], set[int]]:
    """One `contact_erased` event per enabled destination (the outbox delivers, retries and logs it); a disabled
    destination is listed as not asked."""
    from webapp.services.orders.outbox import NewEvent, Target, write_events

    phones = sorted({c.phone for c in contacts if c.phone})
    customer_ids = sorted({c.customer_id for c in contacts if c.customer_id})
    order_ids = db.session.scalars(sa.select(Order.external_id).where(
        Order.contact_id.in_(erasure.contact_ids or [-1])).order_by(Order.id).limit(steps.ORDER_IDS_SENT)).all()
    payload = {"erasure": {"id": erasure.id, "email": email, "phones": phones, "customer_ids": customer_ids,
                           "order_ids": list(order_ids), "requested_at": iso(erasure.created_at)}}
    destinations = db.session.execute(sa.select(Destination.id, Destination.kind, Destination.name,
                                                Destination.enabled, Destination.mode)
                                      .order_by(Destination.id)).all()
    targets = [Target(row.id, row.mode, frozenset({EVENT})) for row in destinations if row.enabled]
    touched = write_events([NewEvent(EVENT, f"erasure:{erasure.id}", payload, erasure.created_at)], targets)
    listed = [{"id": row.id, "kind": row.kind, "name": row.name, "asked": bool(row.enabled)}
              for row in destinations]
    return listed, touched


def signal_destinations(destination_ids: set[int]) -> None:
    from workers.queue import JOB_DELIVER, deliver_signal_key, safe_signal_many

    jobs = [(deliver_signal_key(destination_id), (destination_id,)) for destination_id in sorted(destination_ids)]
    safe_signal_many(current_app.config.get("REDIS_URL"), "delivery", JOB_DELIVER, jobs)


# --- running ----------------------------------------------------------------------------------------------

def run_erasure(erasure_id: str, *, on_chunk: Callable[[Erasure], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> Erasure:
    """Clean the local data chunk by chunk from the row's phase and cursor, then settle it if the destinations
    have answered. Stops early (status stays "running") when `should_stop()` says so."""
    erasure = get_erasure(erasure_id)
    if erasure is None:
        raise LookupError(f"erasure {erasure_id} not found")
    if erasure.status not in ACTIVE:
        return erasure
    _set(erasure_id, status="running", started_at=erasure.started_at or utcnow())
    work = work_of(erasure)
    try:
        while erasure.local_done_at is None:
            if should_stop is not None and should_stop():
                return get_erasure(erasure_id) or erasure
            erasure = steps.run_chunk(erasure_id, work)
            if on_chunk is not None:
                on_chunk(erasure)
            steps.give_way()
        outside.clean_files_and_identities(work)
    except DatabaseBusy:  # other work held the database: the row stays running and `recover` goes on
        db.session.rollback()
        raise
    except Exception as exc:
        db.session.rollback()
        _set(erasure_id, status="failed", finished_at=utcnow(),
             error=error_without_person(f"{type(exc).__name__}: {exc}", erasure.pending_values)[:500])
        raise
    finish_if_answered(erasure_id)
    return get_erasure(erasure_id) or erasure


def work_of(erasure: Erasure) -> steps.Work:
    values = decrypt_json(erasure.pending_values)
    return steps.Work(erasure.contact_ids, values.get("email", ""), set(values.get("values", [])),
                      erasure.created_at, set(values.get("customer_ids", [])))


def error_without_person(text: str, pending_values: str | None) -> str:
    """An erasure's error as it is stored, shown and sent to alert channels: without a database error's statement
    and parameters, and with any of the person's own values masked (an exception message may quote what it was
    given: a PostgreSQL DETAIL line, a value in a parse error)."""
    text = text.split("\n[SQL:", 1)[0].split("\n[parameters:", 1)[0]
    try:
        values = decrypt_json(pending_values)
    except ValueError:  # another instance key: nothing to compare with, the database's words are already cut
        return text
    personal = [values.get("email"), *values.get("values", []), *values.get("customer_ids", [])]
    for value in sorted({str(v) for v in personal if v and len(str(v)) >= 3}, key=len, reverse=True):
        text = re.sub(re.escape(value), "[REDACTED]", text, flags=re.IGNORECASE)
    return text


def _set(erasure_id: str, **values: Any) -> None:
    db.session.execute(sa.update(Erasure).where(Erasure.id == erasure_id, Erasure.status.in_(ACTIVE))
                       .values(**values).execution_options(synchronize_session=False))
    db.session.commit()


def destination_states(erasure: Erasure) -> list[dict[str, Any]]:
    """Each destination's answer to the deletion request, read from its `contact_erased` event."""
    rows = db.session.execute(sa.select(Event.destination_id, Event.state, Event.last_error, Event.id).where(
        Event.name == EVENT, Event.unique_id == f"erasure:{erasure.id}")).all()
    by_destination = {row.destination_id: row for row in rows}
    states = []
    for listed in erasure.destinations:
        row = by_destination.get(listed["id"])
        if row is None:
            status, message = ("not_asked", "the destination was disabled") if not listed.get("asked") else (
                "gone", "the destination was deleted")
        else:
            status, message = SETTLED.get(row.state, "pending"), row.last_error
        states.append({"id": listed["id"], "kind": listed["kind"], "name": listed["name"], "status": status,
                       "message": message, "event_id": row.id if row is not None else None})
    return states


def finish_if_answered(erasure_id: str) -> bool:
    """Once local cleaning is done and every destination has answered: remove the identifiers from the
    deletion events and their logged requests, drop the encrypted values, settle the row."""
    erasure = get_erasure(erasure_id)
    if erasure is None or erasure.status not in ACTIVE or erasure.local_done_at is None:
        return False
    states = destination_states(erasure)
    if any(state["status"] == "pending" for state in states):
        return False
    values = decrypt_json(erasure.pending_values)
    everything = set(values.get("values", [])) | {values.get("email", "")}
    steps.clean_late_logs(erasure.contact_ids, erasure.created_at, everything)
    steps.scrub_deletion_requests(erasure.id, everything)
    failed = [state for state in destination_states(erasure) if state["status"] == "failed"]
    error = "; ".join(f"{state['name']}: {state['message']}" for state in failed)[:500] or None
    _set(erasure_id, status="failed" if failed else "succeeded", error=error, pending_values=None,
         finished_at=utcnow())
    steps.settle_sqlite_files()
    return True


def finish_ready() -> dict[str, int]:
    """Settle every erasure whose destinations have answered (periodic)."""
    waiting = db.session.scalars(sa.select(Erasure.id).where(Erasure.status.in_(ACTIVE),
                                                             Erasure.local_done_at.is_not(None))).all()
    db.session.commit()
    return {"finished": sum(finish_if_answered(erasure_id) for erasure_id in waiting)}


def erasure_json(erasure: Erasure) -> dict[str, Any]:
    """The API's view: status, progress and each destination's answer; never a personal value."""
    return {"id": erasure.id, "status": erasure.status, "phase": erasure.phase, "total": erasure.total,
            "done": erasure.done, "counts": erasure.counts, "contacts": len(erasure.contact_ids),
            "destinations": destination_states(erasure), "requested_by": erasure.requested_by,
            "error": erasure.error, "created_at": iso(erasure.created_at), "started_at": iso(erasure.started_at),
            "local_done_at": iso(erasure.local_done_at), "finished_at": iso(erasure.finished_at)}
