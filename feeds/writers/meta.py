"""Meta (Facebook/Instagram) catalog feed as CSV.

Meta spells availability with spaces ("in stock"), wants "9.99 USD" prices and a brand, gtin or mpn
on every item; a product with none of them takes the store's name as its brand.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from typing import Any

from feeds.validation import (
    META_RULES,
    category_names,
    format_money,
    in_stock,
    item_currency,
    optional_text,
    sale_pricing,
)
from feeds.writers.xml_escape import clean_text

META_COLUMNS: tuple[str, ...] = (
    "id", "title", "description", "availability", "condition", "price", "link", "image_link", "brand",
    "sale_price", "item_group_id", "gtin", "mpn", "quantity_to_sell_on_facebook", "additional_image_link",
    "product_type",
)


class _LastLine:
    """A write() target for csv.writer that keeps the line it was given (one per writerow)."""

    __slots__ = ("line",)

    def __init__(self) -> None:
        self.line = ""

    def write(self, line: str) -> None:
        self.line = line


class MetaCsv:
    """Renders one CSV row per item; every part starts with the header row."""

    rules = META_RULES
    footer = b""
    separator = b""

    def __init__(self, channel: Mapping[str, Any], default_currency: str) -> None:
        self.default_currency = default_currency
        self.store_name = optional_text(channel.get("store_name") or channel.get("title"))
        self._sink = _LastLine()
        self._writer = csv.writer(self._sink)
        self._writer.writerow(META_COLUMNS)
        self.header = self._sink.line.encode()

    def prepare(self, item: dict[str, Any]) -> None:
        """Give an item with no brand, gtin or mpn the store's name as brand."""
        if self.store_name and not any(optional_text(item.get(name)) for name in ("brand", "gtin", "mpn")):
            item["brand"] = self.store_name

    def render(self, item: Mapping[str, Any]) -> bytes:
        currency = item_currency(item, self.default_currency)
        price, sale_price = sale_pricing(item)
        quantity = item.get("inventory_quantity")
        # Required fields were cleaned by the validator and links are valid URLs; only the
        # optional text still needs the characters a UTF-8 file cannot hold removed.
        self._writer.writerow((
            item["external_id"], item["title"], item["description"],
            "in stock" if in_stock(item) else "out of stock",
            item.get("condition") or "new",
            format_money(price, currency), item["link"], item["image_link"],
            _clean(item.get("brand")),
            format_money(sale_price, currency) if sale_price is not None else "",
            _clean(item.get("item_group_id")), _clean(item.get("gtin")), _clean(item.get("mpn")),
            "" if quantity is None else max(quantity, 0),
            ",".join(item.get("additional_image_link") or ()),
            clean_text(" > ".join(category_names(item.get("categories")))),
        ))
        return self._sink.line.encode()


def _clean(value: Any) -> str:
    return "" if value is None else clean_text(optional_text(value))
