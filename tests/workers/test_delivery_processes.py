"""Real worker processes: kill -9 mid-batch, two workers racing, the shared rate limit with three workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from tests.conftest import REDIS_URL, both_databases
from tests.factories import make_order
from tests.processes import stop_process, wait_until
from webapp.models import Event
from workers.queue import JOB_DELIVER, connect, enqueue

pytestmark = [pytest.mark.slow, both_databases]


def _worker_process(app, *extra: str, **settings: str) -> subprocess.Popen:
    env = dict(os.environ) | {
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": REDIS_URL,
        "SHOPRELAY_INSTANCE_PATH": app.instance_path, "SECRET_KEY": "test-secret",
        "SHOPRELAY_ENCRYPTION_KEY": app.config["ENCRYPTION_KEY"], "SHOPRELAY_LOG_LEVEL": "WARNING",
    } | {f"SHOPRELAY_{key.upper()}": str(value) for key, value in settings.items()}
    path = os.path.join(app.instance_path, f"worker-{time.monotonic_ns()}.log")
    with open(path, "wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([sys.executable, "-m", "webapp.cli", "worker", "-q", "delivery", *extra],
                                   env=env, stdout=subprocess.DEVNULL, stderr=log)
    process.log_path = path  # type: ignore[attr-defined]
    return process


def _finished(process: subprocess.Popen) -> None:
    code = process.wait(timeout=120)
    with open(process.log_path, encoding="utf-8", errors="replace") as log:  # type: ignore[attr-defined]
        assert code == 0, f"worker exited with {code}: {log.read()[-3000:]}"


def _failed_jobs() -> list[str]:
    from rq.registry import FailedJobRegistry

    from workers.queue import get_queue

    registry = FailedJobRegistry(queue=get_queue("delivery", connect(REDIS_URL)))
    return [str(job.latest_result().exc_string if job.latest_result() else job.id)[-1500:]
            for job in map(registry.get_queue().fetch_job, registry.get_job_ids()) if job]


def _states(db) -> dict[str, int]:
    db.session.expire_all()
    return dict(db.session.execute(sa.select(Event.state, sa.func.count()).group_by(Event.state)).all())


def _drain_with_workers(app, db, destination_id: int, *, jobs: int, workers: int, **settings) -> dict[str, int]:
    """Queue `jobs` delivery jobs, run `workers` real worker processes in burst mode, return event states."""
    connection = connect(REDIS_URL)
    for _ in range(jobs):
        enqueue(connection, "delivery", JOB_DELIVER, destination_id)
    processes = [_worker_process(app, "--burst", **settings) for _ in range(workers)]
    try:
        for process in processes:
            _finished(process)
    finally:  # one that failed or hung: the others are not left draining the next test's queue
        for process in processes:
            stop_process(process, grace=5)
    return _states(db)


def _orders(api, count: int) -> None:
    response = api.post("/api/v1/orders", json={"orders": [make_order(id=f"o{i}") for i in range(count)]})
    assert response.status_code == 202


def test_kill_9_mid_batch_loses_and_doubles_nothing(app, api, db, fake, make_destination, worker, redis):
    from workers.delivery.sweeper import sweep

    make_destination("klaviyo", events=["placed_order"])
    fake.timeout_next(20, delay=0.25, platform="klaviyo")  # slow but successful answers
    process = _worker_process(app, delivery_lease_seconds=2)
    try:
        _orders(api, 20)
        wait_until(lambda: len(fake.requests_for("klaviyo")) >= 5)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        stop_process(process, grace=0, sig=signal.SIGKILL)
    assert _states(db).get("delivered", 0) < 20
    time.sleep(2.2)  # the dead worker's lease runs out
    app.config["DELIVERY_LEASE_SECONDS"] = 2
    sweep(redis)
    worker(["delivery"])
    assert _states(db) == {"delivered": 20}
    placed = fake.klaviyo_events_named("Placed Order")
    assert sorted(e.unique_id for e in placed) == sorted(f"o{i}" for i in range(20))
    assert round(fake.klaviyo_revenue(), 2) == round(20 * 29.98, 2)  # the resent one was de-duplicated


def test_two_workers_never_send_the_same_event(app, api, db, fake, make_destination, redis):
    dest = make_destination("klaviyo", events=["placed_order"])
    fake.timeout_next(400, delay=0.005, platform="klaviyo")
    _orders(api, 120)
    states = _drain_with_workers(app, db, dest["id"], jobs=6, workers=2, delivery_batch=10, bulk_threshold=100000)
    assert states == {"delivered": 120}, (states, _failed_jobs())
    requests = fake.requests_for("klaviyo", "/klaviyo/api/events")
    assert len(requests) == 120
    assert fake.klaviyo_duplicates == 0


def test_rate_limit_holds_across_three_workers(app, api, db, fake, make_destination, redis):
    dest = make_destination("klaviyo", events=["placed_order"],
                            rate_limits={"burst_per_second": 5, "per_minute": 1000})
    _orders(api, 25)
    states = _drain_with_workers(app, db, dest["id"], jobs=3, workers=3, delivery_batch=5, bulk_threshold=100000)
    assert states == {"delivered": 25}, (states, _failed_jobs())
    assert fake.max_requests_in_window("klaviyo", 0.9) <= 5


def test_two_workers_drain_one_bulk_backlog_without_duplicates(app, api, db, fake, make_destination, redis):
    dest = make_destination("klaviyo", events=["placed_order", "ordered_product"])
    for start in range(0, 200, 100):
        response = api.post("/api/v1/orders", json={"orders": [make_order(id=f"o{i}")
                                                               for i in range(start, start + 100)]})
        assert response.status_code == 202
    states = _drain_with_workers(app, db, dest["id"], jobs=4, workers=2, delivery_batch=30, bulk_threshold=5)
    assert states == {"delivered": 600}, (states, _failed_jobs())  # Placed Order + 2 Ordered Product each
    assert fake.klaviyo_duplicates == 0 and len(fake.klaviyo_events) == 600
    assert all(r.path.endswith("/event-bulk-create-jobs") for r in fake.requests_for("klaviyo"))
    attempts = db.session.execute(sa.text("SELECT event_id, count(*) FROM delivery_attempts GROUP BY event_id"))
    assert {count for _, count in attempts} == {1}
    leasers = db.session.execute(sa.text("SELECT count(DISTINCT leased_by) FROM events")).scalar_one()
    assert leasers == 0  # every lease cleared on settling


def test_a_stopping_worker_leaves_at_once_and_hands_its_work_on(app, api, db, fake, make_destination, worker, redis):
    """SIGTERM (warm shutdown) in the middle of a rate-limited drain that would take ~20 s: the worker records
    what it sent, hands the rest back, queues a follow-up job and exits within seconds; another worker finishes."""
    from workers.queue import get_queue

    dest = make_destination("klaviyo", events=["placed_order"],
                            rate_limits={"burst_per_second": 2, "per_minute": 1000})
    process = _worker_process(app, bulk_threshold=100000)
    try:
        _orders(api, 40)
        wait_until(lambda: len(fake.requests_for("klaviyo")) >= 3)
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        took = time.monotonic() - stopped_at
    finally:
        if process.poll() is None:
            stop_process(process, grace=0, sig=signal.SIGKILL)
    _finished(process)
    assert took < 5, f"the worker took {took:.1f} s to stop"
    states = _states(db)
    assert states.get("in_flight", 0) == 0 and 0 < states.get("delivered", 0) < 40, states
    assert get_queue("delivery", connect(REDIS_URL)).count >= 1  # the follow-up job
    response = api.patch(f"/api/v1/destinations/{dest['id']}", json={"rate_limits": {"burst_per_second": 100}})
    assert response.status_code == 200, response.get_json()
    worker(["delivery"])
    assert _states(db) == {"delivered": 40}
    assert fake.klaviyo_duplicates == 0 and len(fake.klaviyo_events_named("Placed Order")) == 40
