"""Google Merchant feeds (RSS 2.0 <item> or Atom <entry> with g: attributes) as a source.

Read with the same hardened streaming parser as generic XML. `g:` values win over the plain RSS/Atom
ones (title, link, description, id); repeated attributes (additional_image_link, product_type) are kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from feeds.product import RowProblem
from feeds.readers.xml_reader import iter_items, leaf_text, local_name

GOOGLE_NS = "http://base.google.com/ns/1.0"
_ITEM_TAGS = ("item", "entry")
_REPEATED = frozenset({"additional_image_link", "product_type", "shipping", "product_detail",
                       "product_highlight", "included_destination", "excluded_destination"})
_QUANTITY_NAMES = ("quantity", "inventory", "sell_on_google_quantity")

BUILTIN_MAPPING: dict[str, str] = {
    "external_id": "id", "item_group_id": "item_group_id", "title": "title", "description": "description",
    "link": "link", "image_link": "image_link", "price": "price", "sale_price": "sale_price",
    "availability": "availability", "brand": "brand", "categories": "product_type",
    "inventory_quantity": "quantity", "gtin": "gtin", "mpn": "mpn", "condition": "condition",
    "sku": "sku",
}


def detect_options(path: Path, options: dict[str, Any]) -> dict[str, Any]:
    return dict(options)


def _namespace(tag: Any) -> str:
    return tag[1:].partition("}")[0] if isinstance(tag, str) and tag.startswith("{") else ""


def item_row(item: Any) -> dict[str, Any]:
    """One <item>/<entry> as a dict keyed by attribute name without the g: prefix."""
    google: dict[str, Any] = {}
    plain: dict[str, Any] = {}
    for child in item:
        name = local_name(child.tag)
        if not name:
            continue
        target = google if _namespace(child.tag) == GOOGLE_NS else plain
        if name == "link" and target is plain and child.get("rel", "alternate") != "alternate":
            continue  # Atom: only the alternate link is the product page
        value: Any = ({local_name(sub.tag): leaf_text(sub) for sub in child if local_name(sub.tag)}
                      if len(child) else leaf_text(child))
        if name in _REPEATED:
            target.setdefault(name, []).append(value)
        else:
            target.setdefault(name, value)
    if "summary" in plain:
        plain.setdefault("description", plain.pop("summary"))
    row = {**plain, **{key: value for key, value in google.items() if value not in ("", [])}}
    return _normalise(row)


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    """Gather images into one list, stock under "quantity", categories under "product_type"."""
    images = [row.get("image_link"), *row.pop("additional_image_link", [])]
    row["image_link"] = [url for url in images if isinstance(url, str) and url]
    for name in _QUANTITY_NAMES:
        if row.get(name) not in (None, ""):
            row["quantity"] = row.pop(name)
            break
    category = row.get("google_product_category")
    if not row.get("product_type") and isinstance(category, str) and not category.strip().isdigit():
        row["product_type"] = [category]
    return row


def iter_rows(path: Path, options: dict[str, Any],
              stats: Any = None) -> Iterator[tuple[int, dict[str, Any] | RowProblem]]:
    follow = stats.follow if stats is not None else None
    for number, item in enumerate(iter_items(path, _ITEM_TAGS, follow), start=1):
        yield number, item_row(item)
