"""The fake Klaviyo: SMS subscriptions need an E.164 phone, consented_at only with historical_import, and
data-privacy deletion jobs forget the profile with its events and subscriptions."""

from __future__ import annotations

from tests.fakeplatform.tests.bodies import event_body

PHONE = "+16502530000"


def _subscribe(phone: str | None, *, historical: bool = False, consented_at: str | None = None) -> dict:
    marketing = {"consent": "SUBSCRIBED"} | ({"consented_at": consented_at} if consented_at else {})
    attributes = {"email": "john.smith@example.com", "subscriptions": {"sms": {"marketing": marketing}}}
    if phone is not None:
        attributes["phone_number"] = phone
    job = {"profiles": {"data": [{"type": "profile", "attributes": attributes}]}}
    if historical:
        job["historical_import"] = True
    return {"data": {"type": "profile-subscription-bulk-create-job", "attributes": job}}


def test_sms_subscription_rules(fake, klaviyo):
    assert klaviyo.post("/api/profile-subscription-bulk-create-jobs", json=_subscribe(PHONE)).status_code == 202
    typed = klaviyo.post("/api/profile-subscription-bulk-create-jobs", json=_subscribe("(650) 253-0000"))
    assert typed.status_code == 400
    assert typed.json()["errors"][0]["source"]["pointer"].endswith("/attributes/phone_number")
    assert klaviyo.post("/api/profile-subscription-bulk-create-jobs", json=_subscribe(None)).status_code == 400
    stamped = _subscribe(PHONE, consented_at="2025-03-01T09:30:00+00:00")
    assert klaviyo.post("/api/profile-subscription-bulk-create-jobs", json=stamped).status_code == 400
    historical = _subscribe(PHONE, historical=True, consented_at="2025-03-01T09:30:00+00:00")
    assert klaviyo.post("/api/profile-subscription-bulk-create-jobs", json=historical).status_code == 202
    assert [record["historical_import"] for record in fake.klaviyo_subscriptions] == [False, True]


def test_privacy_deletion_forgets_the_profile_events_and_subscriptions(fake, klaviyo):
    klaviyo.post("/api/events", json=event_body())
    klaviyo.post("/api/profile-subscription-bulk-create-jobs", json=_subscribe(PHONE))
    body = {"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": {
        "type": "profile", "attributes": {"email": "john.smith@example.com"}}}}}}
    response = klaviyo.post("/api/data-privacy-deletion-jobs", json=body)
    assert response.status_code == 202 and response.content == b""
    assert fake.klaviyo_deletions == [{"email": "john.smith@example.com"}]
    assert fake.klaviyo_events_named("Placed Order") == [] and fake.klaviyo_subscriptions == []
    wrong = {"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": {
        "type": "profile", "attributes": {"email": "a@example.com", "phone_number": PHONE}}}}}}
    assert klaviyo.post("/api/data-privacy-deletion-jobs", json=wrong).status_code == 400
    typo = {"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": {
        "type": "profile", "attributes": {"mail": "a@example.com"}}}}}}
    assert klaviyo.post("/api/data-privacy-deletion-jobs", json=typo).status_code == 400
