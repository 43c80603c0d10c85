"""The transactional outbox: event rows written in the same transaction as the change that caused them.

One row per (destination, event name, unique id); inserting an existing key does nothing, so re-sends and
retries can never create a second event. Redis is signalled only after the commit.

Writing is the largest cost of a big ingest batch (~6 rows per order, each with the order as JSON), so
each distinct payload is serialised once with orjson and bound as text; on PostgreSQL a large write
goes through COPY into a temporary table and one `INSERT ... SELECT ... ON CONFLICT DO NOTHING`
(tests/benchmarks/RESULTS-orders.md, issue 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import Destination, Event
from webapp.services.platform.bulk_rows import json_text
from webapp.services.platform.statements import dialect_name, per_dialect

# Delivery order within one order and destination (see workers.delivery.claim: lower goes first).
SEQUENCE = {"pending_order": 0, "placed_order": 1, "ordered_product": 1, "fulfilled_order": 2,
            "cancelled_order": 3, "refunded_order": 4}
EVENTS = Event.__table__
# On PostgreSQL, from this many rows: COPY costs two more round trips than a pipelined executemany but was
# ~30% faster for a 1,000-order batch (~6,400 rows); a single order writes ~14 rows.
COPY_FROM_ROWS = 200
_CHUNK = 1000  # rows per executemany
_STAGE = "shoprelay_new_events"
_STAGE_COLUMNS = ("position", "destination_id", "name", "unique_id", "order_id", "contact_id", "payload",
                  "sequence", "historical", "occurred_at")
_STAGE_TYPES = ("int4", "int8", "text", "text", "int8", "int8", "text", "int4", "bool", "timestamptz")


@dataclass
class NewEvent:
    name: str
    unique_id: str
    payload: dict[str, Any]
    occurred_at: datetime
    order_id: int | None = None
    contact_id: int | None = None
    historical: bool = False


@dataclass
class Target:
    """A destination as the outbox needs it: which event names it takes."""

    id: int
    mode: str
    accepts: frozenset[str]


def active_targets() -> list[Target]:
    """Enabled destinations (paused ones too: their events wait) and the events each takes.

    Read on every ingest request (four columns, no ORM objects), so a destination created, paused,
    changed or deleted counts from the next request on.
    """
    from workers.destinations import get_adapter_class  # pure adapter metadata; no circle

    targets = []
    for row in db.session.execute(_targets_query()):
        supported = get_adapter_class(row.kind).supported_events
        wanted = set(row.events or supported)
        targets.append(Target(row.id, row.mode, frozenset(wanted & supported)))
    return targets


@cache
def _targets_query() -> sa.Select:
    table = Destination.__table__
    return (sa.select(table.c.id, table.c.kind, table.c.mode, table.c.events).where(table.c.enabled)
            .order_by(table.c.id))


def write_events(events: list[NewEvent], targets: list[Target]) -> set[int]:
    """Insert one row per target that takes the event; returns the ids of destinations that got rows."""
    rows = _rows(events, targets)
    if not rows:
        return set()
    if dialect_name() == "postgresql" and len(rows) >= COPY_FROM_ROWS:
        _copy_rows(rows)
    else:
        _insert_rows(rows)
    return {row["destination_id"] for row in rows}


def _rows(events: list[NewEvent], targets: list[Target]) -> list[dict[str, Any]]:
    """The rows to write, each distinct payload serialised once (events of one order share theirs)."""
    texts: dict[int, str] = {}
    rows = []
    for event in events:
        wanted = [target.id for target in targets if event.name in target.accepts]
        if not wanted:
            continue
        text = texts.get(id(event.payload))
        if text is None:
            text = texts[id(event.payload)] = json_text(event.payload)
        for destination_id in wanted:
            rows.append({"destination_id": destination_id, "name": event.name, "unique_id": event.unique_id,
                         "order_id": event.order_id, "contact_id": event.contact_id, "payload_text": text,
                         "sequence": SEQUENCE.get(event.name, 0), "historical": event.historical,
                         "occurred_at": event.occurred_at})
    return rows


def _insert_rows(rows: list[dict[str, Any]]) -> None:
    """Executemany with the payload bound as ready JSON text (pipelined by psycopg on PostgreSQL)."""
    now = _now()
    for row in rows:
        row["now"] = now
    statement = _insert_statement()
    for start in range(0, len(rows), _CHUNK):
        db.session.execute(statement, rows[start:start + _CHUNK])


@per_dialect
def _insert_statement(dialect: str) -> sa.Insert:
    postgres = dialect == "postgresql"
    text = sa.bindparam("payload_text", type_=sa.Text())
    payload = sa.cast(text, postgresql.JSONB()) if postgres else text
    now = sa.bindparam("now", type_=EVENTS.c.created_at.type)
    insert = (postgresql.insert if postgres else sqlite.insert)(EVENTS).values(
        payload=payload, state="pending", attempts=0, created_at=now, next_attempt_at=now)
    return insert.on_conflict_do_nothing(index_elements=["destination_id", "name", "unique_id"])


def _copy_rows(rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: binary COPY into a per-session temporary table, then one INSERT ... SELECT.

    The temporary table empties itself at commit (and a rollback takes its rows with it), so it
    never carries rows from one transaction into the next.
    """
    connection = db.session.connection()
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (position integer, destination_id bigint, name text, "
        "unique_id text, order_id bigint, contact_id bigint, payload text, sequence integer, historical boolean, "
        "occurred_at timestamptz) ON COMMIT DELETE ROWS")
    cursor = connection.connection.driver_connection.cursor()
    try:
        with cursor.copy(f"COPY {_STAGE} ({', '.join(_STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(_STAGE_TYPES))
            for position, row in enumerate(rows):
                copy.write_row((position, row["destination_id"], row["name"], row["unique_id"], row["order_id"],
                                row["contact_id"], row["payload_text"], row["sequence"], row["historical"],
                                row["occurred_at"]))
    finally:
        cursor.close()
    connection.execute(sa.text(
        "INSERT INTO events (destination_id, name, unique_id, order_id, contact_id, payload, state, sequence, "
        "historical, attempts, occurred_at, created_at, next_attempt_at) "
        f"SELECT destination_id, name, unique_id, order_id, contact_id, payload::jsonb, 'pending', sequence, "
        f"historical, 0, occurred_at, :now, :now FROM {_STAGE} ORDER BY position "
        "ON CONFLICT (destination_id, name, unique_id) DO NOTHING"
    ).bindparams(sa.bindparam("now", type_=EVENTS.c.created_at.type)), {"now": _now()})


def _now() -> datetime:
    from webapp.models import utcnow

    return utcnow()
