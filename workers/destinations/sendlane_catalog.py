"""Sendlane's catalog as pure functions: one `product-added` per item (its variants, with their inventory,
inside) and one `category-added` per category, parents before their children.

Sendlane answers each call on its own (no bulk job to poll), lists nothing back and removes nothing: a product
the catalog dropped stays at Sendlane. The reconcile (workers/catalogs) decides what to send from the plan
that Klaviyo's catalog uses too (webapp/services/platform_catalogs/plan.py), reshaped here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from workers.destinations.klaviyo_catalog import Entity

KINDS = ("category", "item")
PRODUCT_PATH = "/tracking/product-added"
CATEGORY_PATH = "/tracking/category-added"
SEPARATOR = " > "  # "Clothing > Tshirts": Tshirts under Clothing
# Sendlane publishes no limit for its tracking calls; the catalog takes at most half of the account's window,
# so order events always keep the other half (both share the account's window as well).
SHARE_OF_ACCOUNT = 0.5


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha1(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value not in (None, "", [])}


def categories(planned: list[Entity], category_id: Callable[[str], str]) -> list[Entity]:
    """The plan's categories with every ancestor of a path-like name, each under its parent: "A > B" gives
    A and B (parent A). Parents come first, so Sendlane knows a parent before its child names it."""
    wanted: dict[str, tuple[int, Entity]] = {}
    for entity in planned:
        parts = [part.strip() for part in str(entity.attributes["name"]).split(SEPARATOR.strip())]
        parts = [part for part in parts if part]
        parent = None
        for depth in range(1, len(parts) + 1):
            path = SEPARATOR.join(parts[:depth])
            key = category_id(path)
            if key not in wanted:
                body = _compact({"category_id": key, "name": parts[depth - 1], "parent_id": parent})
                wanted[key] = (depth, Entity("category", key, body, {}, _digest(body)))
            parent = key
    return [entity for _, entity in sorted(wanted.values(), key=lambda pair: pair[0])]


def products(page: list[Entity], category_names: dict[str, str],
             skip: Callable[[str, str], None]) -> list[Entity]:
    """A plan page ([item, its variants, item, ...]) as one product-added body per item; `category_names`
    maps the plan's category ids to their names."""
    shaped: list[Entity] = []
    item: Entity | None = None
    variants: list[Entity] = []
    for entity in [*page, None]:
        if entity is None or entity.kind == "item":
            if item is not None:
                product = _product(item, variants, category_names)
                if product is None:
                    skip("no image URL (Sendlane needs one)", item.product_key or item.external_id)
                else:
                    shaped.append(product)
            item, variants = entity, []
        else:
            variants.append(entity)
    return shaped


def _product(item: Entity, variants: list[Entity], category_names: dict[str, str]) -> Entity | None:
    image = item.attributes.get("image_full_url") or next(
        (v.attributes.get("image_full_url") for v in variants if v.attributes.get("image_full_url")), None)
    if not image:
        return None
    first = variants[0].attributes if variants else {}
    metadata = item.attributes.get("custom_metadata") or {}
    first_metadata = first.get("custom_metadata") or {}
    body = _compact({
        "product_id": item.external_id, "product_name": item.attributes.get("title"),
        "sku": first.get("sku") if len(variants) == 1 else None,
        "item_price": item.attributes.get("price"), "product_url": item.attributes["url"], "image_url": image,
        "categories": [category_names[key] for key in item.relations.get("categories") or []
                       if key in category_names],
        "brand": metadata.get("brand"),
        "compare_at_price": first_metadata.get("compare_at_price") if len(variants) == 1 else None,
        "variants": [_compact({
            "id": variant.external_id, "name": variant.attributes.get("title"), "sku": variant.attributes.get("sku"),
            "price": variant.attributes.get("price"),
            "image_url": variant.attributes.get("image_full_url") or image,
            "inventory_level": variant.attributes.get("inventory_quantity")}) for variant in variants]})
    return Entity("item", item.external_id, body, {}, _digest(body), item.product_key)


def request(entity: Entity) -> tuple[str, dict[str, Any]]:
    """The call for one entry (the adapter adds the integration token)."""
    return (CATEGORY_PATH if entity.kind == "category" else PRODUCT_PATH), entity.attributes
