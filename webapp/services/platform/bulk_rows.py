"""Writing many new rows fast: ids from the sequence, COPY, and JSON bound as ready text.

Ingest writes hundreds of orders, lines and outbox rows per request. On PostgreSQL a pipelined
executemany is already good; for many plain inserts COPY is about twice as fast, and a multi-row
INSERT ... RETURNING is slow to send through psycopg (it parses the huge statement client-side), so ids
are taken from the sequence first. On SQLite the plain Core statements are used throughout.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from webapp.extensions import db
from webapp.services.platform.statements import dialect_name

BULK_FROM = 20  # new rows in one statement from which the PostgreSQL bulk path pays off


def json_text(value: Any) -> str:
    """A JSON column's value as JSON text (what the column would store), ~10x faster than json.dumps."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # e.g. an int beyond 64 bits: the standard encoder takes anything JSON can
        return json.dumps(value)


def use_bulk_path(count: int) -> bool:
    """Whether `count` new rows go by the PostgreSQL bulk path (sequence ids, COPY)."""
    return count >= BULK_FROM and dialect_name() == "postgresql"


def reserve_ids(model: Any, items: list[Any]) -> list[int] | None:
    """On the bulk path, take ids for many new rows from the table's sequence in one query.

    Objects get their id set; for plain rows the ids are returned. None where the caller should insert
    with RETURNING (or let the ORM assign ids) instead.
    """
    if not use_bulk_path(len(items)):
        return None
    table = getattr(model, "__table__", model)
    ids = list(db.session.scalars(
        sa.select(sa.func.nextval(sa.func.pg_get_serial_sequence(table.name, "id")))
        .select_from(sa.func.generate_series(1, len(items)))))
    if not isinstance(items[0], dict):
        for item, item_id in zip(items, ids, strict=True):
            item.id = item_id
    return ids


def copy_insert(table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL, many new rows: one COPY instead of a pipelined executemany (about half the time).

    Only for plain inserts (no conflict possible: ids come from the sequence, or the rows are new).
    Columns the rows leave out get their Python-side defaults, as Core's INSERT would give them; JSON
    values go as orjson text.
    """
    names = list(rows[0])
    defaults = {column.name: column.default.arg(None) if column.default.is_callable else column.default.arg
                for column in table.c
                if column.name not in rows[0] and column.default is not None and not column.default.is_sequence}
    json_names = {column.name for column in table.c if isinstance(column.type, sa.JSON)}
    columns = names + list(defaults)
    cursor = db.session.connection().connection.driver_connection.cursor()
    try:
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                values = [row[name] for name in names] + list(defaults.values())
                copy.write_row([json_text(value) if name in json_names else value
                                for name, value in zip(columns, values, strict=True)])
    finally:
        cursor.close()


def json_bind_values(columns: tuple[str, ...], dialect: str) -> dict[str, Any]:
    """`.values()` for an INSERT/UPDATE binding these JSON columns as ready JSON text (`<name>_json`):
    orjson once per value instead of the dialect's json.dumps."""
    postgres = dialect == "postgresql"
    values = {}
    for name in columns:
        text = sa.bindparam(f"{name}_json", type_=sa.Text())
        values[name] = sa.cast(text, JSONB()) if postgres else text
    return values


def with_json_text(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows for `json_bind_values(columns)` statements: each JSON column's value as text under `<name>_json`."""
    out = []
    for row in rows:
        params = {name: value for name, value in row.items() if name not in columns}
        out.append(params | {f"{name}_json": json_text(row[name]) for name in columns})
    return out
