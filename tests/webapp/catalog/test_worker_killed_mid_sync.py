"""An operator kills a worker mid-sync: the run is failed with the reason, the catalog is untouched, and
the source can sync again (instead of "already running" until the job's timeout)."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import both_databases
from tests.processes import stop_process
from tests.webapp.catalog.sync_helpers import worker_process
from webapp.models import FeedBuild, Product, SyncRun, utcnow
from webapp.schemas.sources import SourceCreate
from webapp.services.catalog.orphaned_runs import GRACE, REASONS, fail_orphaned_runs
from webapp.services.catalog.sources import create_source
from webapp.services.catalog.sync import SyncAlreadyRunning, request_sync
from webapp.services.publishing.feeds import create_feed
from workers.queue import beat, heartbeat_key

CSV = "id,title,link,image_link,price,description\n" + "".join(
    f"p{i},Thing {i},https://shop.test/p{i},https://shop.test/p{i}.jpg,9.99,Nice\n" for i in range(5))
LATER = timedelta(minutes=5)


def _running(model, job_id: str, started_ago: timedelta, **fields):  # noqa: ANN001, ANN202
    from webapp.extensions import db

    row = model(status="running", job_id=job_id, started_at=utcnow() - started_ago, **fields)
    db.session.add(row)
    db.session.commit()
    return row


@both_databases
def test_only_silent_runs_past_the_grace_are_failed(app, db, redis, http_server) -> None:  # noqa: ANN001
    source = create_source(SourceCreate(name="Shop", kind="csv", location=http_server.route("/p.csv", CSV)))
    from webapp.schemas.feeds import FeedCreate

    feed = create_feed(FeedCreate(name="F", slug="f", format="klaviyo_json", source_ids=[source.id]))
    dead = _running(SyncRun, "sync-run-dead", GRACE * 2, source_id=source.id, trigger="manual", problems=[])
    alive = _running(SyncRun, "sync-run-alive", GRACE * 2, source_id=source.id, trigger="manual", problems=[])
    young = _running(SyncRun, "sync-run-young", timedelta(seconds=10), source_id=source.id, trigger="manual",
                     problems=[])
    inline = _running(SyncRun, None, GRACE * 2, source_id=source.id, trigger="cli", problems=[])
    build = _running(FeedBuild, "feed-build-dead", GRACE * 2, feed_id=feed.id, trigger="manual", parts=[],
                     report={})
    beat(redis, "sync-run-alive")
    waits: list[float] = []

    assert fail_orphaned_runs(redis, wait=waits.append) == {"sync_runs": 1, "feed_builds": 1}
    assert waits, "a silent job is asked again one beat later before it is judged"
    db.session.expire_all()
    assert (dead.status, dead.error) == ("failed", REASONS[SyncRun])
    assert (build.status, build.error) == ("failed", REASONS[FeedBuild])
    assert dead.finished_at is not None
    assert [alive.status, young.status, inline.status] == ["running"] * 3


@both_databases
def test_a_heartbeat_back_after_a_redis_flush_is_not_judged_dead(app, db, redis, http_server) -> None:  # noqa: ANN001
    source = create_source(SourceCreate(name="Shop", kind="csv", location=http_server.route("/p.csv", CSV)))
    run = _running(SyncRun, "sync-run-1", GRACE * 2, source_id=source.id, trigger="manual", problems=[])

    # the key is gone (flushed); the worker beats again before the second look
    assert fail_orphaned_runs(redis, wait=lambda _seconds: beat(redis, "sync-run-1")) == {}
    db.session.expire_all()
    assert run.status == "running"




def _wait(predicate, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


@pytest.mark.slow
@both_databases
def test_kill_9_mid_sync_fails_the_run_and_keeps_the_catalog(app, db, redis, http_server, worker) -> None:  # noqa: ANN001
    source = create_source(SourceCreate(name="Shop", kind="csv", location=http_server.route("/p.csv", CSV)))
    request_sync(source)
    worker(["sync"])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Product)) == 5

    http_server.route("/p.csv", CSV.replace("Thing", "Changed"), delay=90)  # the next download hangs
    run = request_sync(source, confirm_removals=True)
    process = worker_process(app, "sync")
    try:
        def hanging() -> bool:
            db.session.expire_all()
            return db.session.get(SyncRun, run.id).status == "running" and bool(redis.exists(heartbeat_key(run.job_id)))

        _wait(hanging)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        stop_process(process, grace=0, sig=signal.SIGKILL)
    with pytest.raises(SyncAlreadyRunning):  # right after the kill the run still looks like it runs...
        request_sync(source)
    _wait(lambda: not redis.exists(heartbeat_key(run.job_id)), timeout=30)  # ...until its heartbeat lapses

    assert fail_orphaned_runs(redis, now=utcnow() + LATER) == {"sync_runs": 1}
    db.session.expire_all()
    failed = db.session.get(SyncRun, run.id)
    assert failed.status == "failed" and "stopped (killed or lost)" in failed.error
    titles = set(db.session.scalars(sa.select(Product.title)))
    assert titles == {f"Thing {i}" for i in range(5)}, "the dead run changed nothing"

    http_server.route("/p.csv", CSV.replace("Thing", "Changed"))
    again = request_sync(source)  # no longer refused
    worker(["sync"])
    db.session.expire_all()
    assert db.session.get(SyncRun, again.id).status == "succeeded"
    assert not redis.keys("shoprelay:job-alive:*"), "a finished job leaves no heartbeat behind"
    assert set(db.session.scalars(sa.select(Product.title))) == {f"Changed {i}" for i in range(5)}
