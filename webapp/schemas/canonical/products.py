"""Push-style catalog updates: `POST /api/v1/products` with upserts and deletes (≤ 1000 per call)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from annotated_types import MinLen
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from feeds.product import Product
from webapp.schemas.canonical.fields import Currency, Identifier, Money, Text, _text
from webapp.schemas.json_types import EXACT_INTEGER, DatabaseId, JsonObject

MAX_PRODUCTS_PER_REQUEST = 1000
Title = Annotated[str, BeforeValidator(_text), MinLen(1),
                  WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1}, {"type": "number"}]})]
Stock = Annotated[int, Field(ge=-2_147_483_648, le=2_147_483_647), EXACT_INTEGER]
# Something to do (JSON Schema cannot add two list lengths: upserts + deletes ≤ 1000 is checked too).
_NOT_EMPTY = {"anyOf": [{"required": [name], "properties": {name: {"minItems": 1}}} for name in ("upserts", "deletes")]}


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: Identifier
    title: Title
    description: str = ""
    link: Text | None = None
    image_link: Text | None = None
    price: Money | None = None
    compare_at_price: Money | None = None
    currency: Currency | None = None
    brand: Text | None = None
    categories: list[Text] = Field(default_factory=list)
    inventory_quantity: Stock | None = None
    inventory_policy: Annotated[int, Field(ge=1, le=2), EXACT_INTEGER] | None = None
    sku: Identifier | None = None
    gtin: Identifier | None = None
    mpn: Identifier | None = None
    condition: str | None = Field(default=None, pattern="^(new|refurbished|used)$")
    item_group_id: Identifier | None = None
    extras: JsonObject = Field(default_factory=dict)

    def to_product(self) -> Product:
        data = self.model_dump()
        for key in ("price", "compare_at_price"):
            if data[key] is not None:
                data[key] = Decimal(data[key])
        return Product(**data)


class ProductPush(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_NOT_EMPTY)

    source_id: DatabaseId | None = None
    upserts: list[ProductIn] = Field(default_factory=list, max_length=MAX_PRODUCTS_PER_REQUEST)
    deletes: list[Identifier] = Field(default_factory=list, max_length=MAX_PRODUCTS_PER_REQUEST)

    @model_validator(mode="after")
    def _limits(self) -> ProductPush:
        if not self.upserts and not self.deletes:
            raise ValueError("send at least one product in upserts or an id in deletes")
        if len(self.upserts) + len(self.deletes) > MAX_PRODUCTS_PER_REQUEST:
            raise ValueError(f"at most {MAX_PRODUCTS_PER_REQUEST} upserts + deletes per request")
        # The same product twice in one push: applied in order, so the last one wins (one row per product).
        self.upserts = list({product.external_id: product for product in self.upserts}.values())
        self.deletes = list(dict.fromkeys(self.deletes))
        return self
