"""The products browser: search and filters over a catalog of a million rows, keyset pages by id.

Every filter is chosen to stay cheap at that size: brand and sku are indexed equality tests, the id
lookup uses the (source_id, external_id) key, and pages walk the primary key
(`WHERE id > :after ORDER BY id LIMIT 51`), so a filter that matches often stops after a few pages of
the table. The
category test is a JSONB containment on PostgreSQL (`categories @> '["Shoes"]'`, GIN-indexable) and a
`json_each` lookup on SQLite.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from webapp.extensions import db
from webapp.models import Product, Source
from webapp.services.platform.keyset import Page
from webapp.services.platform.statements import dialect_name

PAGE_SIZE = 50
BRAND_CHOICES = 200
STOCK_CHOICES = {"": "Any stock", "in": "In stock", "out": "Out of stock"}


@dataclass(frozen=True)
class ProductFilters:
    source: int | None = None
    q: str = ""
    category: str = ""
    brand: str = ""
    stock: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> ProductFilters:
        raw_source = args.get("source", "")
        stock = args.get("stock", "")
        return cls(source=int(raw_source) if raw_source.isdigit() else None,
                   q=(args.get("q") or "").strip()[:200], category=(args.get("category") or "").strip()[:255],
                   brand=(args.get("brand") or "").strip()[:255], stock=stock if stock in STOCK_CHOICES else "")

    @property
    def active(self) -> bool:
        return bool(self.q or self.category or self.brand or self.stock)

    def as_args(self, **changes: Any) -> dict[str, Any]:
        """Query arguments for links (pages, "filter by this category"); `changes` override."""
        values = {"source": self.source, "q": self.q, "category": self.category, "brand": self.brand,
                  "stock": self.stock} | changes
        return {name: value for name, value in values.items() if value}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def exact_condition(q: str, source_id: int | None) -> sa.ColumnElement[bool]:
    """An exact sku or id: the sku index, and the (source_id, external_id) key once per source."""
    source_ids = [source_id] if source_id is not None else list(
        db.session.scalars(sa.select(Source.id)))
    return sa.or_(Product.sku == q, sa.and_(Product.source_id.in_(source_ids), Product.external_id == q))


def title_condition(q: str) -> sa.ColumnElement[bool]:
    """Every word somewhere in the title, case-insensitive (LIKE wildcards typed by the user are literal)."""
    title = sa.func.lower(Product.title)
    return sa.and_(*(title.like(f"%{_escape_like(word)}%", escape="\\") for word in q.lower().split()))


def search_condition(q: str, source_id: int | None) -> sa.ColumnElement[bool]:
    """An exact sku or id when one exists (an index lookup), else the words in the title."""
    exact = exact_condition(q, source_id)
    if db.session.scalar(sa.select(Product.id).where(exact).limit(1)) is not None:
        return exact
    return title_condition(q)


def category_condition(category: str) -> sa.ColumnElement[bool]:
    """Products whose categories list holds `category` (any level of a path: "Clothing", "Tshirts")."""
    if dialect_name() == "postgresql":
        return Product.categories.op("@>")(sa.cast(sa.literal([category], JSONB), JSONB))
    each = sa.func.json_each(Product.categories).table_valued("value")
    return sa.exists(sa.select(1).select_from(each).where(each.c.value == category))


def stock_condition(stock: str) -> sa.ColumnElement[bool]:
    """"out" = a quantity of 0 or less; "in" = more than 0, or no quantity given (sold without tracking)."""
    if stock == "out":
        return Product.inventory_quantity <= 0
    return sa.or_(Product.inventory_quantity.is_(None), Product.inventory_quantity > 0)


def conditions(filters: ProductFilters) -> list[sa.ColumnElement[bool]]:
    found: list[sa.ColumnElement[bool]] = []
    if filters.source is not None:
        found.append(Product.source_id == filters.source)
    if filters.q:
        found.append(search_condition(filters.q, filters.source))
    if filters.category:
        found.append(category_condition(filters.category))
    if filters.brand:
        found.append(Product.brand == filters.brand)
    if filters.stock:
        found.append(stock_condition(filters.stock))
    return found


def list_products(filters: ProductFilters, *, after: int | None = None, before: int | None = None,
                  limit: int = PAGE_SIZE) -> Page:
    """One page of matching products in catalog order: a plain range on the primary key, at any depth."""
    query = sa.select(Product).where(*conditions(filters))
    if before is not None:
        rows = list(db.session.execute(query.where(Product.id < before).order_by(Product.id.desc())
                                       .limit(limit + 1)).all())
        if not rows:  # nothing before the cursor: show the first page
            return list_products(filters, limit=limit)
        has_prev, rows = len(rows) > limit, rows[:limit]
        rows.reverse()
        has_next = True
    else:
        if after is not None:
            query = query.where(Product.id > after)
        rows = list(db.session.execute(query.order_by(Product.id).limit(limit + 1)).all())
        has_next, rows = len(rows) > limit, rows[:limit]
        has_prev = after is not None and bool(rows)
    return Page(rows=rows, has_next=has_next, has_prev=has_prev,
                first_id=rows[0][0].id if rows else None, last_id=rows[-1][0].id if rows else None)


def brand_choices() -> list[str]:
    """Up to BRAND_CHOICES brands for the filter's suggestions.

    A loose index scan (one `min(brand) > previous` index probe per brand) instead of DISTINCT, which
    would read every row of a large catalog.
    """
    brands = sa.select(sa.func.min(Product.brand).label("brand")).where(Product.brand > "") \
        .cte("brands", recursive=True)
    following = sa.select(sa.func.min(Product.brand)).where(Product.brand > brands.c.brand).scalar_subquery()
    brands = brands.union_all(sa.select(following).where(brands.c.brand.is_not(None)))
    return list(db.session.scalars(sa.select(brands.c.brand).where(brands.c.brand.is_not(None))
                                   .limit(BRAND_CHOICES)))


def source_choices() -> list[Source]:
    return list(db.session.scalars(sa.select(Source).order_by(Source.name, Source.id)))


def catalog_size(source_id: int | None = None) -> int:
    """Products in the catalog, from the count each sync keeps on its source (no COUNT over the table)."""
    query = sa.select(sa.func.coalesce(sa.func.sum(Source.product_count), 0))
    if source_id is not None:
        query = query.where(Source.id == source_id)
    return int(db.session.scalar(query) or 0)


def product_fields(product: Product) -> list[tuple[str, Any]]:
    """Every stored field of a product in a stable order, for the detail panel."""
    names = ("external_id", "item_group_id", "title", "description", "link", "image_link", "price",
             "compare_at_price", "currency", "brand", "categories", "inventory_quantity", "inventory_policy",
             "sku", "gtin", "mpn", "condition", "created_at", "updated_at")
    return [(name, getattr(product, name)) for name in names]
