"""The orders list: search, filters (including delivery per destination), sorts and keyset pages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Destination, Event, Order
from webapp.services.platform.keyset import Page, SortKey, paginate

STATUSES = ("pending", "placed", "fulfilled", "cancelled", "refunded", "partially_refunded")
DELIVERY_STATES = ("delivered", "pending", "failing", "dead", "none")
# Event states behind each delivery class when filtering by one destination.
DELIVERY_CLASSES: dict[str, tuple[str, ...]] = {
    "delivered": ("delivered", "skipped"),
    "pending": ("pending", "in_flight"),
    "failing": ("retrying", "rejected"),
    "dead": ("dead",),
}
SORTS: dict[str, tuple[str, SortKey]] = {
    "newest": ("Newest first", SortKey(Order.placed_at, descending=True)),
    "oldest": ("Oldest first", SortKey(Order.placed_at, descending=False)),
    "total": ("Highest total", SortKey(Order.total, descending=True)),
    "total_asc": ("Lowest total", SortKey(Order.total, descending=False)),
}
PAGE_SIZE = 50


@dataclass(frozen=True)
class OrderFilters:
    q: str = ""
    status: str = ""
    delivery: str = ""
    destination_id: int | None = None
    sort: str = "newest"

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> OrderFilters:
        """Unknown values are ignored rather than rejected: a stale bookmark still shows a list."""
        destination = (args.get("destination") or "").strip()
        status = args.get("status", "")
        delivery = args.get("delivery", "")
        sort = args.get("sort", "newest")
        return cls(q=(args.get("q") or "").strip(),
                   status=status if status in STATUSES else "",
                   delivery=delivery if delivery in DELIVERY_STATES else "",
                   destination_id=int(destination) if destination.isdigit() else None,
                   sort=sort if sort in SORTS else "newest")

    def as_args(self) -> dict[str, str]:
        """The filters as query arguments (for pager links and the CSV-free round trip)."""
        args = {"q": self.q, "status": self.status, "delivery": self.delivery,
                "destination": str(self.destination_id or ""), "sort": "" if self.sort == "newest" else self.sort}
        return {name: value for name, value in args.items() if value}

    @property
    def active(self) -> bool:
        return bool(self.q or self.status or self.delivery or self.destination_id)


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _destination_condition(destination_id: int, delivery: str) -> sa.ColumnElement[bool]:
    """EXISTS on the events of one destination (served by ix_events_dest_state / the order_id index)."""
    mine = sa.and_(Event.order_id == Order.id, Event.destination_id == destination_id)
    if not delivery or delivery == "none":
        has_events = sa.exists().where(mine)
        return ~has_events if delivery == "none" else has_events
    states = DELIVERY_CLASSES[delivery]
    if delivery == "delivered":
        return sa.and_(sa.exists().where(mine),
                       ~sa.exists().where(mine, Event.state.not_in(states)))
    return sa.exists().where(mine, Event.state.in_(states))


def filtered_query(filters: OrderFilters) -> sa.Select:
    query = sa.select(Order)
    if filters.q:
        query = query.where(sa.or_(Order.external_id == filters.q,
                                   Order.email.like(_like_prefix(filters.q.lower()), escape="\\")))
    if filters.status:
        query = query.where(Order.status == filters.status)
    if filters.destination_id is not None:
        query = query.where(_destination_condition(filters.destination_id, filters.delivery))
    elif filters.delivery:
        query = query.where(Order.delivery_state == filters.delivery)
    return query


def list_orders(filters: OrderFilters, *, after: int | None = None, before: int | None = None,
                limit: int = PAGE_SIZE) -> Page:
    """One page of orders; rows are `(Order,)` tuples."""
    _, key = SORTS[filters.sort]
    return paginate(filtered_query(filters), key, Order.id, after=after, before=before, limit=limit)


def any_orders() -> bool:
    return db.session.scalar(sa.select(Order.id).limit(1)) is not None


def destination_choices() -> list[tuple[int, str]]:
    return [(d.id, d.name) for d in db.session.scalars(sa.select(Destination).order_by(Destination.name)).all()]
