"""The contacts list: search, segment filter, sort by any column with keyset pages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased, selectinload

from webapp.extensions import db
from webapp.models import Contact, ContactLtv
from webapp.services.platform.keyset import Page, SortKey, paginate

PAGE_SIZE = 50

# AOV in the contact's primary currency; a float cast so SQLite does not divide integers.
_primary_ltv = aliased(ContactLtv)
AOV_EXPRESSION = sa.case(
    (_primary_ltv.orders > 0,
     sa.cast(_primary_ltv.placed - _primary_ltv.cancelled, sa.Float) / _primary_ltv.orders),
    else_=None)

# column key -> (header, expression, nullable, default direction is descending)
COLUMNS: dict[str, tuple[str, Any, bool, bool]] = {
    "email": ("Email", Contact.email, True, False),
    "name": ("Name", Contact.last_name, True, False),
    "orders": ("Orders", Contact.orders_count, False, True),
    "first_order": ("First order", Contact.first_order_at, True, True),
    "last_order": ("Last order", Contact.last_order_at, True, True),
    "ltv": ("LTV", Contact.ltv_primary, False, True),
    "aov": ("AOV", AOV_EXPRESSION, True, True),
    "avg_days": ("Avg days between orders", Contact.avg_days_between_orders, True, False),
    "segment": ("RFM segment", Contact.rfm_segment, True, False),
}


@dataclass(frozen=True)
class ContactFilters:
    q: str = ""
    segment: str = ""
    sort: str = "ltv"
    descending: bool = True

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> ContactFilters:
        sort = args.get("sort", "ltv")
        sort = sort if sort in COLUMNS else "ltv"
        direction = args.get("dir", "")
        descending = COLUMNS[sort][3] if direction not in ("asc", "desc") else direction == "desc"
        return cls(q=(args.get("q") or "").strip(), segment=(args.get("segment") or "").strip(),
                   sort=sort, descending=descending)

    def as_args(self, **changes: Any) -> dict[str, str]:
        """Query arguments for links; `changes` override (e.g. another sort column)."""
        values = {"q": self.q, "segment": self.segment, "sort": self.sort,
                  "dir": "desc" if self.descending else "asc"} | changes
        return {name: value for name, value in values.items() if value}

    def sort_link_args(self, column: str) -> dict[str, str]:
        """Clicking the current sort column flips its direction; another column starts at its default."""
        if column == self.sort:
            return self.as_args(dir="asc" if self.descending else "desc")
        return self.as_args(sort=column, dir="desc" if COLUMNS[column][3] else "asc")


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def conditions(filters: ContactFilters) -> list[sa.ColumnElement[bool]]:
    """Live (not merged) contacts matching the search and segment (shared by the list and the export)."""
    found = [Contact.merged_into_id.is_(None)]
    if filters.q:
        found.append(_search(filters.q))
    if filters.segment:
        found.append(Contact.rfm_segment == filters.segment)
    return found


def filtered_query(filters: ContactFilters) -> sa.Select:
    """Matching contacts joined to their primary-currency LTV row (for the AOV column and sort)."""
    return (sa.select(Contact, AOV_EXPRESSION.label("aov"))
            .outerjoin(_primary_ltv, sa.and_(_primary_ltv.contact_id == Contact.id,
                                             _primary_ltv.currency == Contact.ltv_primary_currency))
            .where(*conditions(filters)))


def _search(q: str) -> sa.ColumnElement[bool]:
    """Email prefix, or first/last name prefix; 'ann smi' matches Ann Smith."""
    text = q.lower()
    first, last = sa.func.lower(Contact.first_name), sa.func.lower(Contact.last_name)
    options = [Contact.email.like(_like_prefix(text), escape="\\"),
               first.like(_like_prefix(text), escape="\\"), last.like(_like_prefix(text), escape="\\")]
    given, _, family = text.partition(" ")
    if family.strip():
        options.append(sa.and_(first.like(_like_prefix(given), escape="\\"),
                               last.like(_like_prefix(family.strip()), escape="\\")))
    return sa.or_(*options)


def list_contacts(filters: ContactFilters, *, after: int | None = None, before: int | None = None,
                  limit: int = PAGE_SIZE) -> Page:
    """One page; rows are `(Contact, aov)` with every contact's LTV rows loaded for display."""
    _, expression, nullable, _ = COLUMNS[filters.sort]
    key = SortKey(expression, descending=filters.descending, nullable=nullable)
    query = filtered_query(filters).options(selectinload(Contact.ltv))
    return paginate(query, key, Contact.id, after=after, before=before, limit=limit)


def any_contacts() -> bool:
    return db.session.scalar(sa.select(Contact.id).limit(1)) is not None
