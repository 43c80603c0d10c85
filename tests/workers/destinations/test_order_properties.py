"""Property test: any valid canonical order gives bodies each platform accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import make_order_event
from tests.workers.destinations.klaviyo_sdk import assert_request_accepted
from workers.destinations.esputnik import EsputnikAdapter
from workers.destinations.klaviyo import KlaviyoAdapter
from workers.destinations.sendlane import SendlaneAdapter

ORDER_EVENTS = ["placed_order", "ordered_product", "fulfilled_order", "cancelled_order", "refunded_order"]
text = st.text(min_size=1, max_size=30)
optional_text = st.none() | st.text(max_size=30)
money = st.integers(min_value=0, max_value=10_000_000).map(lambda cents: cents / 100) | st.integers(0, 5000)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))
iso = moments.map(lambda moment: moment.isoformat().replace("+00:00", "Z"))
phones = st.none() | st.from_regex(r"\+[1-9][0-9]{7,13}", fullmatch=True) | st.text(max_size=12)
emails = st.none() | st.emails().map(str)

addresses = st.none() | st.fixed_dictionaries({
    key: optional_text for key in ("first_name", "last_name", "company", "address1", "address2", "city",
                                   "region", "region_code", "country", "country_code", "zip", "phone")})
items = st.fixed_dictionaries({
    "product_id": text, "sku": st.none() | text, "name": text, "quantity": st.integers(1, 50),
    "price": money, "total": money, "url": st.none() | st.just("https://shop.example/p/1"),
    "image_url": st.none() | st.just("https://shop.example/i/1.png"),
    "categories": st.lists(text, max_size=3), "brand": st.none() | text,
})
orders = st.fixed_dictionaries({
    "id": text, "status": st.sampled_from(["pending", "placed", "fulfilled", "cancelled", "refunded",
                                           "partially_refunded"]),
    "placed_at": iso, "currency": st.sampled_from(["USD", "EUR", "UAH", "GBP"]),
    "total": money, "subtotal": money, "tax": money, "shipping": money,
    "discount": st.none() | st.fixed_dictionaries({"code": optional_text, "value": money}),
    "customer": st.fixed_dictionaries({"id": st.none() | text, "email": emails, "phone": phones,
                                       "first_name": optional_text, "last_name": optional_text,
                                       "accepts_marketing": st.booleans()}),
    "billing_address": addresses, "shipping_address": addresses,
    "items": st.lists(items, min_size=1, max_size=4),
    "fulfilled_at": st.none() | iso, "cancelled_at": st.none() | iso, "refunded_at": st.none() | iso,
    "refunded_amount": st.none() | money, "reason": optional_text,
})
cases = st.tuples(orders, st.sampled_from(ORDER_EVENTS), st.booleans(), st.integers(0, 3))


def events_for(order: dict, name: str, historical: bool, line: int):
    index = min(line, len(order["items"]) - 1)
    occurred = datetime(2026, 11, 20, tzinfo=UTC) + timedelta(minutes=line)
    return [make_order_event(name, order, event_id=1, line_index=index, historical=historical,
                             occurred_at=occurred)]


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases)
def test_klaviyo_bodies_validate_with_the_sdk(case) -> None:
    order, name, historical, line = case
    adapter = KlaviyoAdapter({"api_key": "pk"})
    for bulk in (False, True):
        result = adapter.build_requests(events_for(order, name, historical, line), bulk=bulk)
        if result.skipped:  # only a customer Klaviyo cannot identify is refused
            assert not order["customer"]["email"] and not order["customer"]["id"]
            continue
        (request,) = result.requests
        assert_request_accepted(request)


@settings(max_examples=150, deadline=None, database=None)
@given(cases)
def test_esputnik_orders_carry_the_required_fields(case) -> None:
    order, name, historical, line = case
    result = EsputnikAdapter({"api_key": "k"}).build_requests(events_for(order, name, historical, line))
    if name in ("ordered_product", "refunded_order") or not any(
            order["customer"][key] for key in ("id", "email", "phone")):
        assert result.requests == [] and 1 in result.skipped
        return
    (request,) = result.requests
    (record,) = request.json["orders"]
    assert isinstance(record["externalOrderId"], str) and record["externalOrderId"]
    assert isinstance(record["externalCustomerId"], str) and record["externalCustomerId"]
    assert isinstance(record["totalCost"], int | float)
    assert record["status"] in {"IN_PROGRESS", "DELIVERED", "CANCELLED"}
    assert datetime.fromisoformat(record["date"]).tzinfo is not None
    assert len(record["currency"]) == 3
    for item in record["items"]:
        assert {"externalItemId", "name", "quantity", "cost"} <= set(item)


@settings(max_examples=150, deadline=None, database=None)
@given(cases)
def test_sendlane_orders_carry_the_required_fields(case) -> None:
    order, name, historical, line = case
    result = SendlaneAdapter({"api_token": "a", "integration_token": "t"}).build_requests(
        events_for(order, name, historical, line))
    if name == "ordered_product":
        assert result.requests == [] and 1 in result.skipped
        return
    (request,) = result.requests
    body = request.json
    assert body["token"] == "t" and isinstance(body["order_id"], str) and body["order_id"]
    assert body["status"] in {"placed", "fulfilled", "cancelled", "refunded"}
    assert isinstance(body["time"], int) and body["initial_sync"] is historical
    assert body["total_items"] == sum(item["quantity"] for item in order["items"])
    assert all(item["product_id"] for item in body["line_items"])
