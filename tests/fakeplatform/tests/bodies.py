"""Request bodies written from reference/platforms.md, not from the adapters."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tests.fakeplatform import FakePlatform, sign_webhook

KLAVIYO_HEADERS = {"Authorization": "Klaviyo-API-Key pk_test", "revision": "2026-07-15",
                   "Content-Type": "application/vnd.api+json"}
INTEGRATION_TOKEN = "3f0c6a52-7f6b-4c1e-9a55-5e0d1c2b7a10"


def event_body(metric: str = "Placed Order", unique_id: str | None = "1001", value: Any = 29.98,
               email: str = "john.smith@example.com") -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "properties": {"OrderId": "1001", "Items": [{"ProductID": "1111", "Quantity": 1}]},
        "time": "2026-11-20T10:15:00+00:00", "value": value, "value_currency": "USD",
        "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": email, "first_name": "John"}}},
    }
    if unique_id is not None:
        attributes["unique_id"] = unique_id
    return {"data": {"type": "event", "attributes": attributes}}


def bulk_body(events: list[tuple[str, str, str]]) -> dict[str, Any]:
    """One bulk entry per (email, metric, unique_id)."""
    entries = []
    for email, metric, unique_id in events:
        event = event_body(metric, unique_id, email=email)["data"]["attributes"]
        profile = event.pop("profile")
        entries.append({"type": "event-bulk-create", "attributes": {
            "profile": profile, "events": {"data": [{"type": "event", "attributes": event}]}}})
    return {"data": {"type": "event-bulk-create-job", "attributes": {"events-bulk-create": {"data": entries}}}}


def catalog_create_body(count: int) -> dict[str, Any]:
    items = [{"type": "catalog-item", "attributes": {
        "external_id": f"SKU-{i}", "title": f"Item {i}", "description": "A thing.",
        "url": f"https://shop.example/p/{i}", "price": 9.99, "published": True}} for i in range(count)]
    return {"data": {"type": "catalog-item-bulk-create-job", "attributes": {"items": {"data": items}}}}


def sendlane_order(**changes: Any) -> dict[str, Any]:
    order = {"token": INTEGRATION_TOKEN, "order_id": "1234", "email": "john.smith@example.com",
             "status": "placed", "subtotal": 29.98, "total": 29.98, "total_items": 1, "currency": "USD",
             "line_items": [{"product_id": "1111", "variant_id": "1111", "quantity": 1}],
             "discounts": [{"code": "Free Shipping", "value": 5}], "time": 1795169700}
    order.update(changes)
    return order


def esputnik_order(**changes: Any) -> dict[str, Any]:
    order = {"externalOrderId": "1234", "externalCustomerId": "c-77", "totalCost": 29.98,
             "status": "IN_PROGRESS", "date": "2026-11-20T10:15:00+00:00", "currency": "USD",
             "email": "john.smith@example.com",
             "items": [{"externalItemId": "1111", "name": "Winnie the Pooh", "quantity": 1, "cost": 29.98,
                        "url": "https://shop.example/p/1111", "imageUrl": "https://shop.example/i/1111.png"}]}
    order.update(changes)
    return order


def signed_post(fake: FakePlatform, body: dict[str, Any], delivery_id: str, secret: str = "whsec_test",
                timestamp: int | None = None) -> httpx.Response:
    raw = orjson.dumps(body)
    headers = {"Content-Type": "application/json", "X-Shoprelay-Id": delivery_id,
               "X-Shoprelay-Signature": sign_webhook(secret, raw, timestamp)}
    return httpx.post(fake.base_url("webhook"), content=raw, headers=headers, timeout=5)


CATALOG_KEYS = {"item": "items", "variant": "variants", "category": "categories"}


def catalog_id(external_id: str) -> str:
    """Klaviyo's compound catalog id (reference §2)."""
    return f"$custom:::$default:::{external_id}"


def catalog_ref(kind: str, external_id: str) -> dict[str, str]:
    return {"type": f"catalog-{kind}", "id": catalog_id(external_id)}


def catalog_job(kind: str, action: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A catalog bulk job body: entries under data.attributes.<items|variants|categories>.data."""
    return {"data": {"type": f"catalog-{kind}-bulk-{action}-job",
                     "attributes": {CATALOG_KEYS[kind]: {"data": entries}}}}


def item_entry(external_id: str, categories: tuple[str, ...] = ()) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "catalog-item", "attributes": {
        "external_id": external_id, "title": f"Item {external_id}", "description": "A thing.",
        "url": f"https://shop.example/p/{external_id}", "price": 9.99}}
    if categories:
        entry["relationships"] = {"categories": {"data": [catalog_ref("category", c) for c in categories]}}
    return entry


def variant_entry(external_id: str, item_external_id: str, quantity: int = 3) -> dict[str, Any]:
    return {"type": "catalog-variant", "attributes": {
        "external_id": external_id, "title": f"Variant {external_id}", "description": "A size.",
        "sku": external_id, "inventory_quantity": quantity, "price": 9.99,
        "url": f"https://shop.example/p/{item_external_id}?v={external_id}"},
        "relationships": {"item": {"data": catalog_ref("item", item_external_id)}}}


def category_entry(external_id: str, name: str | None = None) -> dict[str, Any]:
    return {"type": "catalog-category", "attributes": {"external_id": external_id, "name": name or external_id}}


def bis_body(variant_external_id: str, email: str | None = "john.smith@example.com",
             phone_number: str | None = None, channels: tuple[str, ...] = ("EMAIL",)) -> dict[str, Any]:
    """A server back-in-stock subscription (reference §9)."""
    attributes = {key: value for key, value in (("email", email), ("phone_number", phone_number)) if value}
    return {"data": {"type": "back-in-stock-subscription", "attributes": {
        "channels": list(channels), "profile": {"data": {"type": "profile", "attributes": attributes}}},
        "relationships": {"variant": {"data": catalog_ref("variant", variant_external_id)}}}}
