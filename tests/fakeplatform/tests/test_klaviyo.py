"""The fake Klaviyo: events (single, bulk, deduped), profiles, subscriptions, catalog jobs, auth."""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from openapi_client.models.event_create_query_v2 import EventCreateQueryV2

from tests.fakeplatform.tests.bodies import (
    KLAVIYO_HEADERS,
    bulk_body,
    catalog_create_body,
    event_body,
)


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
    assert fake.klaviyo_catalog[item_id]["attributes"]["price"] == 5.0
    too_many = klaviyo.post("/api/catalog-item-bulk-create-jobs", json=catalog_create_body(101))
    assert too_many.status_code == 400


def test_klaviyo_accounts_answers_for_a_valid_key(klaviyo):
    response = klaviyo.get("/api/accounts")
    assert response.status_code == 200
    assert response.json()["data"][0]["type"] == "account"
