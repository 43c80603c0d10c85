"""/metrics' `shoprelay_orders` stays exact while it counts only the orders after its mark."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from tests.conftest import both_databases
from webapp.models import Order, utcnow
from webapp.services.overview.order_count import MARK_KEY, SETTLE, stored_orders

pytestmark = both_databases


def _orders(db, first: int, count: int, *, age: timedelta = timedelta(0)) -> None:  # noqa: ANN001
    created = utcnow() - age
    db.session.add_all([Order(external_id=f"o-{n}", status="placed", currency="USD", total=Decimal("1"),
                              placed_at=created, data={}, created_at=created) for n in range(first, first + count)])
    db.session.commit()


def _counted_queries(db, statements: list[str]):  # noqa: ANN001, ANN202
    @sa.event.listens_for(db.engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ANN202, ARG001
        statements.append(statement)
    return record


def test_the_count_is_exact_from_a_mark_as_orders_arrive(app, db, redis) -> None:  # noqa: ANN001
    _orders(db, 0, 30, age=SETTLE * 3)
    assert stored_orders(redis) == 30
    assert redis.get(MARK_KEY), "the settled orders set a mark"
    _orders(db, 30, 5)  # fresh: counted, but not under the mark yet
    assert stored_orders(redis) == 35
    assert stored_orders(redis, now=utcnow() + SETTLE * 2) == 35  # the five settle under the mark
    _orders(db, 35, 2)
    assert stored_orders(redis) == 37
    redis.flushdb()  # a lost mark: one full count rebuilds it
    assert stored_orders(redis) == 37 and stored_orders(None) == 37


def test_a_scrape_after_the_mark_reads_only_the_orders_after_it(app, db, redis, client) -> None:  # noqa: ANN001
    _orders(db, 0, 50, age=SETTLE * 3)
    stored_orders(redis)
    statements: list[str] = []
    listener = _counted_queries(db, statements)
    try:
        assert stored_orders(redis) == 50
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listener)
    counts = [s for s in statements if "count(" in s.lower() and "orders" in s]
    assert counts and all(re.search(r"orders\.id >", s) for s in counts), statements
    body = client.get("/metrics").get_data(as_text=True)
    assert "shoprelay_orders 50" in body.splitlines()
