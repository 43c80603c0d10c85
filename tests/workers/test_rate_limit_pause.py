"""A platform's "wait" stops its whole account: every run, new event, sweep and destination on the same key,
until the time it gave; a flushed Redis cannot shorten it; without Retry-After the account backs off."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import both_databases
from tests.factories import make_order
from webapp.models import Destination, Event
from workers.delivery.engine import build_adapter, deliver_destination
from workers.delivery.pause import BACKOFF_SECONDS, Pause, pause_key
from workers.delivery.sweeper import sweep

pytestmark = both_databases


def _order(api, order_id: str) -> None:
    assert api.post("/api/v1/orders", json=make_order(id=order_id)).status_code == 202


def _destination(db, destination_id: int) -> Destination:
    db.session.expire_all()
    return db.session.get(Destination, destination_id)


def _pause(db, redis, destination_id: int) -> Pause:
    destination = _destination(db, destination_id)
    return Pause(redis, build_adapter(destination).account(), destination.id, destination.kind)


def _states(db, destination_id: int) -> dict[str, int]:
    db.session.expire_all()
    return dict(db.session.execute(sa.select(Event.state, sa.func.count()).where(
        Event.destination_id == destination_id).group_by(Event.state)).all())


def test_a_429_stops_every_run_new_event_and_destination_of_the_account(api, db, fake, make_destination, redis):
    first = make_destination("klaviyo", name="Store A", events=["placed_order"])
    second = make_destination("klaviyo", name="Store B", events=["placed_order"])  # the same Klaviyo key
    other = make_destination("sendlane", events=["placed_order"])  # another account: not paused
    fake.rate_limit_next(1, retry_after=30, platform="klaviyo")
    _order(api, "o1")
    report = deliver_destination(first["id"], redis)
    assert report.stopped == "platform rate limit (429)"
    assert report.not_before >= datetime.now(UTC) + timedelta(seconds=29)
    assert len(fake.requests_for("klaviyo")) == 1
    for number in range(2, 5):  # new orders, new runs, the other destination of the account
        _order(api, f"o{number}")
        for destination in (first, second):
            report = deliver_destination(destination["id"], redis)
            assert report.sent_requests == 0 and report.stopped == "rate limited"
    assert len(fake.requests_for("klaviyo")) == 1 and fake.early_requests() == []
    for destination in (first, second):  # the database copy, for both destinations of the account
        assert _destination(db, destination["id"]).rate_limited_until >= report.not_before - timedelta(seconds=1)
    assert _destination(db, other["id"]).rate_limited_until is None
    assert deliver_destination(other["id"], redis).counts == {"delivered": 4}


def test_the_pause_ends_at_retry_after_and_the_backlog_drains(api, db, fake, make_destination, redis):
    dest = make_destination("klaviyo", events=["placed_order"])
    fake.rate_limit_next(1, retry_after=1, platform="klaviyo")
    _order(api, "o1")
    report = deliver_destination(dest["id"], redis)
    _order(api, "o2")
    assert deliver_destination(dest["id"], redis).sent_requests == 0
    wait = (report.not_before - datetime.now(UTC)).total_seconds()
    assert 1.0 < wait < 1.7  # Retry-After plus a little jitter
    time.sleep(wait + 0.05)
    assert deliver_destination(dest["id"], redis).counts == {"delivered": 1}  # o2 (o1 waits for its retry)
    assert fake.early_requests() == []


def test_a_flushed_redis_does_not_shorten_the_pause(api, db, fake, make_destination, redis, worker):
    dest = make_destination("klaviyo", events=["placed_order"])
    fake.rate_limit_next(1, retry_after=30, platform="klaviyo")
    _order(api, "o1")
    until = deliver_destination(dest["id"], redis).not_before
    redis.flushdb()
    _order(api, "o2")
    worker(["delivery"])  # the new order's signal, and its job, see the database copy
    assert deliver_destination(dest["id"], redis).stopped == "rate limited"
    assert len(fake.requests_for("klaviyo")) == 1 and fake.early_requests() == []
    # ... and put it back into Redis, where every worker's slot reservation reads it
    restored = int(redis.hget(pause_key(_pause(db, redis, dest["id"]).account), "until"))
    assert restored >= int(until.timestamp() * 1_000_000) - 1000


def test_the_sweeper_does_not_wake_a_rate_limited_destination_early(api, db, fake, make_destination, redis,
                                                                    worker):
    dest = make_destination("klaviyo", events=["placed_order"])
    fake.rate_limit_next(1, retry_after=30, platform="klaviyo")
    _order(api, "o1")
    deliver_destination(dest["id"], redis)
    _order(api, "o2")  # due now
    redis.flushdb()  # no signal left, no pause in Redis: only the database knows
    assert sweep(redis) == {"signalled": []}
    worker(["delivery"])
    assert len(fake.requests_for("klaviyo")) == 1
    # Once the pause is over (moved into the past here), the sweeper signals the destination again.
    db.session.execute(sa.update(Destination).values(rate_limited_until=datetime.now(UTC) - timedelta(seconds=1)))
    db.session.commit()
    assert sweep(redis) == {"signalled": [dest["id"]]}
    worker(["delivery"])
    assert _states(db, dest["id"]).get("delivered") == 1


def test_a_429_without_retry_after_backs_off_exponentially_and_a_success_resets_it(api, db, fake,
                                                                                   make_destination, redis):
    dest = make_destination("klaviyo", events=["placed_order"])
    pause, rng = _pause(db, redis, dest["id"]), random.Random(7)
    waits = []
    for _ in range(12):
        started = datetime.now(UTC)
        waits.append((pause.start(None, rng) - started).total_seconds())
        redis.hset(pause.key, "until", 0)  # let the next 429 start from now (the streak stays)
    base, cap = BACKOFF_SECONDS
    assert base <= waits[0] < base * 1.3 and 2 * base <= waits[1] < 2 * base * 1.3
    assert 4 * base <= waits[2] < 4 * base * 1.3
    assert all(later >= earlier * 1.5 for earlier, later in zip(waits[:6], waits[1:7], strict=True))
    assert cap <= max(waits) <= cap * 1.3  # capped
    # Through the engine: a bare 429 pauses for the base backoff; the first success resets the streak.
    pause.reset_backoff()
    redis.delete(pause.key)
    db.session.execute(sa.update(Destination).values(rate_limited_until=None))
    db.session.commit()
    fake.rate_limit_next(1, platform="klaviyo", header=False)
    _order(api, "o1")
    report = deliver_destination(dest["id"], redis)
    assert base <= (report.not_before - datetime.now(UTC)).total_seconds() + 0.1 < base * 1.3
    assert redis.hget(pause.key, "streak") == b"1"
    redis.hset(pause.key, "until", 0)
    db.session.execute(sa.update(Destination).values(rate_limited_until=None))
    db.session.execute(sa.update(Event).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
    db.session.commit()
    assert deliver_destination(dest["id"], redis).counts == {"delivered": 1}
    assert redis.hget(pause.key, "streak") is None


@pytest.mark.parametrize(("header", "paused"), [(True, True), (False, False)])
def test_a_503_pauses_the_account_only_with_retry_after(api, db, fake, make_destination, redis, header, paused):
    dest = make_destination("klaviyo", events=["placed_order"])
    fake.rate_limit_next(1, retry_after=30, platform="klaviyo", status=503, header=header)
    _order(api, "o1")
    report = deliver_destination(dest["id"], redis)
    assert (report.not_before is not None) is paused
    assert (_destination(db, dest["id"]).rate_limited_until is not None) is paused
    _order(api, "o2")
    assert (deliver_destination(dest["id"], redis).sent_requests == 0) is paused


@pytest.mark.parametrize("limits", [{"burst_per_second": 350, "per_minute": 3500},
                                    {"burst_per_second": 0, "per_minute": 0}])
def test_a_slot_reservation_reads_the_pause_limited_or_not(db, make_destination, redis, limits):
    """Another worker's 429 reaches a running run through its next slot reservation (no extra round trip), also
    on a destination without limits; no slot is given while it lasts."""
    from workers.delivery.engine import limiters
    from workers.rate_limit import Slots

    dest = make_destination("klaviyo", events=["placed_order"], rate_limits=limits)
    destination, pause = _destination(db, dest["id"]), _pause(db, redis, dest["id"])
    single, _ = limiters(redis, destination, pause)
    assert Slots(single).take(1, 5.0)
    other = _pause(db, redis, dest["id"])  # the other worker's view
    until = other.start(30)
    slots = Slots(single)
    assert not slots.take(1, 5.0) and single.paused
    assert pause.active() == until
