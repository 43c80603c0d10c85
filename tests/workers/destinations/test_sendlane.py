"""Sendlane adapter: `/tracking/*` bodies field by field against Sendlane's v2 spec."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.factories import make_contact, make_order, make_order_event, make_product
from workers.destinations import get_adapter_class
from workers.destinations.base import OutboundEvent, Outcome
from workers.destinations.sendlane import SendlaneAdapter

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
PLACED_UNIX = int(datetime(2026, 11, 20, 10, 15, tzinfo=UTC).timestamp())


@pytest.fixture
def adapter() -> SendlaneAdapter:
    return SendlaneAdapter({"api_token": "api-tok", "integration_token": "int-tok"})


def event(name: str, payload: dict, event_id: int = 1, historical: bool = False) -> OutboundEvent:
    return OutboundEvent(event_id, name, "u-1", payload, NOW, historical)


def test_registered_and_needs_both_tokens() -> None:
    assert get_adapter_class("sendlane") is SendlaneAdapter
    with pytest.raises(ValueError, match="integration_token"):
        SendlaneAdapter({"api_token": "x"})


def test_placed_order_body(adapter) -> None:
    (request,) = adapter.build_requests([make_order_event("placed_order")]).requests
    assert (request.method, request.url) == ("POST", "https://api.sendlane.com/v2/tracking/order-placed")
    assert request.headers["Authorization"] == "Bearer api-tok"
    body = request.json
    assert body["token"] == "int-tok"
    assert {key: body[key] for key in ("order_id", "email", "phone", "status", "subtotal", "total",
                                       "total_items", "currency", "customer_id", "accepts_marketing")} == {
        "order_id": "1234", "email": "john.smith@example.com", "phone": "+15551234567", "status": "placed",
        "subtotal": 29.98, "total": 29.98, "total_items": 2, "currency": "USD", "customer_id": "c-77",
        "accepts_marketing": True}
    assert body["tax_lines"] == []  # tax 0 → no tax line
    assert body["discounts"] == [{"code": "Free Shipping", "value": 5}]
    assert body["line_items"][0] == {"product_id": "1111", "variant_id": "1111", "quantity": 1,
                                     "sku": "WINNIEPOOH", "product_name": "Winnie the Pooh",
                                     "item_price": 9.99, "total": 9.99}
    assert body["billing_address"] == {
        "first_name": "John", "last_name": "Smith", "email": "john.smith@example.com",
        "address_1": "123 Abc st", "address_2": "Suite 1", "city": "Boston", "state_code": "MA",
        "country": "United States", "country_code": "US", "postal_code": "02110", "phone": "5551234567"}
    assert body["time"] == PLACED_UNIX and isinstance(body["time"], int)
    assert body["date_created"] == "2026-11-20T10:15:00+00:00"
    assert body["initial_sync"] is False


@pytest.mark.parametrize(("name", "order_status", "expected", "time_field"), [
    ("placed_order", "placed", "placed", "placed_at"),
    ("fulfilled_order", "fulfilled", "fulfilled", "fulfilled_at"),
    ("cancelled_order", "cancelled", "cancelled", "cancelled_at"),
    ("refunded_order", "refunded", "refunded", "refunded_at"),
    ("refunded_order", "partially_refunded", "refunded", "refunded_at"),
])
def test_status_mapping_and_event_time(adapter, name, order_status, expected, time_field) -> None:
    order = make_order(status=order_status, tax=2.5, **{time_field: "2026-11-23T00:00:00Z"})
    (request,) = adapter.build_requests([make_order_event(name, order)]).requests
    assert request.url.endswith("/tracking/order-placed")
    assert request.json["status"] == expected
    assert request.json["time"] == int(datetime(2026, 11, 23, tzinfo=UTC).timestamp())
    assert request.json["tax_lines"] == [{"name": "Tax", "value": 2.5}]


def test_historical_orders_are_an_initial_sync(adapter) -> None:
    (request,) = adapter.build_requests([make_order_event("placed_order", historical=True)]).requests
    assert request.json["initial_sync"] is True


def test_skips_what_sendlane_derives_or_lacks(adapter) -> None:
    events = [make_order_event("ordered_product", event_id=1), make_order_event("pending_order", event_id=2),
              event("product_delete", {"product": {"external_id": "X"}}, 3),
              event("active_on_site", {"activity": {"url": "https://shop.example"}}, 4),
              event("product_upsert", {"product": make_product(image_link=None)}, 5)]
    result = adapter.build_requests(events)
    assert result.requests == []
    assert result.skipped[1] == "derived by Sendlane from line_items"
    assert set(result.skipped) == {1, 2, 3, 4, 5}


def test_profile_and_consent_go_to_customer_added(adapter) -> None:
    profile, consent = adapter.build_requests([
        event("profile_upsert", {"contact": make_contact()}, 1),
        event("consent_change", {"contact": make_contact(accepts_marketing=False)}, 2, historical=True),
    ]).requests
    assert profile.url.endswith("/tracking/customer-added")
    assert profile.json["customer_id"] == "c-77" and profile.json["email"] == "john.smith@example.com"
    assert profile.json["accepts_marketing"] is True and "email_consent" not in profile.json
    assert profile.json["billing_address"]["state"] == "Massachusetts"
    assert profile.json["time"] == int(NOW.timestamp())
    assert consent.json["email_consent"] is False and consent.json["accepts_marketing"] is False
    assert consent.json["initial_sync"] is True


def test_catalog_calls_carry_the_integration_token(adapter) -> None:
    """The reconcile's product-added and category-added calls (their bodies: sendlane_catalog.py)."""
    request = adapter.catalog_request("POST", "/tracking/category-added", b'{"category_id":"music","name":"Music"}')
    assert request.url.endswith("/tracking/category-added") and request.event_ids == []
    assert request.json == {"token": "int-tok", "category_id": "music", "name": "Music"}
    assert request.headers["Authorization"].startswith("Bearer ")


def test_product_events_are_left_to_the_catalog_reconcile(adapter) -> None:
    result = adapter.build_requests([event("product_upsert", {"product": make_product()}, 7)])
    assert result.requests == [] and "reconcile" in result.skipped[7]
def test_onsite_calls(adapter) -> None:
    contact = make_contact()
    item = make_order()["items"][0]
    viewed, cart, checkout = adapter.build_requests([
        event("viewed_product", {"activity": {"product": item}, "contact": contact}, 1),
        event("added_to_cart", {"activity": {"product": item, "cart": {
            "id": "cart-9", "url": "https://shop.example/cart", "total": 9.99, "currency": "USD",
            "items": [item]}}, "contact": contact}, 2),
        event("started_checkout", {"checkout": {"id": "k1", "url": "https://shop.example/c/k1", "total": 9.99,
                                                "subtotal": 9.99, "tax": 0, "currency": "USD",
                                                "items": [item],
                                                "customer": make_order()["customer"]}}, 3),
    ]).requests
    assert viewed.url.endswith("/tracking/product-viewed")
    assert viewed.json == {"token": "int-tok", "product_id": "1111", "variant_id": "1111",
                           "email": "john.smith@example.com", "phone": "+15551234567"}
    assert cart.url.endswith("/tracking/added-to-cart")
    assert (cart.json["cart_id"], cart.json["total_items"], cart.json["line_items"][0]["sku"]) == (
        "cart-9", 1, "WINNIEPOOH")
    assert checkout.url.endswith("/tracking/checkout-started")
    assert (checkout.json["checkout_id"], checkout.json["checkout_url"], checkout.json["email"]) == (
        "k1", "https://shop.example/c/k1", "john.smith@example.com")


@pytest.mark.parametrize(("body", "message"), [
    (b'{"data":{"message":"The given data was invalid.",'
     b'"errors":{"order_id":["The order id field is required."]}}}',
     "HTTP 422: The given data was invalid. (order_id: The order id field is required.)"),
    (b'{"message":"Invalid token"}', "HTTP 422: Invalid token"),
])
def test_classify_reads_sendlane_errors(adapter, body, message) -> None:
    result = adapter.classify(422, {}, body)
    assert (result.outcome, result.message) == (Outcome.REJECTED, message)


def test_test_request(adapter) -> None:
    request = adapter.test_request()
    assert (request.method, request.url, request.json) == (
        "GET", "https://api.sendlane.com/v2/integrations/custom", None)
