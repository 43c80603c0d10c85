"""Replay by window against the fake platform: counted first (nothing queued), then every event of the window
sent once more, with the same unique ids (the platform de-duplicates) or new ones, filtered by name and state,
each order's events in their order, thousands of events in chunks of their own transactions; the API's 422s name the
field; the CLI and the destination page count first and ask to confirm. The replay's record is a database row:
a flushed Redis or a dead runner delays a replay (the recovery resumes it from its cursor), never loses it or
queues an event twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa

from tests.conftest import both_databases, csrf_token
from tests.factories import make_order
from tests.fakeplatform import FakePlatform
from webapp.models import Event, Order, Replay, utcnow
from webapp.schemas import responses as out
from webapp.services.delivery import replays

pytestmark = both_databases
ORDER_EVENTS = ["placed_order", "ordered_product", "fulfilled_order"]
HTMX = {"HX-Request": "true"}


@pytest.fixture()
def fake() -> Iterator[FakePlatform]:
    from workers.delivery.http_client import close_all

    with FakePlatform() as platform:
        yield platform
        close_all()
        assert not platform.internal_errors, platform.internal_errors


def _klaviyo(api, fake, events=ORDER_EVENTS) -> int:  # noqa: ANN001
    response = api.post("/api/v1/destinations", json={
        "name": "Klaviyo", "kind": "klaviyo", "credentials": {"api_key": fake.klaviyo_key},
        "base_url": fake.base_url("klaviyo"), "events": events})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _window(**extra) -> dict:  # noqa: ANN003
    now = datetime.now(UTC)
    return {"since": (now - timedelta(hours=1)).isoformat(), "until": (now + timedelta(hours=1)).isoformat(),
            **extra}


def _states(db) -> list[tuple[str, str, str]]:  # noqa: ANN001
    db.session.expire_all()
    return db.session.execute(sa.select(Event.name, Event.unique_id, Event.state).order_by(Event.id)).all()


def _two_orders_delivered(api, fake, worker) -> int:  # noqa: ANN001
    """Order 1234 placed and fulfilled, order 5678 placed: 7 events (2 placed, 4 ordered product, 1 fulfilled)."""
    destination = _klaviyo(api, fake)
    api.post("/api/v1/orders", json={"orders": [make_order(), make_order(id="5678")]})
    worker(["delivery"])
    api.post("/api/v1/orders", json=make_order(status="fulfilled", fulfilled_at="2026-11-21T09:00:00Z"))
    worker(["delivery"])
    return destination


def test_a_dry_run_counts_without_queuing(api, db, fake, worker) -> None:  # noqa: ANN001
    destination = _two_orders_delivered(api, fake, worker)
    before, requests = _states(db), len(fake.requests)
    assert {state for _, _, state in before} == {"delivered"} and len(before) == 7
    response = api.post(f"/api/v1/destinations/{destination}/replay", json=_window(dry_run=True))
    assert response.status_code == 200, response.get_json()
    body = out.ReplayCount.model_validate(response.get_json())
    assert (body.dry_run, body.count, body.not_replayable) == (True, 7, 0)
    assert body.by_event == {"placed_order": 2, "ordered_product": 4, "fulfilled_order": 1}
    assert body.by_state == {"delivered": 7}
    assert [(e.event, e.state, e.count) for e in body.breakdown] == [
        ("placed_order", "delivered", 2), ("ordered_product", "delivered", 4), ("fulfilled_order", "delivered", 1)]
    assert body.states == ["delivered", "rejected", "dead"] and body.new_ids is False
    worker()
    assert _states(db) == before and len(fake.requests) == requests


def test_a_replay_sends_each_event_once_more_with_the_same_unique_ids(api, db, fake, worker) -> None:  # noqa: ANN001
    destination = _two_orders_delivered(api, fake, worker)
    kept, requests = fake.delivered_by_unique_id(), len(fake.requests)
    response = api.post(f"/api/v1/destinations/{destination}/replay", json=_window())
    assert response.status_code == 202, response.get_json()
    record = out.ReplayOut.model_validate(response.get_json())
    assert (record.status, record.total, record.done, record.chunks, record.job_id) == ("succeeded", 7, 7, 1, None)
    assert {state for _, _, state in _states(db)} == {"retrying"}  # due again, attempts kept
    worker(["delivery"])
    assert {state for _, _, state in _states(db)} == {"delivered"}
    assert len(_states(db)) == 7  # no new rows: the same events went out again
    assert len(fake.requests) - requests == 7
    assert fake.delivered_by_unique_id() == kept  # Klaviyo kept each once ...
    assert fake.klaviyo_duplicates == 7  # ... and recognised each re-send by its unique id
    fetched = api.get(f"/api/v1/replays/{record.id}")
    assert fetched.status_code == 200 and fetched.get_json()["status"] == "succeeded"
    assert api.get("/api/v1/replays/nothing-here").status_code == 404


def test_new_ids_make_new_rows_the_platform_counts_again(api, db, fake, worker) -> None:  # noqa: ANN001
    destination = _two_orders_delivered(api, fake, worker)
    response = api.post(f"/api/v1/destinations/{destination}/replay",
                        json=_window(new_ids=True, events=["placed_order", "fulfilled_order"]))
    assert response.status_code == 202, response.get_json()
    record = response.get_json()
    assert (record["total"], record["done"]) == (3, 3)
    worker(["delivery"])
    rows = _states(db)
    assert len(rows) == 10 and {state for _, _, state in rows} == {"delivered"}
    suffix = f":replay-{record['id']}"
    assert sorted((name, uid) for name, uid, _ in rows if uid.endswith(suffix)) == [
        ("fulfilled_order", f"1234{suffix}"), ("placed_order", f"1234{suffix}"), ("placed_order", f"5678{suffix}")]
    placed = sorted(e.unique_id for e in fake.klaviyo_events_named("Placed Order"))
    assert placed == ["1234", f"1234{suffix}", "5678", f"5678{suffix}"]
    assert fake.klaviyo_duplicates == 0
    # The same window again, same ids: the originals and the first replay's rows, each re-sent once.
    again = api.post(f"/api/v1/destinations/{destination}/replay",
                     json=_window(dry_run=True, events=["placed_order", "fulfilled_order"])).get_json()
    assert again["count"] == 6


def test_filters_by_event_name_and_state(api, db, fake, worker) -> None:  # noqa: ANN001
    destination = _two_orders_delivered(api, fake, worker)
    db.session.execute(sa.update(Event).where(Event.name == "ordered_product", Event.unique_id.like("1234:%"))
                       .values(state="dead", last_error="HTTP 500"))
    db.session.execute(sa.update(Event).where(Event.name == "placed_order", Event.unique_id == "5678")
                       .values(state="rejected", last_error="HTTP 400"))
    db.session.commit()
    url = f"/api/v1/destinations/{destination}/replay"

    def count(**filters) -> dict:  # noqa: ANN003
        response = api.post(url, json=_window(dry_run=True, **filters))
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    assert count(events=["placed_order"])["by_state"] == {"delivered": 1, "rejected": 1}
    assert count(states=["dead"])["by_event"] == {"ordered_product": 2}
    assert count(states=["failed"])["by_state"] == {"rejected": 1, "dead": 2}
    assert count(states=["skipped"])["count"] == 0
    assert count(events=["ordered_product", "fulfilled_order"], states=["delivered"])["count"] == 3
    requests = len(fake.requests)
    record = api.post(url, json=_window(states=["dead"])).get_json()
    assert record["done"] == 2
    worker(["delivery"])
    assert len(fake.requests) - requests == 2
    sent = [orjson.loads(r.body)["data"]["attributes"]["unique_id"] for r in fake.requests[requests:]]
    assert sorted(sent) == ["1234:TALEOFTWO", "1234:WINNIEPOOH"]
    rows = {(name, uid): state for name, uid, state in _states(db)}
    assert rows["placed_order", "5678"] == "rejected"  # outside the filter: untouched


@pytest.mark.parametrize("new_ids", [False, True], ids=["same-ids", "new-ids"])
def test_each_orders_events_keep_their_order(api, db, fake, worker, monkeypatch, new_ids) -> None:  # noqa: ANN001
    """One event per chunk, queued by a worker: an order's fulfilled event (a later sequence) may be queued
    while its placed event still waits, and must still reach the platform after it."""
    destination = _klaviyo(api, fake, events=["placed_order", "fulfilled_order"])
    ids = [f"o{n}" for n in range(6)]
    api.post("/api/v1/orders", json={"orders": [make_order(id=order_id) for order_id in ids]})
    worker(["delivery"])
    api.post("/api/v1/orders", json={"orders": [make_order(id=order_id, status="fulfilled",
                                                           fulfilled_at="2026-11-21T09:00:00Z")
                                                for order_id in ids]})
    worker(["delivery"])
    monkeypatch.setattr(replays, "CHUNK", 1)
    monkeypatch.setattr(replays, "INLINE_LIMIT", 0)
    requests = len(fake.requests)
    record = api.post(f"/api/v1/destinations/{destination}/replay", json=_window(new_ids=new_ids)).get_json()
    assert record["status"] == "queued" and record["job_id"]
    worker(["default"])
    record = api.get(f"/api/v1/replays/{record['id']}").get_json()
    assert (record["status"], record["done"], record["chunks"]) == ("succeeded", 12, 12)
    worker(["delivery"])
    sent = [(r.json["data"]["attributes"]["metric"]["data"]["attributes"]["name"],
             r.json["data"]["attributes"]["unique_id"]) for r in fake.requests[requests:]]
    assert len(sent) == 12
    for order_id in ids:
        unique = f"{order_id}:replay-{record['id']}" if new_ids else order_id
        assert sent.index(("Placed Order", unique)) < sent.index(("Fulfilled Order", unique)), sent
    assert {state for _, _, state in _states(db)} == {"delivered"}


def test_a_worker_stopping_mid_replay_hands_the_rest_to_a_new_job(api, db, fake, worker, monkeypatch) -> None:  # noqa: ANN001
    from workers import shutdown
    from workers.jobs.replays import replay_window_job

    destination = _two_orders_delivered(api, fake, worker)
    monkeypatch.setattr(replays, "CHUNK", 2)
    monkeypatch.setattr(replays, "INLINE_LIMIT", 0)
    record = api.post(f"/api/v1/destinations/{destination}/replay", json=_window()).get_json()
    first_job = record["job_id"]
    answers = iter([False, True])  # asked before each chunk: the stop arrives during the first
    monkeypatch.setattr(shutdown, "requested", lambda: next(answers, False))
    assert replay_window_job(record["id"])["status"] == "queued"
    handed = api.get(f"/api/v1/replays/{record['id']}").get_json()
    assert (handed["status"], handed["done"], handed["chunks"]) == ("queued", 2, 1)
    assert handed["job_id"] not in (None, first_job)
    worker(["default"])  # the queued first job (called directly above) goes on from the cursor; the new one finds it done
    finished = api.get(f"/api/v1/replays/{record['id']}").get_json()
    assert (finished["status"], finished["done"], finished["chunks"]) == ("succeeded", 7, 4)
    assert {state for _, _, state in _states(db)} == {"retrying"}


def _sent(fake, since: int) -> list[tuple[str, str]]:  # noqa: ANN001
    """(metric name, unique id) of each event Klaviyo got since request number `since`."""
    return [(r.json["data"]["attributes"]["metric"]["data"]["attributes"]["name"],
             r.json["data"]["attributes"]["unique_id"]) for r in fake.requests[since:]]


def _no_wait(_seconds: float) -> None:
    return None


@pytest.mark.parametrize("new_ids", [False, True], ids=["same-ids", "new-ids"])
def test_a_replay_survives_a_flushed_redis(api, db, fake, worker, redis, monkeypatch, new_ids) -> None:  # noqa: ANN001
    """Its worker dies after two chunks and Redis is flushed (the job, its heartbeat and the delivery signals
    gone): the row keeps the record and the progress, the recovery hands it to a new job that goes on from
    the cursor, and every event is queued, and sent, exactly once."""
    destination = _two_orders_delivered(api, fake, worker)
    monkeypatch.setattr(replays, "CHUNK", 2)
    monkeypatch.setattr(replays, "INLINE_LIMIT", 0)
    requests = len(fake.requests)
    record = api.post(f"/api/v1/destinations/{destination}/replay", json=_window(new_ids=new_ids)).get_json()
    assert (record["status"], record["total"]) == ("queued", 7) and record["job_id"]
    checks = iter([False, False])

    def dies_after_two_chunks() -> bool:  # as a killed worker: no hand-over, the row stays "running"
        if next(checks, None) is None:
            redis.flushdb()
            return True
        return False

    assert replays.run_replay(record["id"], should_stop=dies_after_two_chunks).status == "running"
    assert redis.dbsize() == 0
    kept = api.get(f"/api/v1/replays/{record['id']}").get_json()
    assert (kept["status"], kept["done"], kept["chunks"], kept["total"]) == ("running", 4, 2, 7)
    assert (kept["job_id"], kept["since"], kept["states"]) == (record["job_id"], record["since"], record["states"])
    worker(["default"])  # the flush took the job with it: nothing runs the replay ...
    assert api.get(f"/api/v1/replays/{record['id']}").get_json()["done"] == 4
    assert replays.recover(grace=timedelta(0), wait=_no_wait) == {"resumed": 1, "requeued": 0}  # ... until now
    handed = api.get(f"/api/v1/replays/{record['id']}").get_json()
    assert handed["status"] == "queued" and handed["job_id"] not in (None, record["job_id"])
    assert replays.recover(grace=timedelta(0), wait=_no_wait) == {"resumed": 0, "requeued": 0}  # it waits: kept
    worker(["default"])
    finished = api.get(f"/api/v1/replays/{record['id']}").get_json()
    assert (finished["status"], finished["done"], finished["chunks"]) == ("succeeded", 7, 4)
    worker(["delivery"])
    rows = _states(db)
    assert {state for _, _, state in rows} == {"delivered"}
    sent = _sent(fake, requests)
    assert len(sent) == 7 and len(set(sent)) == 7, sent  # each event once
    suffix = f":replay-{record['id']}"
    if new_ids:
        assert len(rows) == 14 and all(unique_id.endswith(suffix) for _, unique_id in sent)
        assert sorted(uid.removesuffix(suffix) for _, uid, _ in rows if uid.endswith(suffix)) == sorted(
            uid for _, uid, _ in rows if not uid.endswith(suffix))
    else:
        assert len(rows) == 7 and fake.klaviyo_duplicates == 7
        assert sorted(uid for _, uid in sent) == sorted(uid for _, uid, _ in rows)


def test_the_recovery_requeues_a_lost_job_and_leaves_live_ones_alone(api, db, fake, worker, redis,  # noqa: ANN001
                                                                     monkeypatch) -> None:
    from workers.queue import beat, heartbeat_key

    destination = _two_orders_delivered(api, fake, worker)
    monkeypatch.setattr(replays, "INLINE_LIMIT", 0)
    record = api.post(f"/api/v1/destinations/{destination}/replay", json=_window()).get_json()
    recover = {"grace": timedelta(0), "wait": _no_wait}
    assert replays.recover(**recover) == {"resumed": 0, "requeued": 0}  # its job waits in the queue
    redis.flushdb()  # before any worker took it
    assert replays.recover(grace=timedelta(minutes=1), wait=_no_wait) == {"resumed": 0, "requeued": 0}  # just made
    assert replays.recover(**recover) == {"resumed": 0, "requeued": 1}
    requeued = api.get(f"/api/v1/replays/{record['id']}").get_json()
    # A worker running it beats its heartbeat: left alone, even with its job gone from the queue.
    db.session.execute(sa.update(Replay).where(Replay.id == record["id"]).values(status="running"))
    db.session.commit()
    redis.flushdb()
    beat(redis, requeued["job_id"])
    assert replays.recover(**recover) == {"resumed": 0, "requeued": 0}
    redis.delete(heartbeat_key(requeued["job_id"]))
    assert replays.recover(**recover) == {"resumed": 1, "requeued": 0}
    worker(["default"])
    finished = api.get(f"/api/v1/replays/{record['id']}").get_json()
    assert (finished["status"], finished["done"]) == ("succeeded", 7)
    assert replays.recover(**recover) == {"resumed": 0, "requeued": 0}  # finished replays are not looked at


def test_a_command_line_replay_that_died_is_resumed_and_ctrl_c_stops_one(api, db, fake, worker, monkeypatch) -> None:  # noqa: ANN001
    """A replay run in its own process (the CLI, a request) has no heartbeat: it is judged dead when no chunk
    committed for a while. Ctrl-C stops one on purpose: failed, not resumed."""
    from webapp.models import Destination

    destination = db.session.get(Destination, _two_orders_delivered(api, fake, worker))
    monkeypatch.setattr(replays, "CHUNK", 3)
    window = replays.parse_window(_window())

    def killed(_replay) -> None:  # noqa: ANN001
        raise SystemExit(137)

    with pytest.raises(SystemExit):
        replays.start_replay(destination, window, run_here=True, on_chunk=killed)
    replay = db.session.scalars(sa.select(Replay)).one()
    assert (replay.status, replay.done, replay.job_id) == ("running", 3, None)
    assert replays.recover(grace=timedelta(0), wait=_no_wait) == {"resumed": 0, "requeued": 0}  # a chunk just now
    assert replays.recover(stale=timedelta(0), wait=_no_wait) == {"resumed": 1, "requeued": 0}
    worker(["default"])
    finished = replays.get_replay(replay.id)
    assert (finished.status, finished.done, finished.chunks) == ("succeeded", 7, 3)

    def interrupted(_replay) -> None:  # noqa: ANN001
        raise KeyboardInterrupt

    worker(["delivery"])  # sent again: the window holds 7 delivered events once more
    with pytest.raises(KeyboardInterrupt):
        replays.start_replay(destination, window, run_here=True, on_chunk=interrupted)
    stopped = replays.recent_replays(destination.id)[0]
    assert (stopped.status, stopped.done) == ("failed", 3) and "Ctrl-C" in stopped.error
    assert replays.recover(stale=timedelta(0), wait=_no_wait) == {"resumed": 0, "requeued": 0}


@pytest.mark.parametrize("new_ids", [False, True], ids=["same-ids", "new-ids"])
def test_two_runners_at_once_queue_each_event_once(app, api, db, fake, worker, monkeypatch, new_ids) -> None:  # noqa: ANN001
    """A resumed replay whose first runner was not dead after all: the row lock makes them take turns, each
    going on from the other's cursor."""
    destination = _two_orders_delivered(api, fake, worker)
    monkeypatch.setattr(replays, "CHUNK", 1)
    monkeypatch.setattr(replays, "INLINE_LIMIT", 0)
    record = api.post(f"/api/v1/destinations/{destination}/replay", json=_window(new_ids=new_ids)).get_json()
    together, errors, chunks = threading.Barrier(2), [], []

    def run() -> None:
        with app.app_context():
            try:
                together.wait()
                replays.run_replay(record["id"], on_chunk=lambda _replay: chunks.append(1))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(chunks) == 7  # seven chunks committed between them: none of the seven events taken twice
    finished = api.get(f"/api/v1/replays/{record['id']}").get_json()
    assert (finished["status"], finished["done"], finished["chunks"]) == ("succeeded", 7, 7)
    rows = _states(db)
    assert len(rows) == (14 if new_ids else 7)
    assert sum(state in ("pending", "retrying") for _, _, state in rows) == 7


def test_replays_are_rows_of_their_destination(api, db, fake, worker, redis) -> None:  # noqa: ANN001
    """Kept after Redis is flushed, listed newest first on the page, gone with their destination."""
    destination = _two_orders_delivered(api, fake, worker)
    url = f"/api/v1/destinations/{destination}/replay"
    first = api.post(url, json=_window(events=["placed_order"])).get_json()
    second = api.post(url, json=_window(states=["dead"])).get_json()
    redis.flushdb()
    assert api.get(f"/api/v1/replays/{first['id']}").get_json() == first
    assert [replay.id for replay in replays.recent_replays(destination)] == [second["id"], first["id"]]
    assert api.delete(f"/api/v1/destinations/{destination}").status_code in (200, 204)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Replay)) == 0
    assert api.get(f"/api/v1/replays/{first['id']}").status_code == 404
    assert api.get(f"/api/v1/replays/{'x' * 40}").status_code == 404  # longer than any id: not an error


def test_retention_deletes_old_finished_replays_only(app, api, db, fake, worker) -> None:  # noqa: ANN001
    from webapp.services.delivery.retention import prune

    destination = _two_orders_delivered(api, fake, worker)
    url = f"/api/v1/destinations/{destination}/replay"
    old, recent, going = (api.post(url, json=_window()).get_json()["id"] for _ in range(3))
    long_ago = utcnow() - timedelta(days=app.config["RETENTION_ROW_DAYS"] + 1)
    db.session.execute(sa.update(Replay).where(Replay.id.in_([old, going])).values(finished_at=long_ago,
                                                                                   created_at=long_ago))
    db.session.execute(sa.update(Replay).where(Replay.id == going).values(status="running", finished_at=None))
    db.session.commit()
    assert prune()["replays_deleted"] == 1
    assert set(db.session.scalars(sa.select(Replay.id))) == {recent, going}


BIG, BIG_FULFILLED = 2_500, 500  # events in the window; of them fulfilled_order (the rest placed_order)


@pytest.mark.slow
def test_a_window_of_many_events_replays_in_chunks(api, db, fake, worker, monkeypatch) -> None:  # noqa: ANN001
    """BIG events: past the size a request queues itself (INLINE_LIMIT), five full chunks, each its own
    transaction. (It was 10,000: twenty chunks prove nothing five do not, at four times the minutes.)"""
    assert BIG > replays.INLINE_LIMIT and BIG % replays.CHUNK == 0 and BIG // replays.CHUNK >= 4
    started = time.monotonic()
    destination = _klaviyo(api, fake, events=["placed_order", "fulfilled_order"])
    _bulk_delivered_orders(db, destination, BIG - BIG_FULFILLED, fulfilled=BIG_FULFILLED)
    window = _window()
    counted = api.post(f"/api/v1/destinations/{destination}/replay", json=window | {"dry_run": True}).get_json()
    assert counted["count"] == BIG
    assert counted["by_event"] == {"placed_order": BIG - BIG_FULFILLED, "fulfilled_order": BIG_FULFILLED}
    asked = time.monotonic()
    response = api.post(f"/api/v1/destinations/{destination}/replay", json=window)
    assert response.status_code == 202 and time.monotonic() - asked < 2.0  # queued, not done in the request
    record = response.get_json()
    assert (record["status"], record["total"], record["done"]) == ("queued", BIG, 0) and record["job_id"]
    committed, progress = [], []
    chunk = replays._replay_chunk

    def watched(*args):  # noqa: ANN002, ANN202
        result = chunk(*args)
        with db.engine.connect() as other:  # another connection sees each chunk as soon as it is done
            committed.append(other.scalar(sa.select(sa.func.count()).select_from(Event).where(
                Event.state == "retrying")))
        shown = replays.get_replay(record["id"])
        progress.append((shown.status, shown.done))
        return result

    monkeypatch.setattr(replays, "_replay_chunk", watched)
    worker(["default"])
    assert committed == [*range(replays.CHUNK, BIG + 1, replays.CHUNK), BIG]
    # Each chunk's progress is committed with its events (one transaction), so it is seen at once.
    assert progress[:3] == [("running", replays.CHUNK), ("running", 2 * replays.CHUNK), ("running", 3 * replays.CHUNK)]
    assert progress[-1] == ("running", BIG)
    fetched = api.get(f"/api/v1/replays/{record['id']}")
    assert fetched.status_code == 200, fetched.get_json()
    record = fetched.get_json()
    assert (record["status"], record["done"], record["chunks"]) == ("succeeded", BIG, BIG // replays.CHUNK)
    assert record["slowest_chunk_ms"] < 2000, record  # short transactions, not one long one
    worker(["delivery"])
    kept = fake.delivered_by_unique_id()
    assert len(kept) == BIG and set(kept.values()) == {1}  # each sent once more, kept once
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.state != "delivered")) == 0
    assert time.monotonic() - started < 60


def _bulk_delivered_orders(db, destination_id: int, count: int, fulfilled: int) -> None:  # noqa: ANN001
    """`count` orders with a delivered placed event, the first `fulfilled` of them with a delivered fulfilled
    event too: two executemany inserts."""
    now = utcnow()
    orders = Order.__table__
    db.session.execute(sa.insert(orders), [
        {"external_id": f"bulk-{n}", "status": "fulfilled", "currency": "USD", "total": 10, "email": f"c{n}@ex.com",
         "placed_at": now, "data": {}, "delivery_state": "delivered", "created_at": now, "updated_at": now}
        for n in range(count)])
    ids = dict(db.session.execute(sa.select(orders.c.external_id, orders.c.id)).all())
    rows = []
    for n in range(count):
        order = {"id": f"bulk-{n}", "status": "fulfilled", "currency": "USD", "total": 10, "items": [],
                 "placed_at": "2026-11-20T10:15:00Z", "customer": {"email": f"c{n}@ex.com"}}
        payload = {"order": order, "contact": {"email": f"c{n}@ex.com"}}
        for name, sequence in (("placed_order", 1), ("fulfilled_order", 2))[:2 if n < fulfilled else 1]:
            rows.append({"destination_id": destination_id, "name": name, "unique_id": f"bulk-{n}",
                         "order_id": ids[f"bulk-{n}"], "payload": payload, "state": "delivered",
                         "sequence": sequence, "historical": False, "attempts": 1, "occurred_at": now,
                         "created_at": now, "next_attempt_at": now, "delivered_at": now})
    db.session.execute(sa.insert(Event.__table__), rows)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":  # fresh statistics, as autovacuum keeps them in a live database
        with db.engine.connect() as connection:
            connection.execute(sa.text("ANALYZE orders, events"))
            connection.commit()


def test_the_cli_prints_the_count_and_asks_first(api, db, fake, worker, runner) -> None:  # noqa: ANN001
    destination = _two_orders_delivered(api, fake, worker)
    window = _window()
    args = ["destinations", "replay", str(destination), "--since", window["since"], "--until", window["until"],
            "--event", "placed_order", "--state", "delivered"]
    refused = runner.invoke(args=args, input="n\n")
    assert "2 events" in refused.output and "placed_order" in refused.output, refused.output
    assert refused.exit_code != 0 and {s for n, _, s in _states(db) if n == "placed_order"} == {"delivered"}
    done = runner.invoke(args=[*args, "--yes"])
    assert done.exit_code == 0, done.output
    assert "2 events queued" in done.output
    assert {s for n, _, s in _states(db) if n == "placed_order"} == {"retrying"}
    bad = runner.invoke(args=["destinations", "replay", str(destination), "--since", window["until"],
                              "--until", window["since"], "--yes"])
    assert bad.exit_code != 0 and "since" in bad.output


def test_the_page_counts_first_then_confirms_and_shows_progress(api, db, fake, worker, logged_in) -> None:  # noqa: ANN001
    destination = _two_orders_delivered(api, fake, worker)
    page = logged_in.get(f"/destinations/{destination}").get_data(as_text=True)
    assert "Replay a time window" in page
    token = csrf_token(logged_in, f"/destinations/{destination}")
    now = datetime.now(UTC)
    form = {"csrf_token": token, "since": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "until": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"), "events": ["placed_order"],
            "states": ["delivered"]}
    counted = logged_in.post(f"/destinations/{destination}/replay", data=form, headers=HTMX)
    html = counted.get_data(as_text=True)
    assert counted.status_code == 200 and 'id="replay-panel"' in html and "<html" not in html
    assert "2 events will be sent again" in html and "Confirm" in html
    assert {s for n, _, s in _states(db) if n == "placed_order"} == {"delivered"}  # nothing queued yet
    confirmed = logged_in.post(f"/destinations/{destination}/replay", data=form | {"confirm": "1"}, headers=HTMX)
    html = confirmed.get_data(as_text=True)
    assert "succeeded" in html and "2 of 2" in html, html
    assert {s for n, _, s in _states(db) if n == "placed_order"} == {"retrying"}
    bad = logged_in.post(f"/destinations/{destination}/replay", data=form | {"since": form["until"],
                                                                              "until": form["since"]}, headers=HTMX)
    assert "is after" in bad.get_data(as_text=True)
    # Without htmx the whole page answers, with the panel in it.
    plain = logged_in.post(f"/destinations/{destination}/replay",
                           data=form | {"events": ["ordered_product"]}).get_data(as_text=True)
    assert "<html" in plain and "4 events will be sent again" in plain


def test_the_progress_fragment_polls_while_a_replay_runs(api, db, fake, worker, logged_in, monkeypatch) -> None:  # noqa: ANN001
    destination = _two_orders_delivered(api, fake, worker)
    monkeypatch.setattr(replays, "INLINE_LIMIT", 0)
    record = api.post(f"/api/v1/destinations/{destination}/replay", json=_window()).get_json()
    url = f"/destinations/{destination}/replays/{record['id']}"
    waiting = logged_in.get(url, headers=HTMX).get_data(as_text=True)
    assert 'hx-trigger="load delay:1s"' in waiting and "queued" in waiting
    worker(["default"])
    finished = logged_in.get(url, headers=HTMX).get_data(as_text=True)
    assert "hx-trigger" not in finished and "7 of 7" in finished
    assert "Replay" in logged_in.get(f"/destinations/{destination}").get_data(as_text=True)
