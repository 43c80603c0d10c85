"""Reading and writing the rows of orders and their lines for ingest, with statements built once.

Ingest (webapp.services.orders.ingest) decides what each order's rows become; this module only moves rows:
IN-list loads, executemany updates, and new rows by INSERT ... RETURNING or, for many rows on
PostgreSQL, ids from the sequence and COPY (webapp.services.platform.bulk_rows).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Order, OrderLine
from webapp.services.platform import bulk_rows
from webapp.services.platform.statements import per_dialect

ORDERS = Order.__table__
LINES = OrderLine.__table__
ORDER_JSON_COLUMNS = ("data", "status_history", "anomalies", "derived")
_CHUNK = 500  # ids per IN (...) list


def load_orders(external_ids: list[str]) -> dict[str, Any]:
    """The stored orders with these ids, by id, locked until the transaction ends."""
    found: dict[str, Any] = {}
    for start in range(0, len(external_ids), _CHUNK):
        rows = db.session.execute(_orders_query(), {"ids": external_ids[start:start + _CHUNK]})
        found.update({row.external_id: row for row in rows})
    return found


@cache
def _orders_query() -> sa.Select:
    """Locked: a concurrent request changing the same order waits for this one (write_races)."""
    return (sa.select(ORDERS).where(ORDERS.c.external_id.in_(sa.bindparam("ids", expanding=True)))
            .order_by(ORDERS.c.id).with_for_update())


def load_lines(order_ids: list[int]) -> dict[int, list[Any]]:
    """The stored lines of these orders, in id order."""
    found: dict[int, list[Any]] = {order_id: [] for order_id in order_ids}
    for start in range(0, len(order_ids), _CHUNK):
        for row in db.session.execute(_lines_query(), {"ids": order_ids[start:start + _CHUNK]}):
            found[row.order_id].append(row)
    return found


@cache
def _lines_query() -> sa.Select:
    return sa.select(LINES).where(LINES.c.order_id.in_(sa.bindparam("ids", expanding=True))).order_by(LINES.c.id)


@per_dialect
def _update_orders(dialect: str) -> sa.Update:
    return (sa.update(ORDERS).where(ORDERS.c.id == sa.bindparam("b_id"))
            .values(bulk_rows.json_bind_values(ORDER_JSON_COLUMNS, dialect)))


@per_dialect
def _insert_orders_returning(dialect: str) -> sa.Insert:
    return (sa.insert(ORDERS).values(bulk_rows.json_bind_values(ORDER_JSON_COLUMNS, dialect))
            .returning(ORDERS.c.id, sort_by_parameter_order=True))


def insert_orders(rows: list[dict[str, Any]]) -> list[int]:
    """Insert orders, returning their new ids in order."""
    ids = bulk_rows.reserve_ids(ORDERS, rows)
    if ids is None:
        params = bulk_rows.with_json_text(rows, ORDER_JSON_COLUMNS)
        return list(db.session.execute(_insert_orders_returning(), params).scalars())
    bulk_rows.copy_insert(ORDERS, [row | {"id": row_id} for row, row_id in zip(rows, ids, strict=True)])
    return ids


def update_orders(changed: list[dict[str, Any]]) -> None:
    """Changed orders, each row with its id as `b_id`: one executemany."""
    if changed:
        db.session.execute(_update_orders(), bulk_rows.with_json_text(changed, ORDER_JSON_COLUMNS))


def write_lines(inserts: list[dict[str, Any]], updates: list[dict[str, Any]], deletes: list[int]) -> None:
    """New lines, changed lines (id as `b_id`) and ids of lines gone from their order."""
    for start in range(0, len(deletes), _CHUNK):
        db.session.execute(sa.delete(LINES).where(LINES.c.id.in_(deletes[start:start + _CHUNK])))
    if updates:
        db.session.execute(_update_lines(), updates)
    if bulk_rows.use_bulk_path(len(inserts)):
        bulk_rows.copy_insert(LINES, inserts)
    elif inserts:
        db.session.execute(_insert_lines(), inserts)


@cache
def _update_lines() -> sa.Update:
    return sa.update(LINES).where(LINES.c.id == sa.bindparam("b_id"))


@cache
def _insert_lines() -> sa.Insert:
    return sa.insert(LINES)
