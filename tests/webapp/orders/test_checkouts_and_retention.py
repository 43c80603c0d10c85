"""Abandoned checkouts and the retention job."""

from datetime import timedelta

import sqlalchemy as sa

from tests.factories import make_order
from webapp.models import Checkout, DeliveryAttempt, DeliveryRequest, Event, utcnow
from webapp.services.delivery.retention import prune
from webapp.services.orders.checkouts import detect_abandoned


def _checkout(api, checkout_id, email, started):
    response = api.post("/api/v1/checkouts", json={
        "id": checkout_id, "started_at": started.isoformat(), "currency": "USD", "total": 20,
        "checkout_url": "https://s.example/checkout/1", "customer": {"email": email},
        "items": [{"name": "Mug", "quantity": 2, "price": 10}]})
    assert response.status_code == 202, response.get_json()


def test_started_checkout_then_abandoned_unless_an_order_follows(api, db):
    api.post("/api/v1/destinations", json={"name": "hook", "kind": "webhook", "credentials": {
        "url": "http://127.0.0.1:9/h", "secret": "abcdefgh"}})
    long_ago = utcnow() - timedelta(hours=3)
    _checkout(api, "co-1", "left@example.com", long_ago)
    _checkout(api, "co-2", "bought@example.com", long_ago)
    _checkout(api, "co-3", "fresh@example.com", utcnow())
    api.post("/api/v1/orders", json=make_order(id="o-9", customer={"email": "bought@example.com"},
                                               placed_at=(long_ago + timedelta(minutes=5)).isoformat()))
    assert detect_abandoned() == 1
    names = [(e.name, e.unique_id) for e in db.session.scalars(sa.select(Event).where(
        Event.name.in_(("started_checkout", "abandoned_checkout"))).order_by(Event.id))]
    assert names == [("started_checkout", "co-1"), ("started_checkout", "co-2"), ("started_checkout", "co-3"),
                     ("abandoned_checkout", "co-1")]
    checkouts = {c.external_id: c for c in db.session.scalars(sa.select(Checkout))}
    assert checkouts["co-2"].completed_order_id == "o-9" and checkouts["co-3"].abandoned_at is None
    assert detect_abandoned() == 0  # once only


def test_retention_prunes_only_old_delivered_traffic(api, db):
    api.post("/api/v1/destinations", json={"name": "hook", "kind": "webhook", "credentials": {
        "url": "http://127.0.0.1:9/h", "secret": "abcdefgh"}})
    api.post("/api/v1/orders", json=make_order())
    event = db.session.scalars(sa.select(Event)).first()
    old, older = utcnow() - timedelta(days=40), utcnow() - timedelta(days=200)
    rows = []
    for when, outcome in ((old, "delivered"), (older, "delivered"), (older, "rejected"), (utcnow(), "delivered")):
        request = DeliveryRequest(destination_id=event.destination_id, started_at=when, url="u", outcome=outcome,
                                  request_body="{}", response_body="ok")
        db.session.add(request)
        db.session.flush()
        db.session.add(DeliveryAttempt(event_id=event.id, destination_id=event.destination_id,
                                       request_id=request.id, attempted_at=when, outcome=outcome))
        rows.append(request.id)
    db.session.commit()
    result = prune()
    # The event is still pending: its history stays whole (only delivered bodies past 30 days go).
    assert result["bodies_pruned"] == 2 and result["attempts_deleted"] == 0 and result["requests_deleted"] == 0
    left = {r.id: r for r in db.session.scalars(sa.select(DeliveryRequest))}
    assert left[rows[0]].request_body is None and left[rows[1]].request_body is None
    assert left[rows[2]].request_body == "{}"
    assert left[rows[3]].request_body == "{}"
