"""Klaviyo custom catalog feeds: XML (`<Products><Product>`) and a JSON array of flat objects.

Klaviyo wants one node deep items: id, title, link, description and image_link never blank (the
validator skips items without them), a numeric price without currency, categories as a comma list
in XML and an array in JSON, plus any flat keys, which it keeps as item metadata.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import orjson

from feeds import validation
from feeds.writers.xml_escape import clean_text, escape_markup, escape_text, is_safe_element_name

# Optional product fields published under their own names when present.
_OPTIONAL = ("item_group_id", "compare_at_price", "brand", "sku", "gtin", "mpn")
_STANDARD = frozenset(("id", "title", "link", "description", "image_link", "price", "categories",
                       "inventory_quantity", "inventory_policy", *_OPTIONAL))
_SCALARS = (str, int, float, Decimal)


def klaviyo_record(item: Mapping[str, Any]) -> dict[str, Any]:
    """The flat Klaviyo JSON item for a validated product (money as float, see _json_default)."""
    record: dict[str, Any] = {
        "id": item["external_id"], "title": item["title"], "link": item["link"],
        "description": item["description"], "image_link": item["image_link"],
    }
    if item.get("price") is not None:
        record["price"] = float(item["price"])
    categories = validation.category_names(item.get("categories"))
    if categories:
        record["categories"] = categories
    for name in ("inventory_quantity", "inventory_policy"):
        if item.get(name) is not None:
            record[name] = item[name]
    record.update(_optional_fields(item))
    return record


def _optional_fields(item: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """The optional product fields and the flat extras, under the keys Klaviyo will see."""
    for name in _OPTIONAL:
        value = item.get(name)
        if value is not None and value != "":
            yield name, value.strip() if isinstance(value, str) else value
    extras = item.get("extras")
    if extras:
        for key, value in extras.items():
            if (key not in _STANDARD and isinstance(value, _SCALARS) and value != ""
                    and not (isinstance(value, float) and not math.isfinite(value))
                    and is_safe_element_name(key)):
                yield key, value


class KlaviyoXml:
    """Renders `<Product>` elements; each part is `<Products>...</Products>`."""

    rules = validation.KLAVIYO_RULES
    header = b'<?xml version="1.0" encoding="UTF-8"?>\n<Products>\n'
    footer = b"</Products>\n"
    separator = b""

    def __init__(self, channel: Mapping[str, Any], default_currency: str) -> None:
        self.default_currency = default_currency

    def prepare(self, item: dict[str, Any]) -> None:
        """Nothing to fill in: Klaviyo has no fallbacks."""

    def render(self, item: Mapping[str, Any]) -> bytes:
        # Written out by hand rather than through klaviyo_record(): this runs once per product.
        parts = [
            "<Product><id>", escape_markup(item["external_id"]),
            "</id><title>", escape_markup(item["title"]),
            "</title><link>", escape_markup(item["link"]),
            "</link><description>", escape_markup(item["description"]),
            "</description><image_link>", escape_markup(item["image_link"]), "</image_link>",
        ]
        price = item.get("price")
        if price is not None:
            parts.append(f"<price>{price:f}</price>")
        categories = item.get("categories")
        if categories:
            names = validation.category_names(categories)
            if names:
                parts.append(f"<categories>{escape_text(','.join(names))}</categories>")
        for name in ("inventory_quantity", "inventory_policy"):
            value = item.get(name)
            if value is not None:
                parts.append(f"<{name}>{value}</{name}>")
        for key, value in _optional_fields(item):
            parts.append(f"<{key}>{_xml_value(value)}</{key}>")
        parts.append("</Product>\n")
        return "".join(parts).encode()


class KlaviyoJson:
    """Renders one JSON object per item; each part is a JSON array, one item per line."""

    rules = validation.KLAVIYO_RULES
    header = b"[\n"
    footer = b"\n]\n"
    separator = b",\n"

    def __init__(self, channel: Mapping[str, Any], default_currency: str) -> None:
        self.default_currency = default_currency

    def prepare(self, item: dict[str, Any]) -> None:
        """Nothing to fill in: Klaviyo has no fallbacks."""

    def render(self, item: Mapping[str, Any]) -> bytes:
        record = klaviyo_record(item)
        try:
            return orjson.dumps(record, default=_json_default)
        except orjson.JSONEncodeError:
            # Only lone surrogates make orjson refuse a str; strip them and try once more.
            return orjson.dumps(_clean_strings(record), default=_json_default)


def _xml_value(value: Any) -> str:
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, list):
        return escape_text(",".join(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _json_default(value: Any) -> Any:
    """Money as a JSON number: float keeps every price with up to 15 significant digits exact."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean_strings(record: dict[str, Any]) -> dict[str, Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return clean_text(value)
        if isinstance(value, list):
            return [clean(element) for element in value]
        return value

    return {key: clean(value) for key, value in record.items()}
