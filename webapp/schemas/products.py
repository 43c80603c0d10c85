"""Push-style catalog updates: `POST /api/v1/products` with upserts and deletes (≤ 1000 per call)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from feeds.product import Product
from webapp.schemas.orders import Currency, Identifier, Money, Text

MAX_PRODUCTS_PER_REQUEST = 1000


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: Identifier
    title: Text = Field(min_length=1)
    description: str = ""
    link: Text | None = None
    image_link: Text | None = None
    price: Money | None = None
    compare_at_price: Money | None = None
    currency: Currency | None = None
    brand: Text | None = None
    categories: list[Text] = Field(default_factory=list)
    inventory_quantity: int | None = None
    inventory_policy: int | None = Field(default=None, ge=1, le=2)
    sku: Identifier | None = None
    gtin: Identifier | None = None
    mpn: Identifier | None = None
    condition: str | None = Field(default=None, pattern="^(new|refurbished|used)$")
    item_group_id: Identifier | None = None
    extras: dict[str, Any] = Field(default_factory=dict)

    def to_product(self) -> Product:
        data = self.model_dump()
        for key in ("price", "compare_at_price"):
            if data[key] is not None:
                data[key] = Decimal(data[key])
        return Product(**data)


class ProductPush(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_id: int | None = None
    upserts: list[ProductIn] = Field(default_factory=list)
    deletes: list[Identifier] = Field(default_factory=list)

    @model_validator(mode="after")
    def _limits(self) -> ProductPush:
        if not self.upserts and not self.deletes:
            raise ValueError("send at least one product in upserts or an id in deletes")
        if len(self.upserts) + len(self.deletes) > MAX_PRODUCTS_PER_REQUEST:
            raise ValueError(f"at most {MAX_PRODUCTS_PER_REQUEST} upserts + deletes per request")
        return self
