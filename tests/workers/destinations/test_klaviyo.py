"""Klaviyo adapter: bodies field by field against the custom-platform guide, all checked by the SDK."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from tests.factories import make_contact, make_order, make_order_event, make_product
from tests.workers.destinations.klaviyo_sdk import (
    assert_request_accepted,
    assert_sdk_accepts,
    body_json,
    dropped_keys,
)
from workers.destinations import get_adapter_class
from workers.destinations.base import OutboundEvent, Outcome
from workers.destinations.klaviyo import REVISION, KlaviyoAdapter

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


@pytest.fixture
def adapter() -> KlaviyoAdapter:
    return KlaviyoAdapter({"api_key": "pk_test_123"})


def attrs(request) -> dict:
    return request.json["data"]["attributes"]


def event(name: str, payload: dict, event_id: int = 1, unique_id: str = "u-1", historical: bool = False):
    return OutboundEvent(event_id, name, unique_id, payload, NOW, historical)


def test_registered_with_documented_limits() -> None:
    assert get_adapter_class("klaviyo") is KlaviyoAdapter
    assert KlaviyoAdapter.default_rate_limits == {"burst_per_second": 350, "per_minute": 3500}
    assert KlaviyoAdapter.bulk_rate_limits == {"burst_per_second": 10, "per_minute": 150}
    assert KlaviyoAdapter.max_events_per_request == 1000


def test_placed_order_matches_the_custom_platform_guide(adapter) -> None:
    result = adapter.build_requests([make_order_event("placed_order")])
    (request,) = result.requests
    assert (request.method, request.url) == ("POST", "https://a.klaviyo.com/api/events")
    assert request.event_ids == [1]
    assert request.headers == {"Authorization": "Klaviyo-API-Key pk_test_123", "revision": REVISION,
                               "Accept": "application/vnd.api+json",
                               "Content-Type": "application/vnd.api+json"}
    body = attrs(request)
    assert body["metric"] == {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}}
    assert (body["value"], body["value_currency"], body["unique_id"]) == (29.98, "USD", "1234")
    assert body["time"] == "2026-11-20T10:15:00+00:00"
    assert "backfill" not in body
    props = body["properties"]
    assert props["OrderId"] == "1234"
    assert props["Categories"] == ["Fiction", "Children", "Classics"]
    assert props["ItemNames"] == ["Winnie the Pooh", "A Tale of Two Cities"]
    assert props["Brands"] == ["Kids Books", "Harcourt Classics"]
    assert (props["DiscountCode"], props["DiscountValue"]) == ("Free Shipping", 5)
    assert props["Items"][0] == {
        "ProductID": "1111", "SKU": "WINNIEPOOH", "ProductName": "Winnie the Pooh", "Quantity": 1,
        "ItemPrice": 9.99, "RowTotal": 9.99, "ProductURL": "https://shop.example/p/1111",
        "ImageURL": "https://shop.example/i/1111.png", "Categories": ["Fiction", "Children"],
        "Brand": "Kids Books"}
    assert props["BillingAddress"] == {
        "FirstName": "John", "LastName": "Smith", "Company": "", "Address1": "123 Abc st",
        "Address2": "Suite 1", "City": "Boston", "Region": "Massachusetts", "RegionCode": "MA",
        "Country": "United States", "CountryCode": "US", "Zip": "02110", "Phone": "5551234567"}
    assert props["ShippingAddress"] == props["BillingAddress"]
    assert body["profile"]["data"]["attributes"] == {
        "email": "john.smith@example.com", "phone_number": "+15551234567", "external_id": "c-77",
        "first_name": "John", "last_name": "Smith",
        "location": {"address1": "123 Abc st", "address2": "Suite 1", "city": "Boston",
                     "region": "Massachusetts", "country": "United States", "zip": "02110"}}
    assert_request_accepted(request)


def test_ordered_product_per_line(adapter) -> None:
    (request,) = adapter.build_requests([make_order_event("ordered_product", line_index=1)]).requests
    body = attrs(request)
    assert body["metric"]["data"]["attributes"]["name"] == "Ordered Product"
    assert (body["value"], body["unique_id"]) == (19.99, "1234:TALEOFTWO")
    assert body["properties"] == {
        "OrderId": "1234", "ProductID": "2222", "SKU": "TALEOFTWO", "ProductName": "A Tale of Two Cities",
        "Quantity": 1, "ProductURL": "https://shop.example/p/2222",
        "ImageURL": "https://shop.example/i/2222.png", "Categories": ["Fiction", "Classics"],
        "ProductBrand": "Harcourt Classics"}
    assert_request_accepted(request)


@pytest.mark.parametrize(("name", "status", "time_field", "metric"), [
    ("fulfilled_order", "fulfilled", "fulfilled_at", "Fulfilled Order"),
    ("cancelled_order", "cancelled", "cancelled_at", "Cancelled Order"),
    ("refunded_order", "refunded", "refunded_at", "Refunded Order"),
])
def test_later_lifecycle_events_reuse_the_order_id(adapter, name, status, time_field, metric) -> None:
    order = make_order(status=status, reason="Customer changed their mind", refunded_amount=9.99,
                       **{time_field: "2026-11-22T09:00:00Z"})
    (request,) = adapter.build_requests([make_order_event(name, order)]).requests
    body = attrs(request)
    assert body["metric"]["data"]["attributes"]["name"] == metric
    assert body["unique_id"] == "1234"
    assert body["time"] == "2026-11-22T09:00:00+00:00"
    assert body["properties"]["Reason"] == "Customer changed their mind"
    assert body["properties"]["Items"][1]["SKU"] == "TALEOFTWO"
    if name == "refunded_order":
        assert body["value"] == 9.99 and body["properties"]["RefundedAmount"] == 9.99
    else:
        assert body["value"] == 29.98 and "RefundedAmount" not in body["properties"]
    assert_request_accepted(request)


def test_full_refund_without_amount_counts_the_total(adapter) -> None:
    order = make_order(status="refunded", refunded_at="2026-11-22T09:00:00Z")
    (request,) = adapter.build_requests([make_order_event("refunded_order", order)]).requests
    assert attrs(request)["value"] == 29.98


def test_historical_events_are_backfilled_and_a_local_phone_is_left_out(adapter) -> None:
    order = make_order()
    order["customer"]["phone"] = "555-1234"
    (request,) = adapter.build_requests([make_order_event("placed_order", order, historical=True)]).requests
    body = attrs(request)
    assert body["backfill"] is True
    assert "phone_number" not in body["profile"]["data"]["attributes"]
    assert_request_accepted(request)


def test_unsupported_and_unidentifiable_events_are_skipped(adapter) -> None:
    anonymous = make_order(customer={"id": None, "email": None, "phone": "12", "first_name": "A",
                                     "last_name": "B", "accepts_marketing": False})
    anonymous_event = make_order_event("placed_order", anonymous, event_id=3)
    anonymous_event.payload["contact"] = None
    events = [make_order_event("pending_order", event_id=1),
              event("abandoned_checkout", {"checkout": {"id": "k1"}}, event_id=2), anonymous_event]
    result = adapter.build_requests(events)
    assert result.requests == []
    assert set(result.skipped) == {1, 2, 3}
    assert "abandoned" in result.skipped[2]
    assert "customer id" in result.skipped[3]


def test_profile_upsert_goes_to_profile_import(adapter) -> None:
    (request,) = adapter.build_requests([event("profile_upsert", {"contact": make_contact()})]).requests
    assert request.url.endswith("/api/profile-import")
    assert request.json["data"]["type"] == "profile"
    assert request.json["data"]["attributes"]["external_id"] == "c-77"
    assert_request_accepted(request)


def test_consent_changes_subscribe_and_unsubscribe(adapter) -> None:
    adapter.settings = {"list_id": "Y6nRLr"}
    yes = event("consent_change", {"contact": make_contact(accepts_marketing=True)}, 1)
    jane = make_contact(email="jane@example.com", accepts_marketing=False)
    no = event("consent_change", {"contact": jane}, 2)
    subscribe, unsubscribe = adapter.build_requests([yes, no]).requests
    assert subscribe.url.endswith("/api/profile-subscription-bulk-create-jobs") and subscribe.event_ids == [1]
    profile = subscribe.json["data"]["attributes"]["profiles"]["data"][0]["attributes"]
    assert profile == {"email": "john.smith@example.com",
                       "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}}}
    assert subscribe.json["data"]["relationships"]["list"]["data"] == {"type": "list", "id": "Y6nRLr"}
    assert unsubscribe.url.endswith("/api/profile-subscription-bulk-delete-jobs")
    assert unsubscribe.event_ids == [2]
    marketing = unsubscribe.json["data"]["attributes"]["profiles"]["data"][0]["attributes"]["subscriptions"]
    assert marketing == {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}}
    assert_request_accepted(subscribe)
    assert_request_accepted(unsubscribe)


def test_latest_consent_per_email_wins_and_carries_the_earlier_one(adapter) -> None:
    first = event("consent_change", {"contact": make_contact(accepts_marketing=True)}, 1, historical=True)
    then = event("consent_change", {"contact": make_contact(accepts_marketing=False)}, 2)
    (request,) = adapter.build_requests([first, then]).requests
    assert request.url.endswith("bulk-delete-jobs")
    assert request.event_ids == [1, 2]


def test_historical_consent_is_an_import_with_consent_time(adapter) -> None:
    (request,) = adapter.build_requests(
        [event("consent_change", {"contact": make_contact()}, historical=True)]).requests
    attributes = request.json["data"]["attributes"]
    assert attributes["historical_import"] is True
    marketing = attributes["profiles"]["data"][0]["attributes"]["subscriptions"]["email"]["marketing"]
    assert marketing["consented_at"] == NOW.isoformat()
    assert_request_accepted(request)


def test_product_events_are_not_taken_as_events(adapter) -> None:
    result = adapter.build_requests([event("product_upsert", {"product": make_product()})])
    assert result.requests == [] and "Catalog API" in result.skipped[1]


@pytest.mark.parametrize(("name", "payload", "metric", "expected"), [
    ("viewed_product", {"activity": {"product": {"product_id": "1111", "name": "Winnie", "price": 9.99}}},
     "Viewed Product", {"ProductID": "1111", "ProductName": "Winnie", "Price": 9.99}),
    ("added_to_cart", {"activity": {"product": {"product_id": "1111", "quantity": 2},
                                    "cart": {"total": 19.98, "currency": "USD", "items": []}}},
     "Added to Cart", {"AddedItemProductID": "1111", "AddedItemQuantity": 2}),
    ("started_checkout", {"checkout": {"id": "k1", "url": "https://shop.example/c/k1", "total": 9.99,
                                       "currency": "USD",
                                       "items": [{"name": "Winnie", "categories": ["Kids"]}]}},
     "Started Checkout", {"CheckoutURL": "https://shop.example/c/k1", "ItemNames": ["Winnie"]}),
    ("active_on_site", {"activity": {"url": "https://shop.example/"}}, "Active on Site",
     {"page": "https://shop.example/"}),
])
def test_onsite_metrics(adapter, name, payload, metric, expected) -> None:
    payload = {**payload, "contact": make_contact()}
    (request,) = adapter.build_requests([event(name, payload)]).requests
    body = attrs(request)
    assert body["metric"]["data"]["attributes"]["name"] == metric
    assert expected.items() <= body["properties"].items()
    assert_request_accepted(request)


def test_bulk_groups_per_profile_and_never_repeats_a_unique_id(adapter) -> None:
    order = make_order()
    events = [make_order_event("placed_order", order, event_id=1),
              make_order_event("ordered_product", order, event_id=2, line_index=0),
              make_order_event("placed_order", order, event_id=3),  # a replay of event 1
              make_order_event("placed_order", make_order(id="99"), event_id=4)]
    first, second = adapter.build_requests(events, bulk=True).requests
    assert first.url.endswith("/api/event-bulk-create-jobs")
    assert (first.event_ids, second.event_ids) == ([1, 2, 4], [3])
    entries = body_json(first)["data"]["attributes"]["events-bulk-create"]["data"]
    assert len(entries) == 1  # one profile, three events
    grouped = entries[0]["attributes"]["events"]["data"]
    names = [e["attributes"]["metric"]["data"]["attributes"]["name"] for e in grouped]
    assert names == ["Placed Order", "Ordered Product", "Placed Order"]
    for request in (first, second):
        assert_request_accepted(request)


def test_bulk_requests_hold_at_most_1000_events(adapter) -> None:
    events = [make_order_event("placed_order", make_order(id=str(n)), event_id=n) for n in range(2001)]
    requests = adapter.build_requests(events, bulk=True).requests
    assert [len(r.event_ids) for r in requests] == [1000, 1000, 1]
    assert_request_accepted(requests[-1])


def test_bulk_requests_stay_under_5_mb(adapter, monkeypatch) -> None:
    """Large orders fill a request by size before they fill it by count; each body stays under the cap."""

    from workers.destinations import klaviyo

    monkeypatch.setattr(klaviyo, "BULK_MAX_BYTES", 60_000)  # the same rule at a size the test can build
    lines = [{"product_id": str(n), "sku": f"S{n}", "name": "x" * 400, "quantity": 1, "price": 1, "total": 1}
             for n in range(20)]
    events = [make_order_event("placed_order", make_order(id=str(n), items=lines), event_id=n) for n in range(40)]
    requests = adapter.build_requests(events, bulk=True).requests
    sizes = [len(r.content) for r in requests]
    assert len(requests) > 1 and max(sizes) <= 60_000, sizes
    assert sorted(i for r in requests for i in r.event_ids) == list(range(40))
    assert_request_accepted(requests[0])


def test_a_single_event_over_the_cap_still_gets_a_request_of_its_own(adapter, monkeypatch) -> None:
    from workers.destinations import klaviyo

    monkeypatch.setattr(klaviyo, "BULK_MAX_BYTES", 100)
    events = [make_order_event("placed_order", make_order(id=str(n)), event_id=n) for n in range(3)]
    requests = adapter.build_requests(events, bulk=True).requests
    assert [r.event_ids for r in requests] == [[0], [1], [2]]


def _reference_job(groups: list[tuple[OutboundEvent, ...]]) -> dict:
    """The bulk job built the plain way, as nested values: one entry per profile, in first-seen order."""
    from workers.destinations.klaviyo_payloads import event_attributes, event_profile

    data = []
    for group in groups:
        attributes = {"profile": {"data": {"type": "profile", "attributes": event_profile(group[0])}},
                      "events": {"data": [{"type": "event", "attributes": event_attributes(e)} for e in group]}}
        if group[0].historical:
            attributes["backfill"] = True
        data.append({"type": "event-bulk-create", "attributes": attributes})
    return {"data": {"type": "event-bulk-create-job", "attributes": {"events-bulk-create": {"data": data}}}}


def test_bulk_body_assembled_from_pieces_is_the_json_api_job(adapter) -> None:
    """The body is joined from bytes serialised once per event and per profile; it must read back exactly as
    the nested job, entries grouped per (profile, backfill), with the byte count the cap was checked against."""
    john, jane = make_order(id="1"), make_order(id="2", customer={**make_order()["customer"], "id": "c-9",
                                                                  "email": "jane@example.com"})
    events = [make_order_event("placed_order", john, event_id=1),
              make_order_event("placed_order", jane, event_id=2),
              make_order_event("ordered_product", john, event_id=3, line_index=1),
              make_order_event("placed_order", make_order(id="3"), event_id=4, historical=True)]
    (request,) = adapter.build_requests(events, bulk=True).requests
    assert request.json is None and request.headers["Content-Type"] == "application/vnd.api+json"
    assert orjson.loads(request.content) == _reference_job([(events[0], events[2]), (events[1],), (events[3],)])
    assert_request_accepted(request)


def test_a_profile_is_built_once_per_distinct_contact_and_address(adapter, monkeypatch) -> None:
    from workers.destinations import klaviyo

    built = []
    real = klaviyo.profile_attributes
    monkeypatch.setattr(klaviyo, "profile_attributes", lambda *inputs: built.append(inputs) or real(*inputs))
    order = make_order(id="1")
    moved = make_order(id="2", billing_address={**order["billing_address"], "city": "Salem"})
    events = [make_order_event("placed_order", order, event_id=1),
              make_order_event("ordered_product", order, event_id=2),
              make_order_event("placed_order", make_order(id="3"), event_id=3),  # same customer and address
              make_order_event("placed_order", moved, event_id=4)]  # same customer, another billing address
    (request,) = adapter.build_requests(events, bulk=True).requests
    assert len(built) == 2
    entries = body_json(request)["data"]["attributes"]["events-bulk-create"]["data"]
    cities = [e["attributes"]["profile"]["data"]["attributes"]["location"]["city"] for e in entries]
    assert cities == ["Boston", "Salem"] and [len(e["attributes"]["events"]["data"]) for e in entries] == [3, 1]


def test_the_logged_form_of_a_bulk_body_is_its_valid_json_head(adapter, monkeypatch) -> None:
    from workers.destinations import klaviyo

    events = [make_order_event("placed_order", make_order(id=str(n)), event_id=n) for n in range(200)]
    (request,) = adapter.build_requests(events, bulk=True).requests
    whole, logged = body_json(request), orjson.loads(request.logged)
    assert len(request.logged) <= klaviyo.LOGGED_BYTES < len(request.content)
    (entry,) = logged["data"]["attributes"]["events-bulk-create"]["data"]  # one customer: one entry
    (full,) = whole["data"]["attributes"]["events-bulk-create"]["data"]
    shown = entry["attributes"]["events"]["data"]
    assert 0 < len(shown) < 200 and shown == full["attributes"]["events"]["data"][:len(shown)]
    assert entry["attributes"]["profile"] == full["attributes"]["profile"]
    monkeypatch.setattr(klaviyo, "LOGGED_BYTES", 10)  # too small for anything: still one event shown
    (request,) = adapter.build_requests(events[:3], bulk=True).requests
    assert len(orjson.loads(request.logged)["data"]["attributes"]["events-bulk-create"]["data"]) == 1


def test_bulk_backfill_is_set_on_historical_entries(adapter) -> None:
    events = [make_order_event("placed_order", historical=True)]
    (request,) = adapter.build_requests(events, bulk=True).requests
    entry = body_json(request)["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"]
    assert entry["backfill"] is True and entry["events"]["data"][0]["attributes"]["backfill"] is True
    assert_request_accepted(request)


def test_sdk_check_catches_a_misspelt_key_and_a_wrong_type() -> None:
    (request,) = KlaviyoAdapter({"api_key": "k"}).build_requests([make_order_event("placed_order")]).requests
    request.json["data"]["attributes"]["uniqe_id"] = "oops"
    with pytest.raises(AssertionError, match="uniqe_id"):
        assert_request_accepted(request)
    request.json["data"]["attributes"].pop("uniqe_id")
    request.json["data"]["attributes"]["value"] = "29.98"
    from openapi_client.models.event_create_query_v2 import EventCreateQueryV2
    with pytest.raises(ValidationError):
        assert_sdk_accepts(EventCreateQueryV2, request.json)
    assert dropped_keys({"a": [1, 2]}, {"a": [1]}) == ["/a"]


def test_classify_uses_json_api_detail(adapter) -> None:
    body = b'{"errors":[{"id":"x","status":400,"code":"invalid","title":"Invalid input.",' \
           b'"detail":"The phone number provided either does not exist or is ineligible.","source":{}}]}'
    result = adapter.classify(400, {}, body)
    assert result.outcome is Outcome.REJECTED
    assert result.message == "HTTP 400: The phone number provided either does not exist or is ineligible."
    assert adapter.classify(202, {}, b"").outcome is Outcome.DELIVERED


def test_test_request_is_a_harmless_get(adapter) -> None:
    request = adapter.test_request()
    assert (request.method, request.url, request.json) == ("GET", "https://a.klaviyo.com/api/accounts", None)
    assert request.headers["Authorization"] == "Klaviyo-API-Key pk_test_123"
    assert adapter.secrets() == ["pk_test_123"]
