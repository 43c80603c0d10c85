"""Test data shaped like what stores really send: canonical orders (DESIGN.md) and outbox events."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from workers.destinations.base import OutboundEvent

_ADDRESS = {
    "first_name": "John", "last_name": "Smith", "company": "", "address1": "123 Abc st",
    "address2": "Suite 1", "city": "Boston", "region": "Massachusetts", "region_code": "MA",
    "country": "United States", "country_code": "US", "zip": "02110", "phone": "5551234567",
}

_ORDER: dict[str, Any] = {
    "id": "1234", "status": "placed", "placed_at": "2026-11-20T10:15:00Z", "currency": "USD",
    "total": 29.98, "subtotal": 29.98, "tax": 0, "shipping": 0,
    "discount": {"code": "Free Shipping", "value": 5},
    "customer": {"id": "c-77", "email": "john.smith@example.com", "phone": "+15551234567",
                 "first_name": "John", "last_name": "Smith", "accepts_marketing": True},
    "billing_address": _ADDRESS,
    "shipping_address": _ADDRESS,
    "items": [
        {"product_id": "1111", "sku": "WINNIEPOOH", "name": "Winnie the Pooh", "quantity": 1,
         "price": 9.99, "total": 9.99, "url": "https://shop.example/p/1111",
         "image_url": "https://shop.example/i/1111.png", "categories": ["Fiction", "Children"],
         "brand": "Kids Books"},
        {"product_id": "2222", "sku": "TALEOFTWO", "name": "A Tale of Two Cities", "quantity": 1,
         "price": 19.99, "total": 19.99, "url": "https://shop.example/p/2222",
         "image_url": "https://shop.example/i/2222.png", "categories": ["Fiction", "Classics"],
         "brand": "Harcourt Classics"},
    ],
    "fulfilled_at": None, "cancelled_at": None, "refunded_at": None,
    "refunded_amount": None, "reason": None,
}


def make_order(**overrides: Any) -> dict[str, Any]:
    """A canonical order (the DESIGN.md example, two lines); keyword arguments replace top-level fields."""
    order = copy.deepcopy(_ORDER)
    order.update(copy.deepcopy(overrides))
    return order


def make_contact(order: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """The outbox `contact` of an order's customer (shape from workers.destinations.base.OutboundEvent)."""
    order = order or make_order()
    customer = order["customer"]
    contact = {"customer_id": customer["id"], "email": customer["email"], "phone": customer["phone"],
               "first_name": customer["first_name"], "last_name": customer["last_name"],
               "accepts_marketing": customer["accepts_marketing"],
               "address": copy.deepcopy(order["billing_address"])}
    contact.update(overrides)
    return contact


def make_product(**overrides: Any) -> dict[str, Any]:
    """A catalog product dict with feeds.product.PRODUCT_FIELDS names, money as JSON numbers."""
    product = {
        "external_id": "WINNIEPOOH", "item_group_id": "1111", "title": "Winnie the Pooh",
        "description": "A bear of very little brain.", "link": "https://shop.example/p/1111",
        "image_link": "https://shop.example/i/1111.png", "price": 9.99, "compare_at_price": 12.99,
        "currency": "USD", "brand": "Kids Books", "categories": ["Fiction", "Children"],
        "inventory_quantity": 25, "inventory_policy": 1, "sku": "WINNIEPOOH", "gtin": None, "mpn": None,
        "condition": "new", "extras": {},
    }
    product.update(overrides)
    return product


def make_order_event(name: str, order: dict[str, Any] | None = None, *, event_id: int = 1,
                     line_index: int | None = None, historical: bool = False,
                     occurred_at: datetime | None = None) -> OutboundEvent:
    """An OutboundEvent for an order lifecycle event, with the unique id the outbox would give it."""
    order = order or make_order()
    payload: dict[str, Any] = {"order": order, "contact": make_contact(order)}
    unique_id = str(order["id"])
    if name == "ordered_product":
        index = line_index or 0
        line = copy.deepcopy(order["items"][index])
        line["line_key"] = line.get("sku") or str(index)
        payload["line"] = line
        unique_id = f"{order['id']}:{line['line_key']}"
    return OutboundEvent(id=event_id, name=name, unique_id=unique_id, payload=payload,
                         occurred_at=occurred_at or datetime(2026, 11, 20, 10, 15, tzinfo=UTC),
                         historical=historical)
