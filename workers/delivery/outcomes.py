"""Recording what a platform answered: request log, per-event attempts, event states, destination health.

Answers are recorded in groups (up to ~50 requests or 250 ms, see the engine), on PostgreSQL by the
recorder thread: one INSERT for the request rows, one for the attempts, one set-based UPDATE per outcome
class of events, one set-based roll-up refresh, one upsert of the delivery counters (delivery_counters.py),
the destination's health changes last (health.py), and one commit. A worker killed before a group is recorded leaves its events in flight; their lease runs out and the
resend is de-duplicated by the platform through the event's unique id.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import DeliveryAttempt, DeliveryRequest, Event
from webapp.services.delivery import counters as delivery_counters
from webapp.services.orders.rollup import refresh_delivery_state
from webapp.services.platform.crypto import redact
from webapp.services.platform.statements import dialect_name
from workers.delivery.claim import ClaimedEvent, ids_match, pg_array
from workers.delivery.health import write_health
from workers.delivery.http_client import SendResult
from workers.delivery.policy import RetryPolicy
from workers.destinations.base import Classification, Outcome, PreparedRequest

MAX_REQUEST_BODY = 64 * 1024
MAX_RESPONSE_BODY = 4 * 1024
MAX_MESSAGE = 2000
# Serialising a 1,000-event bulk body only to keep its first 64 KB is wasted work: a bounded prefix of the
# events is enough to show what was sent.
_SHOWN_EVENTS = 40


@dataclass(slots=True)
class Sent:
    """One answered request waiting to be recorded with its group."""

    request: PreparedRequest
    result: SendResult
    classification: Classification
    at: datetime


def masked(classification: Classification, secrets: list[str]) -> Classification:
    """The classification with the secrets masked in its messages: a platform's error answer may echo the
    request's Authorization header, and the message goes on to pause reasons, log lines and events' errors."""
    classification.message = redact(classification.message or "", secrets)
    classification.per_event = {event_id: (outcome, redact(message or "", secrets))
                                for event_id, (outcome, message) in classification.per_event.items()}
    return classification


def request_text(request: PreparedRequest, secrets: list[str]) -> str:
    """The stored request body: compact JSON (the dashboard indents it for reading), secrets redacted,
    trimmed to MAX_REQUEST_BODY."""
    if request.logged is not None:  # a large body's shorter form (still JSON)
        text = request.logged.decode()
    elif request.content is not None:
        text = request.content[:MAX_REQUEST_BODY + 4096].decode("utf-8", "replace")
    elif request.json is not None:
        text = _json_text(request.json)
    else:
        text = ""
    text = redact(text, secrets)
    return text if len(text) <= MAX_REQUEST_BODY else text[:MAX_REQUEST_BODY] + "\n… (trimmed)"


def _json_text(body: Any) -> str:
    """Compact JSON; for a long bulk body only its first entries, when they alone fill the stored size."""
    shown = _shown(body)
    if shown is not body:
        text = orjson.dumps(shown).decode()
        if len(text) > MAX_REQUEST_BODY + 4096:  # the trimmed text is the same as the whole body's
            return text
    return orjson.dumps(body).decode()


def _shown(body: Any) -> Any:
    """A long JSON:API bulk list cut to its first entries (the stored text is trimmed to 64 KB anyway)."""
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        job = body["data"].get("attributes") or {}
        for value in job.values():
            entries = value.get("data") if isinstance(value, dict) else None
            if isinstance(entries, list) and len(entries) > _SHOWN_EVENTS:
                key = next(k for k, v in job.items() if v is value)
                shown = {**value, "data": entries[:_SHOWN_EVENTS]}
                return {**body, "data": {**body["data"], "attributes": {**job, key: shown}}}
    return body


def record_many(destination_id: int, sent: list[Sent], events: dict[int, ClaimedEvent],
                secrets: list[str], policy: RetryPolicy, health: dict[str, Any] | None = None) -> dict[str, int]:
    """Store a group of answered requests and move every event they carried on, then the destination's health
    changes (last, so its row is locked only for the commit); one commit. Returns counts."""
    if not sent:
        if health:
            write_health(destination_id, health)
            db.session.commit()
        return {}
    request_ids = _insert_requests(destination_id, sent, secrets)
    attempts: list[dict[str, Any]] = []
    changes = _Changes()
    counts: dict[str, int] = {}
    for item, request_id in zip(sent, request_ids, strict=True):
        result, classification = item.result, item.classification
        shared = redact(classification.message or "", secrets)[:MAX_MESSAGE]  # once per request, not per event
        for event_id in item.request.event_ids:
            if event_id in classification.per_event:
                outcome, message = classification.per_event[event_id]
                message = redact(message or "", secrets)[:MAX_MESSAGE]
            else:
                outcome, message = classification.outcome, shared
            attempts.append({"event_id": event_id, "destination_id": destination_id, "request_id": request_id,
                             "attempted_at": item.at, "outcome": outcome.value, "http_status": result.status,
                             "duration_ms": result.duration_ms, "message": message or result.error})
            changes.add(events[event_id], outcome, message or result.error or "", classification, policy,
                        item.at)
            counts[outcome.value] = counts.get(outcome.value, 0) + 1
    _insert_attempts(attempts)
    changes.apply()
    refresh_delivery_state({events[i].order_id for item in sent for i in item.request.event_ids})
    for outcome_name, count in counts.items():
        changes.counters.add(f"attempts:{outcome_name}", count)
    delivery_counters.add(destination_id, changes.counters)
    if health:
        write_health(destination_id, health)
    db.session.commit()
    return counts


def _insert_requests(destination_id: int, sent: list[Sent], secrets: list[str]) -> list[int]:
    rows = []
    for item in sent:
        request, result = item.request, item.result
        rows.append({
            "destination_id": destination_id, "started_at": item.at, "duration_ms": result.duration_ms,
            "method": request.method, "url": redact(request.url, secrets), "http_status": result.status,
            "outcome": item.classification.outcome.value, "request_body": request_text(request, secrets),
            "response_body": redact(result.body[:MAX_RESPONSE_BODY].decode("utf-8", "replace"), secrets),
            "error": redact(result.error, secrets) if result.error else None,
            "event_count": len(request.event_ids)})
    if dialect_name() == "postgresql":  # ids in the rows' order (see unnest_insert)
        return sorted(_execute_columns(_INSERT_REQUESTS, _REQUEST_COLUMNS, rows).scalars())
    table = DeliveryRequest.__table__
    inserted = db.session.execute(sa.insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
    return list(inserted.scalars())


def unnest_insert(table: str, columns: dict[str, str], *, returning_ids: bool = False) -> str:
    """INSERT INTO table (columns) SELECT FROM unnest(<one array parameter per column>) (PostgreSQL).

    The text is the same for any number of rows, so psycopg converts it once (a VALUES list of 50 rows was
    re-parsed on every group), and the arrays go in binary (`%b`): in text form psycopg escapes every quote
    of every JSON body through a regex callback (~450 µs per single-event request). With `returning_ids`
    the ids come back in row order: rows are inserted in `ord` order, so the table's sequence hands out
    ascending ids, and the caller sorts them."""
    names = ", ".join(columns)
    arrays = ", ".join(f"%b::{kind}[]" for kind in columns.values())
    if not returning_ids:
        return f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})"
    return (f"INSERT INTO {table} ({names}) SELECT {names} FROM unnest({arrays}) WITH ORDINALITY "
            f"AS v ({names}, ord) ORDER BY ord RETURNING id")


def _execute_columns(statement: str, columns: dict[str, str], rows: list[dict[str, Any]]) -> sa.CursorResult:
    params = tuple([row[name] for row in rows] for name in columns)
    return db.session.connection().exec_driver_sql(statement, params)


_REQUEST_COLUMNS = {"destination_id": "int", "started_at": "timestamptz", "duration_ms": "int", "method": "text",
                    "url": "text", "http_status": "int", "outcome": "text", "request_body": "text",
                    "response_body": "text", "error": "text", "event_count": "int"}
_INSERT_REQUESTS = unnest_insert(DeliveryRequest.__tablename__, _REQUEST_COLUMNS, returning_ids=True)


_ATTEMPT_COLUMNS = {"event_id": "bigint", "destination_id": "int", "request_id": "bigint",
                    "attempted_at": "timestamptz", "outcome": "text", "http_status": "int", "duration_ms": "int",
                    "message": "text"}
_SHARED_COLUMNS = [name for name in _ATTEMPT_COLUMNS if name != "event_id"]
_INSERT_ATTEMPTS = unnest_insert(DeliveryAttempt.__tablename__, _ATTEMPT_COLUMNS)
# One request's attempts share everything but the event: its ids as one array literal, the rest once each.
_INSERT_SHARED_ATTEMPTS = (f"INSERT INTO {DeliveryAttempt.__tablename__} ({', '.join(_ATTEMPT_COLUMNS)}) "
                           "SELECT unnest(%s::bigint[]), "
                           + ", ".join(f"%b::{_ATTEMPT_COLUMNS[name]}" for name in _SHARED_COLUMNS))
_FEW_CLASSES = 4


def _insert_attempts(rows: list[dict[str, Any]]) -> None:
    """Attempt rows; on PostgreSQL a bulk request's 1,000 rows, which differ only in event_id, become one
    INSERT ... SELECT unnest(<event ids>), <shared values> instead of 8,000 parameters, and rows of many
    single requests one INSERT ... SELECT FROM unnest(<one array per column>)."""
    if dialect_name() != "postgresql":
        db.session.execute(sa.insert(DeliveryAttempt.__table__), rows)
        return
    classes: dict[tuple, list[int]] = defaultdict(list)
    for row in rows:
        classes[tuple(row[name] for name in _SHARED_COLUMNS)].append(row["event_id"])
    if len(classes) > _FEW_CLASSES:
        _execute_columns(_INSERT_ATTEMPTS, _ATTEMPT_COLUMNS, rows)
        return
    connection = db.session.connection()
    for shared, event_ids in classes.items():
        # The ids as one text literal: psycopg dumps a list element by element in Python (see claim.pg_array).
        connection.exec_driver_sql(_INSERT_SHARED_ATTEMPTS, ("{" + ",".join(map(str, event_ids)) + "}", *shared))


class _Changes:
    """Next states of a group's events, applied set-based: delivered ones in one UPDATE, refusals and dead
    letters in one per message, retries (each with its own jittered time) in one executemany."""

    def __init__(self) -> None:
        self.delivered: list[tuple[int, datetime]] = []
        self.settled: dict[tuple[str, str], list[int]] = defaultdict(list)  # (state, message) -> ids
        self.retries: list[dict[str, Any]] = []
        self.counters = delivery_counters.Increments()

    def add(self, event: ClaimedEvent, outcome: Outcome, message: str, classification: Classification,
            policy: RetryPolicy, now: datetime) -> None:
        attempts = event.attempts + 1
        if outcome is Outcome.DELIVERED:
            self.delivered.append((event.id, now))
            self.counters.delivered(event.created_at, now)
        elif outcome is Outcome.REJECTED:
            self.settled["rejected", message].append(event.id)
        elif policy.is_dead(attempts, event.created_at, now):
            self.settled["dead", message].append(event.id)
        else:
            delay = policy.backoff(attempts, classification.retry_after)
            self.retries.append({"b_id": event.id, "last_error": message,
                                 "next_attempt_at": now + timedelta(seconds=delay)})

    def apply(self) -> None:
        events = Event.__table__  # Core statements: nothing in the session to synchronise
        cleared = {"attempts": events.c.attempts + 1, "lease_until": None, "leased_by": None}
        if self.delivered:
            _apply_delivered(self.delivered, cleared | {"state": "delivered", "last_error": None})
        for (state, message), ids in self.settled.items():
            for start in range(0, len(ids), 1000):
                db.session.execute(sa.update(events).where(ids_match(events.c.id, ids[start:start + 1000]))
                                   .values(cleared | {"state": state, "last_error": message}))
        if self.retries:
            db.session.execute(
                sa.update(events).where(events.c.id == sa.bindparam("b_id"))
                .values(cleared | {"state": "retrying", "last_error": sa.bindparam("last_error"),
                                   "next_attempt_at": sa.bindparam("next_attempt_at")}), self.retries)


def _apply_delivered(delivered: list[tuple[int, datetime]], values: dict[str, Any]) -> None:
    """Delivered events, each with its own delivered_at: one UPDATE ... FROM unnest(ids, times) on PostgreSQL."""
    events = Event.__table__
    if dialect_name() == "postgresql":
        pairs = sa.select(
            sa.func.unnest(pg_array([i for i, _ in delivered], sa.BigInteger, "d_ids")).label("id"),
            sa.func.unnest(pg_array([at for _, at in delivered], sa.DateTime(timezone=True), "d_at")).label("at"),
        ).subquery("delivered")
        db.session.execute(sa.update(events).where(events.c.id == pairs.c.id)
                           .values(values | {"delivered_at": pairs.c.at}))
        return
    by_time: dict[datetime, list[int]] = defaultdict(list)
    for event_id, at in delivered:
        by_time[at].append(event_id)
    for at, ids in by_time.items():
        db.session.execute(sa.update(events).where(events.c.id.in_(ids)).values(values | {"delivered_at": at}))


def mark_skipped(skipped: dict[int, str], events: dict[int, ClaimedEvent], now: datetime) -> None:
    """Events the platform does not take are settled as skipped, with the reason, never retried."""
    if not skipped:
        return
    table = Event.__table__
    db.session.execute(
        sa.update(table).where(table.c.id == sa.bindparam("b_id"))
        .values(state="skipped", last_error=sa.bindparam("last_error"), lease_until=None, leased_by=None,
                delivered_at=now),
        [{"b_id": event_id, "last_error": reason[:MAX_MESSAGE]} for event_id, reason in skipped.items()])
    refresh_delivery_state({events[i].order_id for i in skipped})
    destination_id = db.session.scalar(sa.select(table.c.destination_id).where(table.c.id == next(iter(skipped))))
    if destination_id is not None:
        increments = delivery_counters.Increments()
        increments.add("events:skipped", len(skipped))
        delivery_counters.add(destination_id, increments)
    db.session.commit()
