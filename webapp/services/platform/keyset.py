"""Keyset pagination on (sort key, id): pages cost the same at row 10 and row 1,000,000.

The cursor in the URL is a row id (`?after=<id>` / `?before=<id>`); the sort key is read back from that
row, so links stay short and a page never skips or repeats rows when rows are added meanwhile.
NULL sort keys always come last, whatever the direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db


@dataclass(frozen=True)
class SortKey:
    expression: Any  # a column or SQL expression
    descending: bool
    nullable: bool = False


@dataclass(frozen=True)
class Page:
    rows: Sequence[Any]
    has_next: bool
    has_prev: bool
    first_id: int | None
    last_id: int | None


def _later(key: SortKey, id_column: Any, value: Any, row_id: int) -> Any:
    """Rows after (value, row_id) in the page order."""
    expr = key.expression
    id_after = id_column < row_id if key.descending else id_column > row_id
    if value is None:
        return sa.and_(expr.is_(None), id_after)
    value_after = expr < value if key.descending else expr > value
    condition = sa.or_(value_after, sa.and_(expr == value, id_after))
    return sa.or_(condition, expr.is_(None)) if key.nullable else condition


def _earlier(key: SortKey, id_column: Any, value: Any, row_id: int) -> Any:
    """Rows before (value, row_id) in the page order."""
    expr = key.expression
    id_before = id_column > row_id if key.descending else id_column < row_id
    if value is None:
        return sa.or_(expr.is_not(None), sa.and_(expr.is_(None), id_before))
    value_before = expr > value if key.descending else expr < value
    return sa.or_(value_before, sa.and_(expr == value, id_before))


def _ordering(key: SortKey, id_column: Any, reverse: bool) -> list[Any]:
    descending = key.descending != reverse
    nulls = [key.expression.is_(None).desc() if reverse else key.expression.is_(None)] if key.nullable else []
    if descending:
        return [*nulls, key.expression.desc(), id_column.desc()]
    return [*nulls, key.expression.asc(), id_column.asc()]


def paginate(query: sa.Select, key: SortKey, id_column: Any, *, after: int | None = None,
             before: int | None = None, limit: int = 50, row_id: Any = None) -> Page:
    """One page of `query` (already filtered and joined) in `key` order.

    `row_id(row)` returns a result row's id (default: `row.id`, or `row[0].id` for tuple rows).
    """
    cursor_id = after if after is not None else before
    found = None
    if cursor_id is not None:
        # Unfiltered: a row that left the filter since (e.g. its delivery got fixed) is still a position.
        found = db.session.execute(sa.select(key.expression).select_from(*query.get_final_froms())
                                   .where(id_column == cursor_id).limit(1)).first()
    if found is None:
        after = before = None
    get_id = row_id or _default_row_id
    if before is not None and found is not None:
        condition = _earlier(key, id_column, found[0], before)
        rows = list(db.session.execute(query.where(condition).order_by(*_ordering(key, id_column, True))
                                       .limit(limit + 1)).all())
        if not rows:  # nothing before the cursor: show the first page
            return paginate(query, key, id_column, limit=limit, row_id=row_id)
        has_prev, rows = len(rows) > limit, rows[:limit]
        rows.reverse()
        has_next = True
    else:
        if after is not None and found is not None:
            query = query.where(_later(key, id_column, found[0], after))
        rows = list(db.session.execute(query.order_by(*_ordering(key, id_column, False)).limit(limit + 1)).all())
        has_next, rows = len(rows) > limit, rows[:limit]
        has_prev = after is not None
    return Page(rows=rows, has_next=has_next, has_prev=has_prev and bool(rows),
                first_id=get_id(rows[0]) if rows else None, last_id=get_id(rows[-1]) if rows else None)


def _default_row_id(row: Any) -> int:
    first = row[0]
    return first if isinstance(first, int) else first.id
