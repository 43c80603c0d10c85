"""Recording off the sending thread, claiming ahead, the set-based roll-up and throttled health writes."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import both_databases
from tests.factories import make_order
from webapp.models import DeliveryAttempt, DeliveryRequest, Destination, Event, Order, utcnow
from workers.delivery.http_client import SendResult
from workers.destinations.base import Classification, Outcome, PreparedRequest


def _events(db) -> list[Event]:
    db.session.expire_all()
    return db.session.scalars(sa.select(Event).order_by(Event.id)).all()


def _claimed(api, make_destination, orders: int) -> tuple[int, list]:
    from workers.delivery.claim import claim_due

    dest = make_destination("webhook", events=["placed_order"])
    api.post("/api/v1/orders", json={"orders": [make_order(id=f"r{i}") for i in range(orders)]})
    return dest["id"], claim_due(dest["id"], 100, "test-worker", 300, utcnow())


def _group(events, outcome: Outcome = Outcome.DELIVERED, health: dict | None = None):
    from workers.delivery.outcomes import Sent
    from workers.delivery.recorder import Group

    sent = [Sent(PreparedRequest("POST", "http://platform/e", [event.id], json={"id": event.id}),
                 SendResult(202 if outcome is Outcome.DELIVERED else 500, b"{}", {}, 3),
                 Classification(outcome, "" if outcome is Outcome.DELIVERED else "HTTP 500"), utcnow())
            for event in events]
    return Group(sent, {event.id: event for event in events}, health or {})


def _recorder(app, destination_id: int):
    from workers.delivery.policy import RetryPolicy
    from workers.delivery.recorder import make_recorder

    return make_recorder(app, destination_id, ["secret"], RetryPolicy())


@both_databases
def test_recorder_records_every_group_before_close_returns(app, api, db, make_destination):
    destination_id, events = _claimed(api, make_destination, 6)
    recorder = _recorder(app, destination_id)
    expected = "ThreadRecorder" if db.engine.dialect.name == "postgresql" else "Recorder"
    assert type(recorder).__name__ == expected
    at = utcnow()
    recorder.submit(_group(events[:2]))
    recorder.submit(_group(events[2:4], Outcome.RETRY))
    recorder.submit(_group(events[4:], health={"last_success_at": at}))
    recorder.close()
    recorder.flush()

    assert [e.state for e in _events(db)] == ["delivered"] * 2 + ["retrying"] * 2 + ["delivered"] * 2
    assert recorder.counts == {"delivered": 4, "retry": 2} and recorder.requests == 6
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryAttempt)) == 6
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryRequest)) == 6
    assert db.session.get(Destination, destination_id).last_success_at == at


@both_databases
def test_a_failed_group_is_raised_left_in_flight_and_later_groups_are_still_recorded(
        app, api, db, make_destination, monkeypatch):
    from workers.delivery import outcomes
    from workers.delivery.claim import claim_due

    destination_id, events = _claimed(api, make_destination, 4)
    record_many, calls = outcomes.record_many, []

    def failing_once(*args):  # noqa: ANN002, ANN202
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return record_many(*args)

    monkeypatch.setattr(outcomes, "record_many", failing_once)
    recorder = _recorder(app, destination_id)
    first, second = _group(events[:2]), _group(events[2:])
    try:
        recorder.submit(first)
        recorder.flush()
    except RuntimeError:
        pass  # inline (SQLite): the error comes straight from submit
    else:
        pytest.fail("the recording error was not raised")
    if db.engine.dialect.name == "postgresql":
        assert calls[0].startswith("deliver-record")  # recorded off the caller's thread
        with pytest.raises(RuntimeError):  # the sender stops at its next group
            recorder.submit(second)
        recorder._queue.put(second)  # a group queued before the error was seen
    else:
        recorder.submit(second)
    recorder.close()

    states = [e.state for e in _events(db)]
    assert states == ["in_flight", "in_flight", "delivered", "delivered"]
    # Nothing is lost: once the lease runs out, the unrecorded events are claimed (and sent) again.
    later = utcnow() + timedelta(seconds=301)
    assert sorted(e.id for e in claim_due(destination_id, 10, "other", 300, later)) == [e.id for e in events[:2]]


@both_databases
def test_a_run_that_fails_midway_records_the_answers_in_hand(app, api, db, fake, make_destination, monkeypatch):
    from workers.delivery import engine

    dest = make_destination("webhook", events=["placed_order"])
    api.post("/api/v1/orders", json={"orders": [make_order(id=f"f{i}") for i in range(5)]})
    real_send, sent = engine.send, []

    def send_then_crash(client, request):  # noqa: ANN001, ANN202
        if len(sent) == 3:
            raise RuntimeError("worker crashed")
        sent.append(request.event_ids[0])
        return real_send(client, request)

    monkeypatch.setattr(engine, "send", send_then_crash)
    with pytest.raises(RuntimeError, match="worker crashed"):
        engine.deliver_destination(dest["id"])

    by_id = {e.id: e for e in _events(db)}
    assert sorted(i for i, e in by_id.items() if e.state == "delivered") == sorted(sent)
    assert {e.state for i, e in by_id.items() if i not in sent} == {"in_flight"}  # the lease brings them back
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryAttempt)) == 3


def test_last_success_is_written_at_most_once_a_second_and_other_changes_at_once(monkeypatch):
    from workers.delivery import health
    from workers.delivery.health import Health, HealthLog

    clock = [100.0]
    monkeypatch.setattr(health.time, "monotonic", lambda: clock[0])
    t0 = utcnow()
    log = HealthLog(Health())
    log.current.last_success_at = t0
    assert log.due(final=False) == {"last_success_at": t0}
    clock[0] += 0.5
    log.current.last_success_at = t0 + timedelta(seconds=0.5)
    assert log.due(final=False) == {}  # held back ...
    log.current.failing_since = t0 + timedelta(seconds=0.6)
    assert log.due(final=False) == {   # ... until something else changes
        "failing_since": t0 + timedelta(seconds=0.6), "last_success_at": t0 + timedelta(seconds=0.5)}
    log.current.last_success_at, log.current.failing_since = t0 + timedelta(seconds=0.7), None
    clock[0] += 0.1
    assert log.due(final=False) == {"failing_since": None, "last_success_at": t0 + timedelta(seconds=0.7)}
    log.current.last_success_at = t0 + timedelta(seconds=0.8)
    assert log.due(final=False) == {}
    assert log.due(final=True) == {"last_success_at": t0 + timedelta(seconds=0.8)}


@both_databases
def test_a_pause_written_by_a_run_keeps_an_earlier_pause_time(app, db, make_destination):
    from workers.delivery.health import write_health

    dest = make_destination("webhook")
    earlier, later = utcnow() - timedelta(hours=1), utcnow()
    write_health(dest["id"], {"paused_at": earlier, "pause_reason": "by a person"})
    write_health(dest["id"], {"paused_at": later, "pause_reason": "the platform refused the credentials"})
    db.session.commit()
    db.session.expire_all()
    row = db.session.get(Destination, dest["id"])
    assert (row.paused_at, row.pause_reason) == (earlier, "the platform refused the credentials")


@both_databases
def test_set_based_rollup_matches_the_python_rule(app, api, db, make_destination):
    from webapp.services.orders.rollup import refresh_delivery_state, rollup

    make_destination("webhook", events=["placed_order"])
    make_destination("sendlane", events=["placed_order"])
    combos = [(), ("delivered",), ("delivered", "skipped"), ("delivered", "pending"), ("in_flight", "delivered"),
              ("rejected", "delivered"), ("retrying", "pending"), ("dead", "rejected"), ("skipped", "skipped")]
    api.post("/api/v1/orders", json={"orders": [make_order(id=f"s{i}") for i in range(len(combos))]})
    orders = {o.external_id: o.id for o in db.session.scalars(sa.select(Order))}
    for number, states in enumerate(combos):
        order_id = orders[f"s{number}"]
        events = db.session.scalars(sa.select(Event).where(Event.order_id == order_id).order_by(Event.id)).all()
        for event, state in zip(events, states, strict=False):
            event.state = state
        if not states:
            db.session.execute(sa.delete(Event).where(Event.order_id == order_id))
    db.session.execute(sa.update(Order).values(delivery_state="stale"))
    db.session.commit()

    refresh_delivery_state(orders.values())
    db.session.commit()
    db.session.expire_all()
    for order in db.session.scalars(sa.select(Order)):
        states = db.session.scalars(sa.select(Event.state).where(Event.order_id == order.id)).all()
        assert order.delivery_state == rollup(states), (order.external_id, states)


@both_databases
def test_lookahead_runs_in_its_own_session_or_only_when_asked(app, db):
    from webapp.extensions import db as extension_db
    from workers.delivery.lookahead import make_lookahead

    lookahead, ran = make_lookahead(app), []
    deferred = lookahead.ahead(lambda: ran.append(1) or id(extension_db.session()))
    threaded = db.engine.dialect.name == "postgresql"
    assert deferred.started is threaded
    assert (deferred.result() != id(extension_db.session())) is threaded
    never = lookahead.ahead(lambda: ran.append(2))
    lookahead.close()
    assert ran == ([1, 2] if threaded else [1]) and never.started is threaded


@both_databases
def test_claims_ahead_never_overlap_so_a_small_backlog_stays_one_request(app, api, db, fake, make_destination,
                                                                        monkeypatch):
    import time

    from workers.delivery import claim, engine

    app.config["BULK_THRESHOLD"] = 2
    dest = make_destination("klaviyo", events=["placed_order", "ordered_product"])
    api.post("/api/v1/orders", json={"orders": [make_order(id=f"c{i}") for i in range(3)]})
    real_claim, busy, overlaps = claim.claim_due, [], []

    def slow_claim(*args, **options):  # noqa: ANN002, ANN003, ANN202
        overlaps.append(len(busy))
        busy.append(1)
        try:
            time.sleep(0.05)  # wide enough for a second look-ahead thread to come in
            return real_claim(*args, **options)
        finally:
            busy.pop()

    monkeypatch.setattr(claim, "claim_due", slow_claim)
    report = engine.deliver_destination(dest["id"])

    assert set(overlaps) == {0} and len(overlaps) >= 2
    assert report.counts == {"delivered": 9} and report.sent_requests == 1
    assert [r.event_count for r in db.session.scalars(sa.select(DeliveryRequest))] == [9]


@both_databases
def test_request_and_attempt_rows_keep_awkward_text_and_missing_values(app, api, db, make_destination):
    """Rows go to PostgreSQL as binary arrays: text with quotes, backslashes, braces, commas, newlines and
    non-ASCII must come back unchanged, and columns that are all NULL (no status, no error) must work."""
    from workers.delivery import outcomes
    from workers.delivery.policy import RetryPolicy

    destination_id, events = _claimed(api, make_destination, 6)
    awkward = 'he said "no" \\ {a,b} NULL\n\tÜmlaut ✓ 🚀'
    sent = []
    for index, event in enumerate(events):
        failed = index % 2 == 0  # half of them a network error: no status, an error text
        result = (SendResult(None, b"", {}, 5, error=f"network error: {awkward}") if failed
                  else SendResult(202, awkward.encode(), {}, 4))
        classification = Classification(Outcome.RETRY if failed else Outcome.DELIVERED, awkward if failed else "")
        sent.append(outcomes.Sent(PreparedRequest("POST", "http://platform/e", [event.id], json={"note": awkward}),
                                  result, classification, utcnow()))
    outcomes.record_many(destination_id, sent, {event.id: event for event in events}, ["secret"], RetryPolicy())
    requests = db.session.scalars(sa.select(DeliveryRequest).order_by(DeliveryRequest.id)).all()
    attempts = db.session.scalars(sa.select(DeliveryAttempt).order_by(DeliveryAttempt.id)).all()
    assert [r.http_status for r in requests] == [None, 202] * 3
    assert [r.error for r in requests] == [f"network error: {awkward}", None] * 3
    assert all(r.request_body == f'{{"note":{json.dumps(awkward, ensure_ascii=False)}}}' for r in requests)
    assert [r.response_body for r in requests] == ["", awkward] * 3
    assert [(a.event_id, a.request_id) for a in attempts] == [(e.id, r.id) for e, r in zip(events, requests, strict=True)]
    assert [a.message for a in attempts] == [awkward, None] * 3
    assert [a.http_status for a in attempts] == [None, 202] * 3

    only_successes = [outcomes.Sent(PreparedRequest("POST", "http://platform/e", [event.id], json={}),
                                    SendResult(202, b"", {}, 1), Classification(Outcome.DELIVERED, ""), utcnow())
                      for event in events]
    outcomes.record_many(destination_id, only_successes, {e.id: e for e in events}, [], RetryPolicy())
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryRequest)
                             .where(DeliveryRequest.error.is_(None))) == 9


def test_the_retry_base_comes_from_the_settings(app) -> None:  # noqa: ANN001
    """SHOPRELAY_RETRY_BASE_SECONDS sets the first wait; it doubles from there (±20 % jitter)."""
    import random

    from workers.delivery.policy import RetryPolicy

    app.config["RETRY_BASE_SECONDS"] = 1.0
    policy = RetryPolicy.from_config()
    assert policy.base_seconds == 1.0
    assert 0.8 <= policy.backoff(1, rng=random.Random(1)) <= 1.2
    assert 1.6 <= policy.backoff(2, rng=random.Random(1)) <= 2.4
