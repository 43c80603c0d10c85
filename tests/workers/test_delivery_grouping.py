"""Grouped recording, the indexed claim and slot reservations (issue 6: delivery throughput)."""

from datetime import timedelta

import orjson
import pytest
import sqlalchemy as sa

from tests.conftest import both_databases
from tests.factories import make_order
from webapp.models import DeliveryAttempt, DeliveryRequest, Event, Order, utcnow


def _events(db):
    db.session.expire_all()
    return db.session.scalars(sa.select(Event).order_by(Event.id)).all()


@both_databases
def test_mixed_outcomes_in_one_group_are_recorded_per_event(app, api, db, fake, make_destination, worker,
                                                            monkeypatch):
    from workers.delivery import outcomes

    groups = []
    record_many = outcomes.record_many
    monkeypatch.setattr(outcomes, "record_many", lambda destination, sent, *rest: groups.append(len(sent))
                        or record_many(destination, sent, *rest))
    make_destination("webhook", events=["placed_order"])
    fake.fail_next(1, status=500, platform="webhook")
    fake.reject_next(1, status=400, detail="bad order", platform="webhook")
    api.post("/api/v1/orders", json={"orders": [make_order(id=f"g{i}") for i in range(4)]})
    before = utcnow()
    worker(["delivery"])

    assert groups == [4]  # four single requests, one group: one commit
    retrying, rejected, *delivered = _events(db)
    assert (retrying.state, retrying.attempts) == ("retrying", 1) and "500" in retrying.last_error
    assert retrying.next_attempt_at > utcnow() and retrying.delivered_at is None
    assert (rejected.state, rejected.attempts) == ("rejected", 1) and "bad order" in rejected.last_error
    assert [(e.state, e.attempts, e.last_error) for e in delivered] == [("delivered", 1, None)] * 2
    assert all(e.delivered_at >= before and e.lease_until is None and e.leased_by is None for e in delivered)
    assert delivered[0].delivered_at <= delivered[1].delivered_at  # each keeps its own answer time

    requests = db.session.scalars(sa.select(DeliveryRequest).order_by(DeliveryRequest.id)).all()
    assert [(r.outcome, r.http_status) for r in requests] == [
        ("retry", 500), ("rejected", 400), ("delivered", 200), ("delivered", 200)]
    attempts = db.session.scalars(sa.select(DeliveryAttempt).order_by(DeliveryAttempt.id)).all()
    assert [(a.event_id, a.request_id, a.outcome) for a in attempts] == [
        (retrying.id, requests[0].id, "retry"), (rejected.id, requests[1].id, "rejected"),
        (delivered[0].id, requests[2].id, "delivered"), (delivered[1].id, requests[3].id, "delivered")]
    assert all('"order"' in (r.request_body or "") for r in requests)
    states = dict(db.session.execute(sa.select(Order.external_id, Order.delivery_state)).all())
    assert states == {"g0": "failing", "g1": "failing", "g2": "delivered", "g3": "delivered"}


@both_databases
def test_a_bulk_request_is_recorded_with_one_attempt_per_event(app, api, db, fake, make_destination, worker):
    app.config["BULK_THRESHOLD"] = 2
    make_destination("klaviyo", events=["placed_order", "ordered_product"])
    api.post("/api/v1/orders", json={"orders": [make_order(id=f"b{i}") for i in range(3)]})
    worker(["delivery"])
    events = _events(db)
    assert {e.state for e in events} == {"delivered"} and len(events) == 9  # placed + 2 lines each
    requests = db.session.scalars(sa.select(DeliveryRequest)).all()
    assert [r.event_count for r in requests] == [9]
    stored = orjson.loads(requests[0].request_body)  # the logged form: compact JSON of the job
    entries = stored["data"]["attributes"]["events-bulk-create"]["data"]
    assert sum(len(e["attributes"]["events"]["data"]) for e in entries) == 9 and "\n" not in requests[0].request_body
    attempts = db.session.scalars(sa.select(DeliveryAttempt)).all()
    assert sorted(a.event_id for a in attempts) == [e.id for e in events]
    assert {(a.request_id, a.outcome, a.http_status) for a in attempts} == {(requests[0].id, "delivered", 202)}
    assert len(fake.klaviyo_events_named("Ordered Product")) == 6 and fake.klaviyo_duplicates == 0


def _blocked_backlog(api, db, blocked: int) -> None:
    """`blocked` Fulfilled Orders due first, each waiting for its retrying Placed Order; one free Placed Order."""
    api.post("/api/v1/orders", json={"orders": [make_order(id=f"w{i}") for i in range(blocked)]})
    api.post("/api/v1/orders", json={"orders": [make_order(id=f"w{i}", status="fulfilled",
                                                           fulfilled_at="2026-11-21T09:00:00Z")
                                                for i in range(blocked)]})
    api.post("/api/v1/orders", json=make_order(id="free"))
    now = utcnow()
    db.session.execute(sa.update(Event).where(Event.name == "placed_order")
                       .values(state="retrying", attempts=1, next_attempt_at=now + timedelta(hours=1)))
    db.session.execute(sa.update(Event).where(Event.name == "fulfilled_order")
                       .values(next_attempt_at=now - timedelta(minutes=10)))
    free = sa.select(Order.id).where(Order.external_id == "free").scalar_subquery()
    db.session.execute(sa.update(Event).where(Event.order_id == free)
                       .values(state="pending", attempts=0, next_attempt_at=now - timedelta(minutes=1)))
    db.session.commit()


@both_databases
@pytest.mark.parametrize("blocked", [1, 6])  # fewer / more blocked rows than the claim's limit
def test_claim_skips_blocked_lifecycle_events_at_the_head(app, api, db, make_destination, blocked):
    from workers.delivery.claim import claim_due

    dest = make_destination("klaviyo", events=["placed_order", "fulfilled_order"])
    _blocked_backlog(api, db, blocked)
    claimed = claim_due(dest["id"], 2, "test-worker", 60, utcnow())
    assert [(e.name, e.unique_id) for e in claimed] == [("placed_order", "free")]
    assert claimed[0].payload["order"]["id"] == "free"
    assert {e.state for e in _events(db) if e.name == "fulfilled_order"} == {"pending"}


@both_databases
def test_expired_leases_are_claimed_again_and_live_ones_are_not(app, api, db, make_destination):
    from workers.delivery.claim import claim_due

    dest = make_destination("webhook", events=["placed_order"])
    api.post("/api/v1/orders", json={"orders": [make_order(id=f"l{i}") for i in range(3)]})
    now = utcnow()
    ids = [e.id for e in _events(db)]
    db.session.execute(sa.update(Event).where(Event.id == ids[0])
                       .values(state="in_flight", leased_by="dead", lease_until=now - timedelta(seconds=1)))
    db.session.execute(sa.update(Event).where(Event.id == ids[1])
                       .values(state="in_flight", leased_by="alive", lease_until=now + timedelta(minutes=5)))
    db.session.commit()
    claimed = claim_due(dest["id"], 10, "me", 60, now)
    assert sorted(e.id for e in claimed) == [ids[0], ids[2]]
    assert {e.leased_by for e in _events(db) if e.id in (ids[0], ids[2])} == {"me"}
    assert claim_due(dest["id"], 10, "other", 60, now) == []


def test_slot_reservations_never_exceed_the_burst(redis):
    from workers.rate_limit import Limits, RateLimiter, Slots

    limiter = RateLimiter(redis, "test:slots", Limits(burst_per_second=5, per_minute=100))
    assert limiter.try_acquire(10, hold=0.5)[0] == 5
    taken, wait = limiter.try_acquire(1, hold=0.5)
    assert taken == 0 and 0 < wait <= 1.5  # reserved slots count until a second after their hold
    other = Slots(RateLimiter(redis, "test:slots", Limits(burst_per_second=5, per_minute=100)))
    assert other.take(upcoming=3, max_wait=0.0) is False
    unlimited = Slots(RateLimiter(redis, "test:free", Limits()))
    assert all(unlimited.take(upcoming=1, max_wait=0.0) for _ in range(100))
