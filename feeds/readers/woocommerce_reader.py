"""WooCommerce's product CSV export (Products > Export) as a source.

Types: simple / external become items; variable parents are not sellable themselves but lend their name,
description, categories, images, tags and brand to their variations; variations become items grouped
under the parent's id; grouped products (a page listing other products, no price) are skipped. Drafts and
private products (Published -1 / 0) are skipped and counted. Two passes over the file: the first keeps
only the variable parents (the fields variations inherit), the second yields items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from feeds.mapping import apply_mapping, category_paths, defaults_from, html_to_text, normalise_column
from feeds.product import Product, RowProblem
from feeds.readers import csv_reader

BUILTIN_MAPPING: dict[str, str] = {
    "external_id": "ID", "item_group_id": "Parent", "title": "Name", "description": "Description",
    "link": "Link", "image_link": "Images", "price": "Regular price", "sale_price": "Sale price",
    "categories": "Categories", "brand": "Brands", "inventory_quantity": "Stock",
    "availability": "In stock?", "sku": "SKU", "gtin": "GTIN, UPC, EAN, or ISBN",
}
_LINK_COLUMNS = ("permalink", "url", "link", "producturl")
_EXTRAS = {"Type": "type", "Short description": "short_description", "Tags": "tags",
           "External URL": "external_url", "Backorders allowed?": "backorders_allowed"}


@dataclass(slots=True)
class _Parent:
    """What a variation inherits from its variable product."""

    id: str
    published: bool
    fields: dict[str, str]


def detect_options(path: Path, options: dict[str, Any]) -> dict[str, Any]:
    return csv_reader.detect_options(path, options)


def iter_rows(path: Path, options: dict[str, Any],
              stats: Any = None) -> Iterator[tuple[int, dict[str, Any] | RowProblem]]:
    """The export's raw rows (what the mapping editor shows)."""
    return csv_reader.iter_rows(path, options)


def _records(path: Path, options: dict[str, Any],
             follow: Callable[[Any], None] | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    for line, names, values in csv_reader.iter_records(path, options, follow):
        yield line, dict(zip(names, values, strict=False))


def _types(record: dict[str, str]) -> set[str]:
    return {token.strip().lower() for token in record.get("Type", "").split(",")}


def _published(record: dict[str, str]) -> bool:
    """Published is 1 (public), 0 (private) or -1 (draft); an absent column means published."""
    return record.get("Published", "1").strip() in ("1", "")


def _inherited(record: dict[str, str]) -> dict[str, str]:
    names = ("Name", "Description", "Short description", "Categories", "Images", "Tags", "Brands")
    return {name: record[name] for name in names if record.get(name, "").strip()}


def collect_parents(path: Path, options: dict[str, Any]) -> dict[str, _Parent]:
    """Variable products keyed by "id:<ID>" and by SKU, the two ways a variation names its parent."""
    parents: dict[str, _Parent] = {}
    for _, record in _records(path, options):
        if "variable" in _types(record):
            parent = _Parent(record.get("ID", "").strip(), _published(record), _inherited(record))
            parents[f"id:{parent.id}"] = parent
            if record.get("SKU", "").strip():
                parents[record["SKU"].strip()] = parent
    return parents


def _attributes(record: dict[str, str]) -> dict[str, str]:
    """"Attribute N name" / "Attribute N value(s)" pairs with a value (a blank variation value means any)."""
    attributes: dict[str, str] = {}
    number = 1
    while f"Attribute {number} name" in record:
        name = record[f"Attribute {number} name"].strip()
        value = record.get(f"Attribute {number} value(s)", "").strip()
        if name and value:
            attributes[name] = value
        number += 1
    return attributes


def _sale_active(record: dict[str, str], today: date) -> bool:
    """A scheduled sale price counts only between its start and end dates."""
    starts, ends = (_date(record.get(column, "")) for column in ("Date sale price starts",
                                                                  "Date sale price ends"))
    return (starts is None or starts <= today) and (ends is None or today <= ends)


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def _link(record: dict[str, str], page_id: str, store_url: str | None) -> str | None:
    """The export has no permalink; WordPress redirects ?post_type=product&p=<id> to the product page."""
    for column, value in record.items():
        if normalise_column(column) in _LINK_COLUMNS and value.strip():
            return value.strip()
    if store_url and page_id:
        return f"{store_url.rstrip('/')}/?post_type=product&p={page_id}"
    return None


def item_row(record: dict[str, str], parent: _Parent | None, parent_ref: str,
             options: dict[str, Any], today: date) -> dict[str, Any]:
    """The export row reshaped for the built-in mapping: inheritance, title, sale window, curated extras."""
    inherited = parent.fields if parent else {}
    own = _inherited(record)
    merged = {**inherited, **own}
    attributes = _attributes(record)
    group_id = parent.id if parent else parent_ref.removeprefix("id:") or None
    title = own.get("Name", "")
    parent_name = inherited.get("Name", "")
    if parent_name and attributes and title in ("", parent_name):
        title = f"{parent_name} - {', '.join(attributes.values())}"
    description = merged.get("Description") or merged.get("Short description", "")
    brands = category_paths(merged.get("Brands"))
    row: dict[str, Any] = {
        "ID": record.get("ID", "").strip(), "Parent": group_id or "", "Name": title or parent_name,
        "Description": description.replace("\\n", "\n"),
        "Link": _link(record, group_id or record.get("ID", "").strip(), options.get("store_url")),
        "Images": merged.get("Images", ""),
        "Regular price": record.get("Regular price", ""),
        "Sale price": record.get("Sale price", "") if _sale_active(record, today) else "",
        "Categories": merged.get("Categories", ""), "Brands": brands[0].split(" > ")[0] if brands else "",
        "Stock": record.get("Stock", ""), "In stock?": record.get("In stock?", ""),
        "SKU": record.get("SKU", ""), "GTIN, UPC, EAN, or ISBN": record.get("GTIN, UPC, EAN, or ISBN", ""),
    }
    for column, key in _EXTRAS.items():
        value = merged.get(column) or record.get(column, "")
        row[key] = html_to_text(value.replace("\\n", "\n")) if column == "Short description" else value
    if parent_name:  # the item a platform's catalog shows above its variants (Klaviyo's Catalog API)
        row["group_title"] = parent_name
    row.update({name: value for name, value in attributes.items() if name not in row})
    return row


def iter_products(path: Path, options: dict[str, Any], stats: Any) -> Iterator[Product | RowProblem]:
    parents = collect_parents(path, options)
    defaults = defaults_from(options)
    defaults.pop("base_url", None)  # links are built from store_url above
    today = date.today()
    for line, record in _records(path, options, stats.follow):  # the second pass: the one that yields
        stats.row_read()
        types = _types(record)
        if not _published(record):
            stats.skip("unpublished")
            continue
        if "variable" in types:
            stats.skip("variable parent")
            continue
        if "grouped" in types:
            stats.skip("grouped")
            continue
        parent_ref = record.get("Parent", "").strip() if "variation" in types else ""
        parent = parents.get(parent_ref) if parent_ref else None
        if parent is not None and not parent.published:
            stats.skip("unpublished")
            continue
        yield apply_mapping(item_row(record, parent, parent_ref, options, today), BUILTIN_MAPPING,
                            line, defaults)
