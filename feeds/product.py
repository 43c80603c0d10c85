"""The normalised product every reader yields and every writer consumes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

# Fields of the catalog (and of the `products` table) in a stable order.
PRODUCT_FIELDS: tuple[str, ...] = (
    "external_id", "item_group_id", "title", "description", "link", "image_link", "price",
    "compare_at_price", "currency", "brand", "categories", "inventory_quantity", "inventory_policy",
    "sku", "gtin", "mpn", "condition", "extras",
)


@dataclass(slots=True)
class Product:
    """One sellable item; a variant is its own Product with its parent's id as item_group_id."""

    external_id: str
    title: str = ""
    description: str = ""
    link: str | None = None
    image_link: str | None = None
    price: Decimal | None = None
    compare_at_price: Decimal | None = None
    currency: str | None = None
    brand: str | None = None
    categories: list[str] = field(default_factory=list)
    inventory_quantity: int | None = None
    inventory_policy: int | None = None  # Klaviyo: 1 = hide when out of stock, 2 = always show
    sku: str | None = None
    gtin: str | None = None
    mpn: str | None = None
    condition: str | None = None
    item_group_id: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    # Fingerprint of the raw source row (+ mapping) this product came from; when set, it is what the
    # catalog stores, so an unchanged row is recognised next time without being mapped again.
    source_hash: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict with the table's column names (money stays Decimal)."""
        return {name: getattr(self, name) for name in PRODUCT_FIELDS}

    def content_hash(self) -> int:
        """Signed 64-bit fingerprint of the content, so an unchanged product costs no write."""
        return self.source_hash if self.source_hash is not None else content_hash(self.as_dict())


def content_hash(values: dict[str, Any]) -> int:
    """Fingerprint of a product dict (field order independent of input, Decimals normalised)."""
    canonical = [_canon(values.get(name)) for name in PRODUCT_FIELDS]
    digest = hashlib.blake2b(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _canon(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value


@dataclass(slots=True, frozen=True)
class Unchanged:
    """A source row whose fingerprint matches the stored product: nothing to map, nothing to write."""

    external_id: str
    source_hash: int


def row_fingerprint(values: Any, salt: bytes) -> int:
    """Signed 64-bit fingerprint of a raw row; `salt` folds in the mapping so a new mapping re-maps all."""
    digest = hashlib.blake2b(orjson.dumps(values, default=str), digest_size=8, key=salt[:64]).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(slots=True)
class RowProblem:
    """A per-row problem met while reading a source: shown to the user, not fatal."""

    row: int
    message: str
    external_id: str | None = None
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "message": self.message, "external_id": self.external_id,
                "field": self.field}


class SourceError(Exception):
    """The whole source is unusable (bad encoding, invalid XML, too large, HTTP error...).

    The message is shown to the user as the reason the sync failed.
    """
