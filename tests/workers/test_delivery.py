"""The delivery engine against the fake platforms over real HTTP, with a real Redis and RQ worker."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.factories import make_order
from webapp.models import DeliveryAttempt, DeliveryRequest, Destination, Event, Order, utcnow


def _events(db, **where):
    db.session.expire_all()
    query = sa.select(Event).order_by(Event.id)
    for key, value in where.items():
        query = query.where(getattr(Event, key) == value)
    return db.session.scalars(query).all()


def _make_due(db):
    db.session.execute(sa.update(Event).where(Event.state.in_(("pending", "retrying")))
                       .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()


@pytest.mark.parametrize("kind", ["klaviyo", "sendlane", "esputnik", "webhook"])
def test_happy_path_per_platform(kind, api, db, fake, make_destination, worker):
    dest = make_destination(kind)
    api.post("/api/v1/orders", json=make_order())
    worker(["delivery"])
    events = _events(db, destination_id=dest["id"])
    assert events and all(e.state in ("delivered", "skipped") for e in events), [(e.name, e.state, e.last_error)
                                                                                   for e in events]
    assert any(e.state == "delivered" for e in events)
    order = db.session.scalars(sa.select(Order)).one()
    assert order.delivery_state == "delivered"
    if kind == "klaviyo":
        assert [e.unique_id for e in fake.klaviyo_events_named("Placed Order")] == ["1234"]
        assert fake.klaviyo_revenue() == 29.98
        assert len(fake.klaviyo_events_named("Ordered Product")) == 2
    elif kind == "sendlane":
        assert "1234" in fake.sendlane_orders
    elif kind == "esputnik":
        assert fake.esputnik_orders["1234"].latest["status"] == "IN_PROGRESS"
    else:
        assert len(fake.webhook_deliveries) == len([e for e in events if e.state == "delivered"])
    secret = next(iter(_credentials(fake, kind)))
    for request in db.session.scalars(sa.select(DeliveryRequest)).all():
        assert secret not in (request.request_body or "") + (request.url or "") + (request.response_body or "")


def _credentials(fake, kind):
    return {"klaviyo": [fake.klaviyo_key], "sendlane": [fake.sendlane_token],
            "esputnik": [fake.esputnik_key], "webhook": [fake.webhook_secret]}[kind]


def test_500_then_success(api, db, fake, make_destination, worker):
    dest = make_destination("klaviyo")
    fake.fail_next(1, status=500, platform="klaviyo")
    api.post("/api/v1/orders", json=make_order())
    worker(["delivery"])
    retrying = [e for e in _events(db, destination_id=dest["id"]) if e.state == "retrying"]
    assert len(retrying) == 1
    assert retrying[0].next_attempt_at > utcnow() and "500" in retrying[0].last_error
    _make_due(db)
    api.post(f"/api/v1/destinations/{dest['id']}/resume")  # signals delivery
    worker(["delivery"])
    assert {e.state for e in _events(db, destination_id=dest["id"])} == {"delivered"}
    attempts = db.session.scalars(sa.select(DeliveryAttempt).where(
        DeliveryAttempt.event_id == retrying[0].id).order_by(DeliveryAttempt.id)).all()
    assert [a.outcome for a in attempts] == ["retry", "delivered"]
    assert attempts[0].http_status == 500 and 200 <= attempts[1].http_status < 300
    assert len(fake.klaviyo_events_named("Placed Order")) == 1


def test_timeout_is_retried(app, api, db, fake, make_destination, worker):
    app.config["DELIVERY_TIMEOUT"] = 0.5
    make_destination("webhook")
    fake.timeout_next(1, delay=1.5, platform="webhook")
    api.post("/api/v1/orders", json=make_order())
    worker(["delivery"])
    failed = [e for e in _events(db) if e.state == "retrying"]
    assert len(failed) == 1 and "timed out" in failed[0].last_error


def test_429_retry_after_is_honoured(api, db, fake, make_destination, worker):
    dest = make_destination("webhook")
    fake.rate_limit_next(1, retry_after=30, platform="webhook")
    api.post("/api/v1/orders", json=make_order())
    worker(["delivery"])
    waiting = [e for e in _events(db, destination_id=dest["id"]) if e.state != "delivered"]
    assert waiting
    assert min(e.next_attempt_at for e in waiting) >= utcnow() + timedelta(seconds=25)
    sent = len(fake.requests_for("webhook"))
    api.post(f"/api/v1/destinations/{dest['id']}/resume")
    worker(["delivery"])
    assert len(fake.requests_for("webhook")) == sent  # nothing before Retry-After


def test_400_is_rejected_without_retry(api, db, fake, make_destination, worker):
    dest = make_destination("webhook", events=["placed_order"])
    fake.reject_next(1, status=400, detail="bad order", platform="webhook")
    api.post("/api/v1/orders", json=make_order())
    worker(["delivery"])
    rejected = [e for e in _events(db, destination_id=dest["id"]) if e.state == "rejected"]
    assert len(rejected) == 1 and "bad order" in rejected[0].last_error
    sent = len(fake.requests_for("webhook"))
    _make_due(db)
    api.post(f"/api/v1/destinations/{dest['id']}/resume")
    worker(["delivery"])
    assert len(fake.requests_for("webhook")) == sent
    assert db.session.scalars(sa.select(Order)).one().delivery_state == "failing"


def test_401_pauses_the_destination_and_resume_drains(api, db, fake, make_destination, worker):
    dest = make_destination("klaviyo")
    fake.set_auth_failure("klaviyo", True)
    api.post("/api/v1/orders", json=make_order())
    worker(["delivery"])
    destination = db.session.get(Destination, dest["id"])
    db.session.refresh(destination)
    assert destination.paused_at is not None and "credentials" in destination.pause_reason
    assert len(fake.requests_for("klaviyo")) == 1  # stopped at the first refusal
    fake.set_auth_failure("klaviyo", False)
    _make_due(db)
    api.post(f"/api/v1/destinations/{dest['id']}/resume")
    worker(["delivery"])
    assert {e.state for e in _events(db, destination_id=dest["id"])} == {"delivered"}


def test_dead_letter_after_attempts_and_age(app, api, db, fake, make_destination, worker):
    app.config.update(MAX_ATTEMPTS=2, MAX_EVENT_AGE_HOURS=0.0)
    dest = make_destination("webhook", events=["placed_order"])
    fake.fail_for(60, status=503, platform="webhook")
    api.post("/api/v1/orders", json=make_order())
    for _ in range(2):
        _make_due(db)
        api.post(f"/api/v1/destinations/{dest['id']}/resume")
        worker(["delivery"])
    event = _events(db, destination_id=dest["id"])[0]
    assert event.state == "dead" and event.attempts == 2
    assert db.session.scalars(sa.select(Order)).one().delivery_state == "dead"
    # nothing is deleted: retrying a dead event works once the platform is back
    fake.faults.clear()
    assert api.post(f"/api/v1/events/{event.id}/retry").status_code == 200
    worker(["delivery"])
    assert _events(db, destination_id=dest["id"])[0].state == "delivered"


def test_circuit_breaker_pauses_a_failing_destination(app, api, db, fake, make_destination, worker):
    app.config["BREAKER_MINUTES"] = 0.0
    dest = make_destination("webhook")
    fake.fail_for(60, status=502, platform="webhook")
    api.post("/api/v1/orders", json=make_order())
    worker(["delivery"])
    destination = db.session.get(Destination, dest["id"])
    db.session.refresh(destination)
    assert destination.paused_at is not None and "failing continuously" in destination.pause_reason
    api.post("/api/v1/orders", json=make_order(id="5678"))
    assert len(_events(db, order_id=db.session.scalar(sa.select(Order.id).where(Order.external_id == "5678")))) > 0


def test_placed_is_delivered_before_fulfilled(api, db, fake, make_destination, worker):
    dest = make_destination("klaviyo", events=["placed_order", "fulfilled_order"])
    fake.fail_next(1, status=500, platform="klaviyo")
    api.post("/api/v1/orders", json=make_order())
    api.post("/api/v1/orders", json=make_order(status="fulfilled", fulfilled_at="2026-11-21T09:00:00Z"))
    worker(["delivery"])
    states = {e.name: e.state for e in _events(db, destination_id=dest["id"])}
    assert states == {"placed_order": "retrying", "fulfilled_order": "pending"}
    _make_due(db)
    api.post(f"/api/v1/destinations/{dest['id']}/resume")
    worker(["delivery"])
    metrics = [e.metric for e in fake.klaviyo_events]
    assert metrics == ["Placed Order", "Fulfilled Order"]


def test_batch_mode_waits_then_sends_in_bulk(api, db, fake, make_destination, worker, redis):
    from workers.delivery.sweeper import sweep

    dest = make_destination("klaviyo", mode="batch", batch_interval_minutes=30, events=["placed_order"])
    api.post("/api/v1/orders", json={"orders": [make_order(id=str(i)) for i in range(5)]})
    sweep(redis)
    worker(["delivery"])
    assert fake.requests_for("klaviyo") == []
    destination = db.session.get(Destination, dest["id"])
    destination.last_batch_at = utcnow() - timedelta(minutes=31)
    db.session.commit()
    assert sweep(redis)["signalled"] == [dest["id"]]
    worker(["delivery"])
    requests = fake.requests_for("klaviyo")
    assert len(requests) == 1 and requests[0].path.endswith("/event-bulk-create-jobs")
    assert len(fake.klaviyo_events_named("Placed Order")) == 5


def test_flushed_redis_loses_nothing(api, db, fake, make_destination, worker, redis):
    from workers.delivery.sweeper import sweep

    make_destination("webhook")
    api.post("/api/v1/orders", json=make_order())
    redis.flushdb()  # the signal is gone; the outbox row is not
    worker(["delivery"])
    assert fake.requests_for("webhook") == []
    sweep(redis)
    worker(["delivery"])
    assert {e.state for e in _events(db)} == {"delivered"}


def test_replay_with_and_without_new_unique_ids(api, db, fake, make_destination, worker):
    dest = make_destination("klaviyo", events=["placed_order"])
    api.post("/api/v1/orders", json=make_order())
    worker(["delivery"])
    same = api.post("/api/v1/orders/1234/replay", json={"destination_id": dest["id"]})
    assert same.status_code == 202
    worker(["delivery"])
    assert len(fake.klaviyo_events_named("Placed Order")) == 1 and fake.klaviyo_duplicates == 1
    api.post("/api/v1/orders/1234/replay", json={"destination_id": dest["id"], "new_unique_ids": True})
    worker(["delivery"])
    assert [e.unique_id for e in fake.klaviyo_events_named("Placed Order")] == ["1234", "1234:replay-1"]


def test_retry_failed_for_a_destination_counts_first(api, db, fake, make_destination, worker):
    dest = make_destination("webhook", events=["placed_order"])
    api.post("/api/v1/orders", json={"orders": [make_order(id=str(i)) for i in range(3)]})
    db.session.execute(sa.update(Event).values(state="dead", attempts=8))
    db.session.commit()
    preview = api.post(f"/api/v1/destinations/{dest['id']}/retry?dry_run=1").get_json()
    assert preview == {"would_retry": 3}
    assert {e.state for e in _events(db)} == {"dead"}
    assert api.post(f"/api/v1/destinations/{dest['id']}/retry?since=2000-01-01T00:00:00Z").get_json() == {
        "retried": 3}
    worker(["delivery"])
    assert {e.state for e in _events(db)} == {"delivered"}
    bad = api.post(f"/api/v1/destinations/{dest['id']}/retry?since=yesterday")
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["path"] == "since"
