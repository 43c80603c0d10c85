"""Keep orders.delivery_state (the list filter) in step with the states of the order's events."""

from __future__ import annotations

import functools
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from webapp.extensions import db
from webapp.models import Event, Order, utcnow
from webapp.services.platform.statements import dialect_name

# Worst state wins: a single dead event makes the whole order "dead" in the list.
_RANK = {"dead": 4, "rejected": 3, "retrying": 3, "pending": 2, "in_flight": 2, "delivered": 1, "skipped": 1}
_NAME = {4: "dead", 3: "failing", 2: "pending", 1: "delivered", 0: "none"}


def rollup(states: Iterable[str]) -> str:
    return _NAME[max((_RANK.get(state, 0) for state in states), default=0)]


def refresh_delivery_state(order_ids: Iterable[int]) -> None:
    """Recompute the roll-up for these orders: set-based on PostgreSQL, one grouped query + executemany elsewhere."""
    ids = sorted({i for i in order_ids if i})
    if not ids:
        return
    if dialect_name() == "postgresql":
        _refresh_in_sql(ids)
        return
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows = db.session.execute(
            sa.select(Event.order_id, Event.state).where(Event.order_id.in_(chunk)).distinct()).all()
        states: dict[int, list[str]] = {order_id: [] for order_id in chunk}
        for order_id, state in rows:
            states[order_id].append(state)
        db.session.execute(sa.update(Order), [{"id": order_id, "delivery_state": rollup(found)}
                                              for order_id, found in states.items()],
                           execution_options={"synchronize_session": False})


def _rollup_sql(states: sa.ColumnElement) -> sa.ColumnElement:
    """The same worst-state-wins rule as `rollup`, as an SQL aggregate over the order's event states."""
    rank = sa.case(*((states == state, value) for state, value in _RANK.items()), else_=0)
    best = sa.func.coalesce(sa.func.max(rank), 0)
    return sa.case(*((best == value, name) for value, name in _NAME.items() if value), else_=_NAME[0])


@functools.cache
def _refresh_statements() -> tuple[sa.Select, sa.Update]:
    """Built once: the statements are the same for every call, only the id array changes."""
    orders, events = Order.__table__, Event.__table__
    wanted = sa.bindparam("order_ids", type_=ARRAY(sa.BigInteger))
    lock = sa.select(orders.c.id).where(orders.c.id == sa.any_(wanted)).order_by(orders.c.id).with_for_update()
    computed = (sa.select(orders.c.id.label("order_id"), _rollup_sql(events.c.state).label("state"))
                .select_from(orders.outerjoin(events, events.c.order_id == orders.c.id))
                .where(orders.c.id == sa.any_(wanted))
                .group_by(orders.c.id).subquery("computed"))
    update = (sa.update(orders).where(orders.c.id == computed.c.order_id,
                                      orders.c.delivery_state.is_distinct_from(computed.c.state))
              .values(delivery_state=computed.c.state, updated_at=sa.bindparam("now")))
    return lock, update


def _refresh_in_sql(ids: list[int]) -> None:
    """Two statements whatever the count. The order rows are locked first, in id order, so two workers
    refreshing overlapping orders queue instead of deadlocking; the UPDATE then runs with a snapshot
    taken after the lock, so it sees the other worker's committed event states."""
    lock, update = _refresh_statements()
    db.session.execute(lock, {"order_ids": ids})
    db.session.execute(update, {"order_ids": ids, "now": utcnow()})
