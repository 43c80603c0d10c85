"""Faults on command: failures, outages, 429s, timeouts, rejections, auth failures, and the observer."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fakeplatform.tests.bodies import (
    KLAVIYO_HEADERS,
    esputnik_order,
    event_body,
    sendlane_order,
    signed_post,
)


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
