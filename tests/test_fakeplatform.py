"""The fake platforms answer like the real ones: they accept documented bodies, refuse the rest, misbehave on command."""

from __future__ import annotations

import base64
import copy
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest
from openapi_client.models.event_create_query_v2 import EventCreateQueryV2

from tests.fakeplatform import FakePlatform, sign_webhook

KLAVIYO_HEADERS = {"Authorization": "Klaviyo-API-Key pk_test", "revision": "2026-07-15",
                   "Content-Type": "application/vnd.api+json"}
INTEGRATION_TOKEN = "3f0c6a52-7f6b-4c1e-9a55-5e0d1c2b7a10"


@pytest.fixture
def fake() -> Iterator[FakePlatform]:
    with FakePlatform() as platform:
        yield platform
        assert platform.internal_errors == []


@pytest.fixture
def klaviyo(fake: FakePlatform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url("klaviyo"), headers=KLAVIYO_HEADERS, timeout=5) as client:
        yield client


@pytest.fixture
def sendlane(fake: FakePlatform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url("sendlane"), headers={"Authorization": "Bearer sl_api_test"},
                      timeout=5) as client:
        yield client


@pytest.fixture
def esputnik(fake: FakePlatform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url("esputnik"), auth=("any", "es_test"), timeout=5) as client:
        yield client


# --- bodies written from reference/platforms.md, not from the adapters ---------------------------


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


# --- Klaviyo -----------------------------------------------------------------------------------


def test_klaviyo_accepts_a_current_event_with_202_and_records_it(fake, klaviyo):
    response = klaviyo.post("/api/events", json=event_body())

    assert response.status_code == 202
    assert response.content == b""
    assert response.headers["RateLimit-Limit"].startswith("350")
    assert int(response.headers["RateLimit-Remaining"]) < 350
    [event] = fake.klaviyo_events_named("Placed Order")
    assert (event.identity, event.unique_id, event.value) == (("email", "john.smith@example.com"), "1001", 29.98)
    assert fake.klaviyo_revenue() == pytest.approx(29.98)
    [recorded] = fake.requests
    assert (recorded.platform, recorded.method, recorded.path, recorded.status) == (
        "klaviyo", "POST", "/klaviyo/api/events", 202)
    assert recorded.json == event_body()
    assert recorded.headers["revision"] == "2026-07-15"


def _old_shape() -> dict[str, Any]:
    """The pre-2023-07-15 body: flat metric name and a `$email` profile."""
    return {"data": {"type": "event", "attributes": {
        "properties": {"OrderId": "1001"}, "metric": {"name": "Placed Order"},
        "profile": {"$email": "john.smith@example.com"}, "value": 29.98, "unique_id": "1001"}}}


def _without_identifier() -> dict[str, Any]:
    body = event_body()
    body["data"]["attributes"]["profile"]["data"]["attributes"] = {"first_name": "John"}
    return body


def _with_unknown_key() -> dict[str, Any]:
    body = event_body()
    body["data"]["attributes"]["revenue"] = 29.98
    return body


@pytest.mark.parametrize(("body", "pointer"), [
    (_old_shape(), "/data/attributes/metric/data"),
    (_without_identifier(), "/data/attributes/profile/data"),
    (event_body(value="29.98"), "/data/attributes/value"),
    (_with_unknown_key(), "/data/attributes/revenue"),
    ({"data": {"type": "events", "attributes": event_body()["data"]["attributes"]}}, "/data/type"),
], ids=["pre-2023-shape", "no-profile-identifier", "value-as-string", "unknown-key", "wrong-type"])
def test_klaviyo_rejects_invalid_events_with_a_json_api_error(fake, klaviyo, body, pointer):
    response = klaviyo.post("/api/events", json=body)

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["status"] == 400 and error["code"] == "invalid" and error["title"] and error["id"]
    assert error["source"] == {"pointer": pointer}, error["detail"]
    assert fake.klaviyo_events == []


def test_the_sdk_itself_drops_unknown_keys_which_is_why_the_fake_checks_them():
    parsed = EventCreateQueryV2.from_dict(_with_unknown_key()).to_dict()
    assert "revenue" not in parsed["data"]["attributes"]


def test_klaviyo_keeps_only_the_first_event_per_profile_metric_and_unique_id(fake, klaviyo):
    for _ in range(3):
        assert klaviyo.post("/api/events", json=event_body()).status_code == 202
    assert klaviyo.post("/api/events", json=event_body(email="JOHN.SMITH@example.com ")).status_code == 202
    assert klaviyo.post("/api/events", json=event_body("Fulfilled Order")).status_code == 202
    assert klaviyo.post("/api/events", json=event_body(email="other@example.com")).status_code == 202

    assert len(fake.klaviyo_events) == 3
    assert fake.klaviyo_duplicates == 3
    assert fake.klaviyo_revenue() == pytest.approx(2 * 29.98)


def test_klaviyo_dedupes_concurrent_retries_exactly_once(fake):
    def post_many() -> list[int]:
        with httpx.Client(base_url=fake.base_url("klaviyo"), headers=KLAVIYO_HEADERS, timeout=5) as client:
            return [client.post("/api/events", json=event_body()).status_code for _ in range(25)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = [status for batch in pool.map(lambda _: post_many(), range(4)) for status in batch]

    assert statuses == [202] * 100
    assert len(fake.klaviyo_events) == 1 and fake.klaviyo_duplicates == 99
    assert len(fake.requests) == 100


def test_klaviyo_without_unique_id_dedupes_by_timestamp_second(fake, klaviyo):
    first = event_body(unique_id=None)
    later = copy.deepcopy(first)
    later["data"]["attributes"]["time"] = "2026-11-20T10:15:01+00:00"
    for body in (first, first, later):
        assert klaviyo.post("/api/events", json=body).status_code == 202
    assert [e.unique_id for e in fake.klaviyo_events] == ["1795169700", "1795169701"]
    assert fake.klaviyo_duplicates == 1


def test_klaviyo_bulk_create_answers_202_with_a_job_and_stores_every_event(fake, klaviyo):
    events = [(f"c{i}@example.com", "Placed Order", str(i)) for i in range(1000)]
    response = klaviyo.post("/api/event-bulk-create-jobs", json=bulk_body(events))

    assert response.status_code == 202
    job = response.json()["data"]
    assert job["type"] == "event-bulk-create-job" and job["attributes"]["total_count"] == 1000
    assert len(fake.klaviyo_events) == 1000
    assert response.headers["RateLimit-Limit"].startswith("10,")
    status = klaviyo.get(f"/api/event-bulk-create-jobs/{job['id']}")
    assert status.status_code == 200 and status.json()["data"]["id"] == job["id"]


def test_klaviyo_bulk_request_with_a_repeated_unique_id_fails_whole(fake, klaviyo):
    events = [("a@example.com", "Placed Order", "1"), ("b@example.com", "Placed Order", "1"),
              ("A@example.com", "Placed Order", "1")]
    response = klaviyo.post("/api/event-bulk-create-jobs", json=bulk_body(events))

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["source"]["pointer"] == "/data/attributes/events-bulk-create/data/2/attributes/events/data/0/attributes/unique_id"
    assert fake.klaviyo_events == []


def test_klaviyo_bulk_refuses_more_than_1000_events(fake, klaviyo):
    events = [(f"c{i}@example.com", "Placed Order", str(i)) for i in range(1001)]
    response = klaviyo.post("/api/event-bulk-create-jobs", json=bulk_body(events))
    assert response.status_code == 400
    assert "1000" in response.json()["errors"][0]["detail"]
    assert fake.klaviyo_events == []


def test_klaviyo_requires_revision_media_type_and_key(fake, klaviyo):
    no_revision = {k: v for k, v in KLAVIYO_HEADERS.items() if k != "revision"}
    response = httpx.post(f"{fake.base_url('klaviyo')}/api/events", json=event_body(), headers=no_revision)
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"parameter": "revision"}

    plain_json = klaviyo.post("/api/events", json=event_body(), headers={"Content-Type": "application/json"})
    assert plain_json.status_code == 400

    wrong_key = klaviyo.post("/api/events", json=event_body(), headers={"Authorization": "Klaviyo-API-Key pk_nope"})
    assert wrong_key.status_code == 401
    assert wrong_key.json()["errors"][0]["status"] == 401
    assert fake.klaviyo_events == []
    assert [r.status for r in fake.requests] == [400, 400, 401]


def test_klaviyo_profile_import_creates_then_updates(fake, klaviyo):
    body = {"data": {"type": "profile", "attributes": {"email": "john.smith@example.com", "first_name": "John",
                                                       "properties": {"tier": "gold"}}}}
    created = klaviyo.post("/api/profile-import", json=body)
    body["data"]["attributes"] = {"email": "john.smith@example.com", "first_name": None, "last_name": "Smith"}
    updated = klaviyo.post("/api/profile-import", json=body)

    assert (created.status_code, updated.status_code) == (201, 200)
    assert created.json()["data"]["id"] == updated.json()["data"]["id"]
    profile = fake.klaviyo_profiles[("email", "john.smith@example.com")]["attributes"]
    assert profile == {"email": "john.smith@example.com", "last_name": "Smith", "properties": {"tier": "gold"}}
    missing = klaviyo.post("/api/profile-import", json={"data": {"type": "profile", "attributes": {"first_name": "X"}}})
    assert missing.status_code == 400


def test_klaviyo_subscription_jobs_record_consent_changes(fake, klaviyo):
    profile = {"type": "profile", "attributes": {"email": "john.smith@example.com", "subscriptions": {
        "email": {"marketing": {"consent": "SUBSCRIBED"}}}}}
    subscribe = {"data": {"type": "profile-subscription-bulk-create-job",
                          "attributes": {"profiles": {"data": [profile]}},
                          "relationships": {"list": {"data": {"type": "list", "id": "Y6nRLr"}}}}}
    unsubscribe = {"data": {"type": "profile-subscription-bulk-delete-job", "attributes": {"profiles": {"data": [
        {"type": "profile", "attributes": {"email": "john.smith@example.com", "subscriptions": {
            "email": {"marketing": {"consent": "UNSUBSCRIBED"}}}}}]}}}}
    no_channels = copy.deepcopy(unsubscribe)
    del no_channels["data"]["attributes"]["profiles"]["data"][0]["attributes"]["subscriptions"]

    assert klaviyo.post("/api/profile-subscription-bulk-create-jobs", json=subscribe).status_code == 202
    assert klaviyo.post("/api/profile-subscription-bulk-delete-jobs", json=unsubscribe).status_code == 202
    refused = klaviyo.post("/api/profile-subscription-bulk-delete-jobs", json=no_channels)
    assert refused.json()["errors"][0]["source"]["pointer"] == "/data/attributes/profiles/data/0/attributes/subscriptions"
    assert [(s["action"], s["list_id"]) for s in fake.klaviyo_subscriptions] == [
        ("subscribe", "Y6nRLr"), ("unsubscribe", None)]


def test_klaviyo_catalog_jobs_create_update_delete_and_cap_at_100(fake, klaviyo):
    assert klaviyo.post("/api/catalog-item-bulk-create-jobs", json=catalog_create_body(2)).status_code == 202
    item_id = "$custom:::$default:::SKU-0"
    update = {"data": {"type": "catalog-item-bulk-update-job", "attributes": {"items": {"data": [
        {"type": "catalog-item", "id": item_id, "attributes": {"price": 5.0}}]}}}}
    delete = {"data": {"type": "catalog-item-bulk-delete-job", "attributes": {"items": {"data": [
        {"type": "catalog-item", "id": "$custom:::$default:::SKU-1"},
        {"type": "catalog-item", "id": "$custom:::$default:::GONE"}]}}}}

    assert klaviyo.post("/api/catalog-item-bulk-update-jobs", json=update).status_code == 202
    deleted = klaviyo.post("/api/catalog-item-bulk-delete-jobs", json=delete)
    assert deleted.json()["data"]["attributes"]["failed_count"] == 1
    assert list(fake.klaviyo_catalog) == [item_id]
    assert fake.klaviyo_catalog[item_id]["price"] == 5.0
    too_many = klaviyo.post("/api/catalog-item-bulk-create-jobs", json=catalog_create_body(101))
    assert too_many.status_code == 400


def test_klaviyo_accounts_answers_for_a_valid_key(klaviyo):
    response = klaviyo.get("/api/accounts")
    assert response.status_code == 200
    assert response.json()["data"][0]["type"] == "account"


# --- faults ------------------------------------------------------------------------------------


def test_fail_next_hits_only_the_named_platform_and_only_n_times(fake, klaviyo, esputnik):
    fake.fail_next(2, status=503, platform="klaviyo")

    assert esputnik.post("/api/v1/orders", json={"orders": [esputnik_order()]}).status_code == 200
    statuses = [klaviyo.post("/api/events", json=event_body()).status_code for _ in range(3)]
    assert statuses == [503, 503, 202]
    assert [r.fault for r in fake.requests_for("klaviyo")] == ["fail", "fail", None]
    assert fake.faults.pending() == 0


def test_fail_for_is_an_outage_that_ends(fake, klaviyo):
    fake.fail_for(0.3)
    assert klaviyo.post("/api/events", json=event_body()).status_code == 500
    time.sleep(0.35)
    assert klaviyo.post("/api/events", json=event_body()).status_code == 202


def test_rate_limit_next_sends_429_with_retry_after_and_no_ratelimit_headers(fake, klaviyo):
    fake.rate_limit_next(1, retry_after=3)
    throttled = klaviyo.post("/api/events", json=event_body())
    ok = klaviyo.post("/api/events", json=event_body())

    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert not any(h.lower().startswith("ratelimit-") for h in throttled.headers)
    assert throttled.json()["errors"][0]["code"] == "throttled"
    assert ok.status_code == 202 and "RateLimit-Remaining" in ok.headers


def test_timeout_next_holds_the_answer_past_the_client_timeout_but_still_accepts(fake, klaviyo):
    fake.timeout_next(1, delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        klaviyo.post("/api/events", json=event_body(), timeout=0.1)
    deadline = time.time() + 3
    while not fake.klaviyo_events and time.time() < deadline:
        time.sleep(0.02)
    assert klaviyo.post("/api/events", json=event_body()).status_code == 202  # the retry
    assert len(fake.klaviyo_events) == 1 and fake.klaviyo_duplicates == 1


def test_reject_next_answers_in_the_platform_error_shape(fake, sendlane, esputnik):
    fake.reject_next(1, status=422, detail="bad order", platform="sendlane")
    fake.reject_next(1, status=400, detail="no such store")
    rejected = sendlane.post("/tracking/order-placed", json=sendlane_order())
    assert rejected.status_code == 422 and rejected.json()["message"] == "bad order"
    other = esputnik.post("/api/v1/orders", json={"orders": [esputnik_order()]})
    assert other.status_code == 400 and other.json()["message"] == "no such store"
    assert fake.sendlane_orders == {} and fake.esputnik_orders == {}


@pytest.mark.parametrize("kind", ["klaviyo", "sendlane", "esputnik", "webhook"])
def test_set_auth_failure_makes_a_platform_answer_401_until_cleared(fake, kind):
    requests = {
        "klaviyo": lambda: httpx.post(f"{fake.base_url('klaviyo')}/api/events", json=event_body(),
                                      headers=KLAVIYO_HEADERS),
        "sendlane": lambda: httpx.post(f"{fake.base_url('sendlane')}/tracking/order-placed", json=sendlane_order(),
                                       headers={"Authorization": "Bearer sl_api_test"}),
        "esputnik": lambda: httpx.post(f"{fake.base_url('esputnik')}/api/v1/orders",
                                       json={"orders": [esputnik_order()]}, auth=("u", "es_test")),
        "webhook": lambda: signed_post(fake, {"event": "placed_order"}, "evt-1"),
    }
    fake.set_auth_failure(kind, True)
    assert requests[kind]().status_code == 401
    fake.set_auth_failure(kind, False)
    assert requests[kind]().status_code in (200, 202)


def test_observer_measures_the_busiest_window_and_splits_by_time(fake, klaviyo):
    for _ in range(3):
        klaviyo.get("/api/accounts")
    time.sleep(0.25)
    middle = time.time()
    time.sleep(0.25)
    for _ in range(2):
        klaviyo.get("/api/accounts")

    assert fake.max_requests_in_window("klaviyo", 0.2) == 3
    assert fake.max_requests_in_window("klaviyo", 10) == 5
    assert fake.max_requests_in_window("sendlane", 1) == 0
    assert len(fake.requests_before(middle)) == 3 and len(fake.requests_after(middle, "klaviyo")) == 2


def test_reset_forgets_requests_data_and_faults(fake, klaviyo):
    klaviyo.post("/api/events", json=event_body())
    fake.fail_next(5)
    fake.reset()
    assert fake.requests == [] and fake.klaviyo_events == [] and fake.faults.pending() == 0
    assert klaviyo.post("/api/events", json=event_body()).status_code == 202


# --- Sendlane ----------------------------------------------------------------------------------


def test_sendlane_order_placed_is_accepted_and_kept_with_status_history(fake, sendlane):
    assert sendlane.post("/tracking/order-placed", json=sendlane_order()).status_code == 200
    response = sendlane.post("/tracking/order-placed", json=sendlane_order(status="fulfilled"))

    assert response.status_code == 200 and "data" in response.json()
    assert fake.sendlane_orders["1234"].statuses == ["placed", "fulfilled"]
    assert fake.sendlane_orders["1234"].latest["status"] == "fulfilled"


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/tracking/order-placed", sendlane_order(order_id=None), "order_id"),
    ("/tracking/order-placed", sendlane_order(total="29.98"), "total"),
    ("/tracking/order-placed", sendlane_order(time="yesterday"), "time"),
    ("/tracking/order-placed", sendlane_order(line_items=[{"quantity": 1}]), "line_items.0.product_id"),
    ("/tracking/customer-added", {"token": INTEGRATION_TOKEN, "email": "a@b.c"}, "customer_id"),
    ("/tracking/product-added", {"token": INTEGRATION_TOKEN, "product_id": "1", "product_url": "https://x"},
     "image_url"),
    ("/tracking/checkout-started", {"token": INTEGRATION_TOKEN}, "checkout_id"),
    ("/tracking/product-viewed", {"product_id": "1"}, "token"),
])
def test_sendlane_refuses_missing_or_mistyped_fields_with_422(fake, sendlane, path, body, field):
    response = sendlane.post(path, json=body)
    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert fake.sendlane_tracked == {}


def test_sendlane_checks_bearer_and_integration_tokens(fake, sendlane):
    assert sendlane.post("/tracking/order-placed", json=sendlane_order(token="not-ours")).status_code == 401
    wrong_bearer = sendlane.post("/tracking/order-placed", json=sendlane_order(),
                                 headers={"Authorization": "Bearer nope"})
    assert wrong_bearer.status_code == 401 and wrong_bearer.json() == {"message": "Unauthenticated."}
    listed = sendlane.get("/integrations/custom")
    assert listed.json()["data"][0]["token"] == INTEGRATION_TOKEN
    assert fake.sendlane_orders == {}


# --- eSputnik ----------------------------------------------------------------------------------


def test_esputnik_upserts_orders_by_external_order_id(fake, esputnik):
    assert esputnik.post("/api/v1/orders", json={"orders": [esputnik_order()]}).status_code == 200
    assert esputnik.post("/api/v1/orders", json={"orders": [esputnik_order(status="DELIVERED")]}).status_code == 200
    order = fake.esputnik_orders["1234"]
    assert order.statuses == ["IN_PROGRESS", "DELIVERED"] and order.latest["status"] == "DELIVERED"
    assert esputnik.get("/api/v1/account/info").status_code == 200


@pytest.mark.parametrize("bad", [
    esputnik_order(externalCustomerId=None), esputnik_order(totalCost="29.98"), esputnik_order(status="REFUNDED"),
    esputnik_order(date="20/11/2026"), esputnik_order(currency="usd"),
    esputnik_order(items=[{"externalItemId": "1", "name": "x", "quantity": 1, "cost": 1, "url": "https://x"}]),
], ids=["no-customer", "cost-string", "unknown-status", "bad-date", "bad-currency", "item-without-image"])
def test_esputnik_refuses_invalid_orders_and_stores_none_of_the_request(fake, esputnik, bad):
    response = esputnik.post("/api/v1/orders", json={"orders": [esputnik_order(externalOrderId="ok"), bad]})
    assert response.status_code == 400
    assert response.json()["message"].startswith("orders[1]")
    assert fake.esputnik_orders == {}


def test_esputnik_caps_requests_at_1000_orders_and_checks_the_api_key(fake, esputnik):
    orders = [esputnik_order(externalOrderId=str(i)) for i in range(1001)]
    assert esputnik.post("/api/v1/orders", json={"orders": orders}).status_code == 400
    assert esputnik.post("/api/v1/orders", json={"orders": orders[:1]}, auth=("any", "wrong")).status_code == 401
    token = base64.b64encode(b"any:es_test").decode()
    raw = httpx.post(f"{fake.base_url('esputnik')}/api/v1/orders", json={"orders": orders[:1]},
                     headers={"Authorization": f"Basic {token}"})
    assert raw.status_code == 200


# --- webhook -----------------------------------------------------------------------------------


def test_webhook_accepts_a_signed_delivery_and_counts_redeliveries(fake):
    body = {"event": "placed_order", "order": {"id": "1234"}}
    assert signed_post(fake, body, "evt-1").status_code == 200
    assert signed_post(fake, body, "evt-1").status_code == 200
    assert fake.webhook_deliveries == {"evt-1": body}
    assert fake.webhook_duplicates == 1


@pytest.mark.parametrize(("secret", "age"), [("wrong-secret", 0), ("whsec_test", 3600)], ids=["bad-key", "stale"])
def test_webhook_refuses_a_bad_signature(fake, secret, age):
    response = signed_post(fake, {"event": "placed_order"}, "evt-1", secret, int(time.time()) - age)
    assert response.status_code == 401
    assert fake.webhook_deliveries == {}


def test_webhook_refuses_a_body_changed_after_signing(fake):
    raw = orjson.dumps({"total": 10})
    headers = {"X-Shoprelay-Id": "evt-9", "X-Shoprelay-Signature": sign_webhook("whsec_test", raw)}
    response = httpx.post(fake.base_url("webhook"), content=orjson.dumps({"total": 1000}), headers=headers)
    assert response.status_code == 401


# --- server ------------------------------------------------------------------------------------


def test_unknown_prefix_is_404_and_base_urls_share_one_server(fake):
    assert httpx.get(f"{fake.url}/nowhere").status_code == 404
    assert fake.base_url("sendlane") == f"{fake.url}/sendlane"
    with pytest.raises(ValueError):
        fake.base_url("mailchimp")


@pytest.mark.slow
def test_runs_as_a_standalone_process():
    process = subprocess.Popen([sys.executable, "-m", "tests.fakeplatform", "--port", "0"],
                               stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        response = httpx.get(f"{url}/klaviyo/api/accounts", headers=KLAVIYO_HEADERS, timeout=5)
        assert response.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
