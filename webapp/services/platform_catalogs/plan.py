"""What a platform's catalog should hold, read from the products in bounded pages.

One item per item group (or per product without a group), one variant per product (SKU) under its item, one
category per distinct product category. Each entity carries a digest of what is sent, so the reconcile sends
only what differs from what the platform confirmed.
"""

from __future__ import annotations

import hashlib
import heapq
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Product
from workers.destinations.klaviyo_catalog import Entity

PAGE = 2000
_COLUMNS = (Product.id, Product.source_id, Product.external_id, Product.item_group_id, Product.title,
            Product.description, Product.link, Product.image_link, Product.price, Product.compare_at_price,
            Product.currency, Product.brand, Product.categories, Product.inventory_quantity,
            Product.inventory_policy, Product.sku, Product.gtin, Product.mpn, Product.extras)


def digest_of(attributes: dict[str, Any], relations: dict[str, Any]) -> str:
    return hashlib.sha1(orjson.dumps([attributes, relations], option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def category_id(name: str) -> str:
    """A stable id from a category's name ("Clothing > Tshirts" → "clothing-tshirts")."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:120]
    return slug or "c-" + hashlib.sha1(name.encode()).hexdigest()[:10]


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value not in (None, "")}


class IdSet:
    """The ids a reconcile planned, as 8-byte hashes in sorted arrays: 8 bytes an id where a set of strings
    takes about 100, so a catalog of millions fits in a few MB. New ids wait in a short list, sorted into an
    array every RUN ids (so no step ever holds every id as a Python object). Two ids sharing a hash (odds about
    1 in 10^8 at a million ids) only keep a stale entry one night longer."""

    RUN = 65536
    MAX_RUNS = 16

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._runs: list[array] = []
        self._tail: list[int] = []
        self.update(ids)

    @staticmethod
    def _hash(external_id: str) -> int:
        return int.from_bytes(hashlib.blake2b(external_id.encode(), digest_size=8).digest(), "big", signed=True)

    def add(self, external_id: str) -> None:
        self._tail.append(self._hash(external_id))
        if len(self._tail) >= self.RUN:
            self._flush()

    def update(self, ids: Iterable[str]) -> None:
        for external_id in ids:
            self.add(external_id)

    def _flush(self) -> None:
        if self._tail:
            self._tail.sort()
            self._runs.append(array("q", self._tail))
            self._tail = []
        if len(self._runs) > self.MAX_RUNS:
            self._runs = [array("q", heapq.merge(*self._runs))]

    def __contains__(self, external_id: object) -> bool:
        self._flush()
        wanted = self._hash(str(external_id))
        for run in self._runs:
            index = bisect_left(run, wanted)
            if index < len(run) and run[index] == wanted:
                return True
        return False

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs) + len(self._tail)


def shared_ids() -> set[str]:
    """Product ids that more than one source uses (rare): only the first such product becomes a variant."""
    return set(db.session.scalars(sa.select(Product.external_id).group_by(Product.external_id)
                                  .having(sa.func.count() > 1)).all())


@dataclass
class Skips:
    """Products the platform cannot take as they are, counted per reason, with a few examples each."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, product_key: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < 5:
            shown.append(product_key)


def categories() -> list[Entity]:
    """Every distinct product category as a catalog category (a scan of one column)."""
    names: set[str] = set()
    last = 0
    while True:
        rows = db.session.execute(sa.select(Product.id, Product.categories).where(Product.id > last)
                                  .order_by(Product.id).limit(PAGE * 5)).all()
        if not rows:
            break
        for row in rows:
            names.update(str(name) for name in row.categories or [] if str(name).strip())
        last = rows[-1].id
    entities = {}
    for name in sorted(names):
        key = category_id(name)
        attributes = {"name": name}
        entities.setdefault(key, Entity("category", key, attributes, {}, digest_of(attributes, {})))
    return list(entities.values())


def _variant(row: Any, item_id: str, skips: Skips) -> Entity | None:
    key = f"{row.source_id}:{row.external_id}"
    if not row.link:
        skips.add("no product URL", key)
        return None
    if row.price is None:
        skips.add("no price", key)
        return None
    quantity = row.inventory_quantity
    policy = row.inventory_policy if row.inventory_policy in (0, 1, 2) else (2 if quantity is None else 1)
    image = row.image_link or None
    attributes = _compact({
        "title": row.title or row.external_id, "description": row.description or "",
        "sku": row.sku or row.external_id, "inventory_quantity": int(quantity or 0), "inventory_policy": policy,
        "price": _number(row.price), "url": row.link, "image_full_url": image, "image_thumbnail_url": image,
        "published": True, "custom_metadata": _compact({
            "compare_at_price": _number(row.compare_at_price), "currency": row.currency, "brand": row.brand,
            "gtin": row.gtin, "mpn": row.mpn}) or None})
    attributes.setdefault("description", "")
    relations = {"item": item_id}
    return Entity("variant", str(row.external_id), attributes, relations, digest_of(attributes, relations), key)


def _item(item_id: str, rows: list[Any], variants: list[Entity]) -> Entity:
    """The item of a group: its name (the variable product's, else the first variant's), the lowest price."""
    first = rows[0]
    title = str((first.extras or {}).get("group_title") or first.title or item_id)
    description = next((row.description for row in rows if row.description), "")
    prices = [variant.attributes["price"] for variant in variants]
    image = next((row.image_link for row in rows if row.image_link), None)
    names = sorted({str(name) for row in rows for name in row.categories or [] if str(name).strip()})
    attributes = _compact({
        "title": title, "description": description, "url": variants[0].attributes["url"],
        "price": min(prices), "image_full_url": image, "image_thumbnail_url": image, "published": True,
        "custom_metadata": _compact({"brand": first.brand, "currency": first.currency}) or None})
    attributes.setdefault("description", "")
    relations = {"categories": sorted({category_id(name) for name in names})}
    return Entity("item", item_id, attributes, relations, digest_of(attributes, relations),
                  f"{first.source_id}:{first.external_id}")


@dataclass
class _Seen:
    """Which variant ids the plan already gave out: all of them (for the caller's removals, compactly), and
    the shared ones (exactly, to keep a product id two sources use to its first product)."""

    planned: IdSet
    shared: set[str]
    taken: set[str] = field(default_factory=set)

    def claim(self, external_id: str) -> bool:
        if external_id in self.shared:
            if external_id in self.taken:
                return False
            self.taken.add(external_id)
        self.planned.add(external_id)
        return True


def _group(item_id: str, rows: list[Any], skips: Skips, seen: _Seen) -> list[Entity]:
    variants = []
    for row in rows:
        variant = _variant(row, item_id, skips)
        if variant is None:
            continue
        if not seen.claim(variant.external_id):
            skips.add("the same product id in two sources", f"{row.source_id}:{row.external_id}")
            continue
        variants.append(variant)
    return [_item(item_id, rows, variants), *variants] if variants else []


def groups(skips: Skips, planned: IdSet | None = None) -> Iterator[list[Entity]]:
    """Pages of [item, its variants, item, its variants, ...]: products without a group first (one item and
    one variant each), then grouped products in (item_group_id, id) order, a group never split across pages.
    `planned` collects the variant ids planned (the caller's, for its removals)."""
    seen = _Seen(IdSet() if planned is None else planned, shared_ids())
    last = 0
    while True:
        rows = db.session.execute(sa.select(*_COLUMNS).where(Product.item_group_id.is_(None), Product.id > last)
                                  .order_by(Product.id).limit(PAGE)).all()
        if not rows:
            break
        last = rows[-1].id
        page = [entity for row in rows for entity in _group(str(row.external_id), [row], skips, seen)]
        if page:
            yield page
    after: tuple[str, int] | None = None
    while True:
        query = sa.select(*_COLUMNS).where(Product.item_group_id.is_not(None))
        if after is not None:
            query = query.where(sa.tuple_(Product.item_group_id, Product.id) > sa.tuple_(*after))
        rows = db.session.execute(query.order_by(Product.item_group_id, Product.id).limit(PAGE)).all()
        if not rows:
            break
        complete = len(rows) < PAGE
        by_group: dict[str, list[Any]] = {}
        for row in rows:
            by_group.setdefault(str(row.item_group_id), []).append(row)
        if not complete and len(by_group) > 1:  # the last group may continue on the next page
            by_group.pop(str(rows[-1].item_group_id))
        elif not complete:  # one group larger than a page: read it whole
            group_id = rows[0].item_group_id
            by_group = {str(group_id): list(db.session.execute(sa.select(*_COLUMNS).where(
                Product.item_group_id == group_id).order_by(Product.id)).all())}
        kept = [row for group_rows in by_group.values() for row in group_rows]
        after = (kept[-1].item_group_id, kept[-1].id)
        page = [entity for group_id, group_rows in by_group.items()
                for entity in _group(group_id, group_rows, skips, seen)]
        if page:
            yield page
        if complete:
            break
