"""kill -9 of the worker (or the `shoprelay sources sync` command) running a sync: while it reads (phase 1)
nothing visible changed and the run is failed; while it applies (phase 2) the apply is rolled forward by another
worker and the catalog ends complete, with each product event written once."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import both_databases
from tests.processes import stop_process
from tests.webapp.catalog.sync_helpers import big_csv, shoprelay_process, worker_process
from webapp.models import CatalogStage, Event, Feed, FeedBuild, Product, SyncRun, utcnow
from webapp.schemas.destinations import DestinationCreate
from webapp.schemas.feeds import FeedCreate
from webapp.schemas.sources import SourceCreate
from webapp.services.catalog.orphaned_runs import fail_orphaned_runs
from webapp.services.catalog.sources import create_source
from webapp.services.catalog.stage import APPLY_CHUNK, staged_count
from webapp.services.catalog.sync import request_sync, run_sync
from webapp.services.delivery.destinations import create_destination
from webapp.services.publishing.feeds import create_feed
from workers.queue import HEARTBEAT_TTL_SECONDS, heartbeat_key

LATER = timedelta(minutes=5)


def _catalog(db, http_server, rows: int):  # noqa: ANN001, ANN202
    """A source of `rows` products synced once, a destination taking product events, a feed on the source."""
    create_destination(DestinationCreate(name="Hook", kind="webhook", events=["product_upsert", "product_delete"],
                                         credentials={"url": "http://127.0.0.1:9/h", "secret": "abcdefgh"}))
    source = create_source(SourceCreate(name="Shop", kind="csv", location=http_server.route("/p.csv",
                                                                                              big_csv(rows))))
    assert run_sync(request_sync(source, enqueue=False).id).status == "succeeded"
    create_feed(FeedCreate(name="F", slug="f", format="klaviyo_json", source_ids=[source.id]))
    db.session.execute(sa.delete(FeedBuild))
    db.session.commit()
    return source


def _events(db, name: str) -> tuple[int, int]:  # noqa: ANN001
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.name == name))
    distinct = db.session.scalar(sa.select(sa.func.count(sa.distinct(Event.unique_id))).where(Event.name == name))
    return total, distinct


def _titles(db, prefix: str) -> int:  # noqa: ANN001
    return db.session.scalar(sa.select(sa.func.count()).select_from(Product).where(Product.title.like(f"{prefix} %")))


def _kill_when(app, db, redis, run_id: int | None, ready, timeout: float = 240.0,  # noqa: ANN001
               process=None) -> int:  # noqa: ANN001
    """Kill the process (a sync worker by default) the moment `ready(run)` holds; the run's id.

    With no run id, the newest run is watched (the command creates its own)."""
    process = process or worker_process(app, "sync")
    try:
        deadline = time.monotonic() + timeout
        while True:
            db.session.rollback()
            current = (db.session.get(SyncRun, run_id) if run_id is not None
                       else db.session.scalar(sa.select(SyncRun).order_by(SyncRun.id.desc()).limit(1)))
            if ready(current):
                run_id = current.id
                break
            assert process.poll() is None and time.monotonic() < deadline, "missed the moment to kill"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        stop_process(process, grace=0, sig=signal.SIGKILL)
    # The dead worker's heartbeat lapses: killed and reaped, nothing beats its key any more, which expires within
    # HEARTBEAT_TTL_SECONDS on its own (-1, a key that never would, fails here). The test expires it now rather
    # than wait those 15 s out (test_worker_killed_mid_sync.py sees a real lapse end to end).
    key = heartbeat_key(db.session.get(SyncRun, run_id).job_id)
    ttl = redis.ttl(key)
    assert ttl == -2 or 0 <= ttl <= HEARTBEAT_TTL_SECONDS, ttl
    redis.delete(key)
    return run_id


@pytest.mark.slow
@both_databases
def test_killed_while_reading_changes_nothing(app, db, redis, http_server) -> None:  # noqa: ANN001
    source = _catalog(db, http_server, 2_000)
    upserts_before = _events(db, "product_upsert")
    http_server.route("/p.csv", big_csv(60_000, title="Changed"))
    run = request_sync(source, confirm_removals=True)

    _kill_when(app, db, redis, run.id, lambda r: r.phase == "reading" and staged_count(run.id) >= 2_000)

    assert _titles(db, "Thing") == 2_000 and _titles(db, "Changed") == 0, "nothing visible changed"
    assert _events(db, "product_upsert") == upserts_before, "no product event for changes never applied"
    assert fail_orphaned_runs(redis, now=utcnow() + LATER) == {"sync_runs": 1}
    db.session.expire_all()
    assert db.session.get(SyncRun, run.id).status == "failed"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CatalogStage)) == 0, "its staging is dropped"
    assert not db.session.scalars(sa.select(FeedBuild)).all(), "no feed rebuilt for a sync that changed nothing"


@pytest.mark.slow
@both_databases
@pytest.mark.parametrize("runner", ["worker", "command"])
def test_killed_while_applying_is_rolled_forward(app, db, redis, http_server, worker, runner) -> None:  # noqa: ANN001
    # 15 apply chunks of stage.APPLY_CHUNK (500): room to kill with the apply half done (it was 30,000: 60 chunks,
    # twice the minutes, no other difference)
    rows, removed = 8_000, 500
    assert (rows - removed) // APPLY_CHUNK >= 10
    source = _catalog(db, http_server, rows)
    upserts_before, _ = _events(db, "product_upsert")
    first_run = db.session.scalar(sa.select(sa.func.max(SyncRun.id)))
    http_server.route("/p.csv", big_csv(rows - removed, title="Changed", skip=removed))
    if runner == "worker":
        run_id, process = request_sync(source, confirm_removals=True).id, None
    else:  # `shoprelay sources sync` runs the sync in its own process, with no worker involved
        run_id, process = None, shoprelay_process(app, "sources", "sync", str(source.id), "--confirm-removals")
    total: list[int] = []

    def half_applied(current: SyncRun | None) -> bool:
        if current is None or current.id == first_run or current.phase != "applying":
            return False
        left = staged_count(current.id)
        total.append(left)
        return 0 < left < max(total) and _titles(db, "Changed") > 0

    run_id = _kill_when(app, db, redis, run_id, half_applied, process=process)
    db.session.expire_all()
    run = db.session.get(SyncRun, run_id)
    assert run.status == "running"
    assert run.job_id.startswith("cli-sync_runs-" if runner == "command" else "sync-run-")
    assert 0 < _titles(db, "Changed") < rows - removed, "killed with the apply half done"

    assert fail_orphaned_runs(redis, now=utcnow() + LATER) == {"sync_runs_resumed": 1}
    worker(["sync"])  # another worker takes the rest of the apply
    db.session.expire_all()
    finished = db.session.get(SyncRun, run.id)
    assert (finished.status, finished.phase, finished.error) == ("succeeded", "applied", None)
    assert (finished.updated, finished.removed) == (rows - removed, removed)
    assert _titles(db, "Changed") == rows - removed and _titles(db, "Thing") == 0
    assert db.session.get(type(source), source.id).product_count == rows - removed
    upserts, distinct = _events(db, "product_upsert")
    assert upserts == distinct == upserts_before + rows - removed, "each change's event exactly once"
    assert _events(db, "product_delete") == (removed, removed)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CatalogStage)) == 0
    feed = db.session.scalar(sa.select(Feed))
    assert db.session.scalars(sa.select(FeedBuild).where(FeedBuild.feed_id == feed.id)).all(), "feed rebuilt"
