"""Product factory and parse-back helpers shared by the feed writer tests."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from lxml import etree

from feeds.product import PRODUCT_FIELDS
from feeds.writers import WriteResult, write_feed


def product(number: int = 1, **fields: Any) -> dict[str, Any]:
    """A complete, valid product row as the worker streams it (PRODUCT_FIELDS plus the db id)."""
    row: dict[str, Any] = dict.fromkeys(PRODUCT_FIELDS)
    row.update({
        "id": 1000 + number, "external_id": f"SKU-{number}", "title": f"Product {number}",
        "description": f"Description of product {number}", "link": f"https://shop.example/p/{number}",
        "image_link": f"https://shop.example/i/{number}.png", "price": Decimal("19.99"),
        "currency": "USD", "categories": ["Apparel", "T-shirts"], "inventory_quantity": 5,
        "extras": {},
    })
    row.update(fields)
    return row


def write(fmt: str, products: Iterable[dict[str, Any]], out_dir: Path, **options: Any) -> WriteResult:
    options.setdefault("basename", "feed")
    return write_feed(fmt, products, out_dir, **options)


def check_parts(result: WriteResult) -> None:
    """Each part's recorded size and sha256 match the file on disk."""
    for part in result.parts:
        data = part.path.read_bytes()
        assert part.bytes == len(data)
        assert part.sha256 == hashlib.sha256(data).hexdigest()
        assert part.name == part.path.name


def parse_xml(path: Path) -> etree._Element:
    """Parse strictly (no recovery): a malformed document fails the test."""
    return etree.fromstring(path.read_bytes(), etree.XMLParser(recover=False, resolve_entities=False))


def parse_json(path: Path) -> list[dict[str, Any]]:
    return orjson.loads(path.read_bytes())


def parse_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
