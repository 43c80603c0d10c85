"""Klaviyo consent per channel and privacy deletion: bodies checked with the klaviyo-api SDK models."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.factories import make_contact
from tests.workers.destinations.klaviyo_sdk import assert_request_accepted
from workers.destinations.base import OutboundEvent
from workers.destinations.klaviyo import KlaviyoAdapter

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
AT = "2025-03-01T09:30:00+00:00"
PHONE = "+16502530000"


@pytest.fixture
def adapter() -> KlaviyoAdapter:
    return KlaviyoAdapter({"api_key": "pk_test_123"})


def consent(channel: str, subscribed: bool, event_id: int, *, historical: bool = False,
            **contact) -> OutboundEvent:  # noqa: ANN003
    payload = {"contact": make_contact(phone=PHONE) | contact,
               "consent": {"channel": channel, "subscribed": subscribed, "at": AT, "source": "order"}}
    return OutboundEvent(event_id, "consent_change", f"c-{event_id}", payload, NOW, historical)


def profiles(request) -> list[dict]:  # noqa: ANN001
    return [p["attributes"] for p in request.json["data"]["attributes"]["profiles"]["data"]]


def test_email_and_sms_of_one_person_share_one_profile_entry(adapter) -> None:
    (request,) = adapter.build_requests([consent("email", True, 1), consent("sms", True, 2)]).requests
    assert request.url.endswith("/api/profile-subscription-bulk-create-jobs") and request.event_ids == [1, 2]
    assert profiles(request) == [{"email": "john.smith@example.com", "phone_number": PHONE, "subscriptions": {
        "email": {"marketing": {"consent": "SUBSCRIBED"}}, "sms": {"marketing": {"consent": "SUBSCRIBED"}}}}]
    assert_request_accepted(request)


def test_subscribe_on_one_channel_and_withdraw_on_the_other_are_two_jobs(adapter) -> None:
    subscribe, withdraw = adapter.build_requests([consent("email", True, 1), consent("sms", False, 2)]).requests
    assert subscribe.event_ids == [1] and withdraw.event_ids == [2]
    assert withdraw.url.endswith("/api/profile-subscription-bulk-delete-jobs")
    assert profiles(withdraw) == [{"phone_number": PHONE,
                                   "subscriptions": {"sms": {"marketing": {"consent": "UNSUBSCRIBED"}}}}]
    assert_request_accepted(subscribe)
    assert_request_accepted(withdraw)


def test_sms_consent_without_an_e164_phone_is_skipped(adapter) -> None:
    result = adapter.build_requests([consent("sms", True, 1, phone="555-1234"), consent("email", True, 2)])
    assert "E.164" in result.skipped[1]
    (request,) = result.requests
    assert profiles(request) == [{"email": "john.smith@example.com",
                                  "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}}}]


def test_historical_consent_carries_its_own_time_and_live_consent_none(adapter) -> None:
    live, past = adapter.build_requests([consent("sms", True, 1, email="a@example.com"),
                                         consent("sms", True, 2, historical=True)]).requests
    assert "historical_import" not in live.json["data"]["attributes"]
    assert "consented_at" not in profiles(live)[0]["subscriptions"]["sms"]["marketing"]
    assert past.json["data"]["attributes"]["historical_import"] is True
    assert profiles(past)[0]["subscriptions"]["sms"]["marketing"]["consented_at"] == AT
    assert_request_accepted(live)
    assert_request_accepted(past)


def test_the_latest_change_per_person_and_channel_wins(adapter) -> None:
    (request,) = adapter.build_requests([consent("sms", True, 1), consent("sms", False, 2)]).requests
    assert request.url.endswith("bulk-delete-jobs") and request.event_ids == [1, 2]


def test_an_erasure_is_a_privacy_deletion_job_by_email(adapter) -> None:
    erasure = {"id": "e1", "email": "gone@example.org", "phones": [PHONE], "customer_ids": ["c1"], "order_ids": []}
    event = OutboundEvent(9, "contact_erased", "erasure:e1", {"erasure": erasure}, NOW)
    (request,) = adapter.build_requests([event]).requests
    assert request.url.endswith("/api/data-privacy-deletion-jobs") and request.event_ids == [9]
    assert request.json == {"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {
        "data": {"type": "profile", "attributes": {"email": "gone@example.org"}}}}}}
    assert_request_accepted(request)
    phone_only = OutboundEvent(10, "contact_erased", "erasure:e2", {"erasure": {"id": "e2", "phones": [PHONE]}}, NOW)
    (request,) = adapter.build_requests([phone_only]).requests
    assert request.json["data"]["attributes"]["profile"]["data"]["attributes"] == {"phone_number": PHONE}
    nobody = OutboundEvent(11, "contact_erased", "erasure:e3", {"erasure": {"id": "e3"}}, NOW)
    assert adapter.build_requests([nobody]).skipped == {11: "no email or E.164 phone to name the profile to delete"}


def test_a_browser_known_only_by_kx_is_a_profile_klaviyo_accepts(adapter) -> None:
    activity = {"url": "https://shop.example/p/1", "at": NOW.isoformat()}
    event = OutboundEvent(12, "active_on_site", "b1:active", {"activity": activity, "contact": {"_kx": "abc.123"}},
                          NOW)
    (request,) = adapter.build_requests([event]).requests
    assert request.json["data"]["attributes"]["profile"]["data"]["attributes"] == {"_kx": "abc.123"}
    assert_request_accepted(request)
