"""A started checkout as the store sends it (`POST /api/v1/checkouts`): same building blocks as orders."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from webapp.schemas.canonical.orders import Currency, Customer, Identifier, Money, OrderItem, Text, Timestamp


class CanonicalCheckout(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Identifier
    started_at: Timestamp
    currency: Currency
    total: Money
    checkout_url: Text | None = None
    customer: Customer
    items: list[OrderItem] = Field(min_length=1)


def checkout_json(checkout: CanonicalCheckout) -> dict[str, Any]:
    """The checkout as events carry it (adapters read `url` and `created_at`)."""
    data = checkout.model_dump(mode="json")
    return data | {"url": data["checkout_url"], "created_at": data["started_at"]}
