"""Consent per channel from orders to the platforms, through the outbox and a real worker; the fake Klaviyo
validates every body with the klaviyo-api SDK models."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.conftest import both_databases
from tests.factories import make_order
from webapp.models import Contact, Event

PHONE = "+16502530000"


def _order(order_id: str = "s-1", phone: str = PHONE, email_yes: bool | None = True,
           sms_yes: bool | None = True, **overrides) -> dict:  # noqa: ANN003
    order = make_order(id=order_id, **overrides)
    order["customer"].update(phone=phone, accepts_marketing=email_yes, accepts_sms_marketing=sms_yes)
    for address in (order["billing_address"], order["shipping_address"]):
        address["phone"] = None
    return order


def _deliver(worker) -> None:  # noqa: ANN001
    worker(["delivery"])


@both_databases
@pytest.mark.parametrize("typed", [PHONE, "(650) 253-0000", "650.253.0000"])
def test_sms_consent_from_a_us_order_is_one_e164_profile_with_email_and_sms(typed, api, db, fake, make_destination,
                                                                             worker) -> None:
    make_destination("klaviyo")
    response = api.post("/api/v1/orders", json=_order(phone=typed))
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["results"][0]["events"].count("consent_change") == 2
    _deliver(worker)
    (record,) = fake.klaviyo_subscriptions
    assert record["action"] == "subscribe" and not record["historical_import"]
    profile = record["profile"]
    assert profile["email"] == "john.smith@example.com" and profile["phone_number"] == PHONE
    assert profile["subscriptions"] == {"email": {"marketing": {"consent": "SUBSCRIBED"}},
                                        "sms": {"marketing": {"consent": "SUBSCRIBED"}}}
    contact = db.session.scalars(sa.select(Contact)).one()
    assert (contact.accepts_marketing, contact.accepts_sms_marketing) == (True, True)
    assert (contact.email_consent_source, contact.sms_consent_source) == ("order", "order")
    states = db.session.scalars(sa.select(Event.state).where(Event.name == "consent_change")).all()
    assert states == ["delivered", "delivered"]


@both_databases
def test_an_invalid_phone_gets_a_warning_and_an_email_only_subscription(api, db, fake, make_destination,
                                                                         worker) -> None:
    make_destination("klaviyo")
    response = api.post("/api/v1/orders", json=_order(phone="12345"))
    result = response.get_json()["results"][0]
    assert any(w["path"] == "customer.phone" for w in result.get("warnings") or [])
    assert result["events"].count("consent_change") == 1
    _deliver(worker)
    (record,) = fake.klaviyo_subscriptions
    assert record["profile"] == {"email": "john.smith@example.com",
                                 "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}}}
    assert db.session.scalars(sa.select(Contact)).one().accepts_sms_marketing is None


@both_databases
def test_absent_consent_touches_nothing_and_a_withdrawal_unsubscribes(api, db, fake, make_destination,
                                                                      worker) -> None:
    make_destination("klaviyo")
    api.post("/api/v1/orders", json=_order(email_yes=None, sms_yes=None))
    _deliver(worker)
    assert fake.klaviyo_subscriptions == []
    api.post("/api/v1/orders", json=_order("s-2", email_yes=True, sms_yes=True))
    _deliver(worker)
    api.post("/api/v1/orders", json=_order("s-3", email_yes=None, sms_yes=False))
    _deliver(worker)
    subscribe, unsubscribe = fake.klaviyo_subscriptions
    assert subscribe["action"] == "subscribe"
    assert unsubscribe["action"] == "unsubscribe"
    assert unsubscribe["profile"] == {"phone_number": PHONE,
                                      "subscriptions": {"sms": {"marketing": {"consent": "UNSUBSCRIBED"}}}}
    contact = db.session.scalars(sa.select(Contact)).one()
    assert (contact.accepts_marketing, contact.accepts_sms_marketing) == (True, False)


@both_databases
def test_an_import_sends_historical_import_with_the_consent_time(api, db, fake, make_destination, worker) -> None:
    make_destination("klaviyo")
    response = api.post("/api/v1/orders?historical=1", json=_order(placed_at="2025-03-01T09:30:00Z"))
    assert response.status_code == 202
    _deliver(worker)
    (record,) = fake.klaviyo_subscriptions
    assert record["historical_import"] is True
    channels = record["profile"]["subscriptions"]
    assert {channel: value["marketing"]["consented_at"][:19] for channel, value in channels.items()} == {
        "email": "2025-03-01T09:30:00", "sms": "2025-03-01T09:30:00"}
    contact = db.session.scalars(sa.select(Contact)).one()
    assert contact.sms_consent_source == "import"


def test_sendlane_hears_both_channels_as_customer_added_consent(api, fake, make_destination, worker) -> None:
    make_destination("sendlane")
    api.post("/api/v1/orders", json=_order())
    _deliver(worker)
    added = fake.sendlane_tracked["customer-added"]
    assert {key: body[key] for body in added for key in ("email_consent", "sms_consent") if key in body} == {
        "email_consent": True, "sms_consent": True}


def test_esputnik_gets_contact_channels_and_the_unsubscribed_list(api, fake, make_destination, worker) -> None:
    make_destination("esputnik")
    api.post("/api/v1/orders", json=_order())
    _deliver(worker)
    assert set(fake.esputnik_contacts) == {"email:john.smith@example.com", f"sms:{PHONE}"}
    assert fake.esputnik_contacts[f"sms:{PHONE}"]["externalCustomerId"] == "c-77"
    api.post("/api/v1/orders", json=_order("s-2", email_yes=False, sms_yes=None))
    _deliver(worker)
    assert fake.esputnik_unsubscribed == ["john.smith@example.com"]
