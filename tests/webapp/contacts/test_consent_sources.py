"""Consent from checkouts and from outside orders (onsite identify calls `record_consent`): stored per channel
with its source, one event per changed channel, nothing for what was not said."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import both_databases
from tests.factories import make_order
from webapp.models import Contact, Event
from webapp.services.orders.consent import record_consent

pytestmark = both_databases


def _webhook(api) -> None:  # noqa: ANN001
    api.post("/api/v1/destinations", json={"name": "Hooks", "kind": "webhook",
                                           "credentials": {"url": "http://127.0.0.1:9/hook", "secret": "s3cret"}})


def _consent_events(db) -> list[dict]:  # noqa: ANN001
    db.session.expire_all()
    return [e.payload["consent"] for e in db.session.scalars(
        sa.select(Event).where(Event.name == "consent_change").order_by(Event.id))]


def test_a_checkout_carries_consent(api, db) -> None:
    _webhook(api)
    order = make_order()
    checkout = {"id": "co-1", "started_at": "2026-11-20T10:00:00Z", "currency": "USD", "total": 29.98,
                "customer": order["customer"] | {"phone": "+16502530000", "accepts_sms_marketing": True},
                "items": order["items"]}
    assert api.post("/api/v1/checkouts", json=checkout).status_code == 202
    assert [(c["channel"], c["subscribed"], c["source"]) for c in _consent_events(db)] == [
        ("email", True, "checkout"), ("sms", True, "checkout")]
    contact = db.session.scalars(sa.select(Contact)).one()
    assert (contact.email_consent_source, contact.sms_consent_source) == ("checkout", "checkout")


def test_record_consent_for_onsite_identify(api, db) -> None:
    _webhook(api)
    assert record_consent(email=" Visitor@Example.com ", phone="+16502530000", accepts_sms_marketing=True,
                          source="onsite") == ["consent_change"]
    assert record_consent(email="visitor@example.com", phone="+16502530000", accepts_sms_marketing=True) == []
    assert record_consent(email="visitor@example.com", accepts_marketing=False) == []  # a first "no": nothing
    assert record_consent(email="visitor@example.com", phone="555", accepts_sms_marketing=False) == []
    contact = db.session.scalars(sa.select(Contact)).one()
    assert contact.email == "visitor@example.com" and contact.accepts_marketing is False
    assert (contact.accepts_sms_marketing, contact.sms_consent_source) == (True, "onsite")
    assert [(c["channel"], c["subscribed"]) for c in _consent_events(db)] == [("sms", True)]
    body = api.get("/api/v1/contacts/visitor@example.com").get_json()
    assert body["accepts_sms_marketing"] is True
    assert [(c["channel"], c["subscribed"], c["source"]) for c in body["consent"]] == [
        ("email", False, "onsite"), ("sms", True, "onsite")]
