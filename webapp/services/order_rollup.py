"""Keep orders.delivery_state (the list filter) in step with the states of the order's events."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Event, Order

# Worst state wins: a single dead event makes the whole order "dead" in the list.
_RANK = {"dead": 4, "rejected": 3, "retrying": 3, "pending": 2, "in_flight": 2, "delivered": 1, "skipped": 1}
_NAME = {4: "dead", 3: "failing", 2: "pending", 1: "delivered", 0: "none"}


def rollup(states: Iterable[str]) -> str:
    return _NAME[max((_RANK.get(state, 0) for state in states), default=0)]


def refresh_delivery_state(order_ids: Iterable[int]) -> None:
    """Recompute the roll-up for these orders (one grouped query, one executemany)."""
    ids = sorted({i for i in order_ids if i})
    if not ids:
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
