"""eSputnik adapter: order records, status mapping, one order per request, 1000 per request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import make_contact, make_order, make_order_event
from workers.destinations import get_adapter_class
from workers.destinations.base import OutboundEvent, Outcome
from workers.destinations.esputnik import EsputnikAdapter

T0 = datetime(2026, 11, 20, 10, 15, tzinfo=UTC)


@pytest.fixture
def adapter() -> EsputnikAdapter:
    return EsputnikAdapter({"api_key": "es-key"})


def test_registered() -> None:
    assert get_adapter_class("esputnik") is EsputnikAdapter
    assert EsputnikAdapter.max_events_per_request == 1000


def test_order_record_field_by_field(adapter) -> None:
    (request,) = adapter.build_requests([make_order_event("placed_order")]).requests
    assert (request.method, request.url) == ("POST", "https://esputnik.com/api/v1/orders")
    assert request.auth == ("shoprelay", "es-key")
    (order,) = request.json["orders"]
    assert order == {
        "externalOrderId": "1234", "externalCustomerId": "c-77", "totalCost": 29.98, "status": "IN_PROGRESS",
        "date": "2026-11-20T10:15:00+00:00", "currency": "USD", "email": "john.smith@example.com",
        "phone": "+15551234567", "firstName": "John", "lastName": "Smith", "shipping": 0, "discount": 5,
        "taxes": 0, "deliveryAddress": "123 Abc st, Suite 1, Boston, Massachusetts, 02110, United States",
        "items": [
            {"externalItemId": "WINNIEPOOH", "name": "Winnie the Pooh", "quantity": 1, "cost": 9.99,
             "url": "https://shop.example/p/1111", "imageUrl": "https://shop.example/i/1111.png",
             "category": "Fiction, Children"},
            {"externalItemId": "TALEOFTWO", "name": "A Tale of Two Cities", "quantity": 1, "cost": 19.99,
             "url": "https://shop.example/p/2222", "imageUrl": "https://shop.example/i/2222.png",
             "category": "Fiction, Classics"}]}


@pytest.mark.parametrize(("name", "status"), [
    ("pending_order", "INITIALIZED"), ("placed_order", "IN_PROGRESS"),
    ("fulfilled_order", "DELIVERED"), ("cancelled_order", "CANCELLED"),
])
def test_status_mapping(adapter, name, status) -> None:
    (request,) = adapter.build_requests([make_order_event(name, make_order(reason="Out of stock"))]).requests
    (order,) = request.json["orders"]
    assert order["status"] == status
    assert ("statusDescription" in order) == (name == "cancelled_order")


def test_refund_and_non_order_events_are_skipped(adapter) -> None:
    events = [make_order_event("refunded_order", event_id=1), make_order_event("ordered_product", event_id=2),
              OutboundEvent(3, "profile_upsert", "c-77", {"contact": make_contact()}, T0),
              OutboundEvent(4, "viewed_product", "v1", {"activity": {}}, T0)]
    result = adapter.build_requests(events)
    assert result.requests == []
    assert result.skipped[1] == "eSputnik has no refund status; the order stays DELIVERED"
    assert set(result.skipped) == {1, 2, 3, 4}


def test_customer_key_falls_back_to_email_then_phone(adapter) -> None:
    by_email = make_order_event("placed_order", event_id=1)
    by_email.payload["contact"]["customer_id"] = None
    by_phone = make_order_event("placed_order", make_order(id="2"), event_id=2)
    by_phone.payload["contact"].update(customer_id=None, email=None)
    nobody = make_order_event("placed_order", make_order(id="3"), event_id=3)
    nobody.payload["contact"].update(customer_id=None, email=None, phone=None)
    result = adapter.build_requests([by_email, by_phone, nobody])
    assert [o["externalCustomerId"] for o in result.requests[0].json["orders"]] == [
        "john.smith@example.com", "+15551234567"]
    assert "externalCustomerId" in result.skipped[3]


def test_abandoned_checkout_is_an_abandoned_cart_order(adapter) -> None:
    checkout = {"id": "k-5", "url": "https://shop.example/c/k-5", "total": 9.99, "currency": "EUR",
                "created_at": "2026-11-20T09:00:00Z", "items": [make_order()["items"][0]],
                "customer": make_order()["customer"]}
    (request,) = adapter.build_requests([OutboundEvent(1, "abandoned_checkout", "k-5", {"checkout": checkout},
                                                       T0)]).requests
    (order,) = request.json["orders"]
    assert (order["externalOrderId"], order["status"], order["restoreUrl"], order["currency"]) == (
        "k-5", "ABANDONED_SHOPPING_CART", "https://shop.example/c/k-5", "EUR")
    assert order["externalCustomerId"] == "c-77" and order["items"][0]["externalItemId"] == "WINNIEPOOH"


def test_one_order_per_request_keeps_the_latest_state(adapter) -> None:
    order = make_order()
    fulfilled = make_order_event("fulfilled_order", make_order(status="fulfilled"), event_id=7,
                                 occurred_at=T0 + timedelta(days=1))
    placed = make_order_event("placed_order", order, event_id=5, occurred_at=T0)
    other = make_order_event("placed_order", make_order(id="777"), event_id=6, occurred_at=T0)
    (request,) = adapter.build_requests([fulfilled, placed, other]).requests
    assert [(o["externalOrderId"], o["status"]) for o in request.json["orders"]] == [
        ("777", "IN_PROGRESS"), ("1234", "DELIVERED")]
    assert sorted(request.event_ids) == [5, 6, 7]  # the placed event is delivered with the fulfilled one


def test_same_timestamp_falls_back_to_lifecycle_order(adapter) -> None:
    cancelled = make_order_event("cancelled_order", event_id=1, occurred_at=T0)
    placed = make_order_event("placed_order", event_id=2, occurred_at=T0)
    (request,) = adapter.build_requests([cancelled, placed]).requests
    assert [o["status"] for o in request.json["orders"]] == ["CANCELLED"]


def test_at_most_1000_orders_per_request(adapter) -> None:
    events = [make_order_event("placed_order", make_order(id=str(n)), event_id=n) for n in range(2500)]
    for bulk in (False, True):
        requests = adapter.build_requests(events, bulk=bulk).requests
        assert [len(r.json["orders"]) for r in requests] == [1000, 1000, 500]
        assert sorted(i for r in requests for i in r.event_ids) == list(range(2500))


def test_classify_reads_the_error_message(adapter) -> None:
    body = b'{"status":400,"error":"Bad Request","message":"currency is invalid"}'
    result = adapter.classify(400, {}, body)
    assert (result.outcome, result.message) == (Outcome.REJECTED, "HTTP 400: currency is invalid")
    assert adapter.classify(200, {}, b"").outcome is Outcome.DELIVERED


def test_test_request(adapter) -> None:
    request = adapter.test_request()
    assert (request.method, request.url, request.auth) == (
        "GET", "https://esputnik.com/api/v1/account/info", ("shoprelay", "es-key"))
