"""A job whose worker dies at the same chunk again and again (a poison row that crashes or exhausts it) is failed
after SHOPRELAY_CHUNK_ATTEMPTS deaths with a reason naming the rows, instead of being resumed for ever; one that
gets further between deaths is resumed every time.

Real `shoprelay worker` processes, killed with SIGKILL while they are inside a chunk: the test holds a row lock
the chunk needs (the "poison" row), waits until the worker's transaction waits on it, and kills the worker. Row
locks are PostgreSQL's (SQLite locks the whole database, so a worker could not even mark its job running), so the
process tests run there; the counting itself is also checked on both databases without processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import REDIS_URL, both_databases
from tests.processes import stop_process, wait_until
from webapp.models import Event, Replay, Source, SyncRun, utcnow
from webapp.services.delivery import replays
from webapp.services.delivery.replay_windows import ReplayWindow
from webapp.services.platform.row_jobs import Deaths, deaths_in, died_again, new_job_id
from webapp.settings import SettingsError, load_settings
from workers.queue import connect, heartbeat_key, job_alive

postgres_only = pytest.mark.parametrize(
    "app", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
EVENTS = 2600  # six chunks of replays.CHUNK (500)


# --- settings and the count, no processes -----------------------------------------------------------------

@pytest.mark.parametrize(("name", "value"), [("SHOPRELAY_SWEEP_SECONDS", "0"), ("SHOPRELAY_SWEEP_SECONDS", "1m"),
                                             ("SHOPRELAY_RETRY_BASE_SECONDS", "-1"),
                                             ("SHOPRELAY_RETRY_BASE_SECONDS", "nan"),
                                             ("SHOPRELAY_CHUNK_ATTEMPTS", "0")])
def test_a_bad_value_names_its_setting(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}='{value}' is not valid: must be a positive"):
        load_settings({name: value})


def test_the_scheduler_sweeps_as_often_as_the_setting_says() -> None:
    from workers.schedule import PERIODIC_JOBS, periodic_jobs

    defaults = load_settings({})
    assert (defaults["SWEEP_SECONDS"], defaults["RETRY_BASE_SECONDS"], defaults["CHUNK_ATTEMPTS"]) == (60, 10.0, 3)
    assert periodic_jobs(defaults) == PERIODIC_JOBS
    jobs = {job.name: job for job in periodic_jobs(load_settings({"SHOPRELAY_SWEEP_SECONDS": "3"}))}
    assert (jobs["sweep"].interval, jobs["replays-recover"].interval, jobs["erasures"].interval) == (3, 3, 3)
    assert jobs["dispatch-syncs"].interval == 60 and jobs["alerts"].interval == 60


def test_deaths_count_at_one_position_and_ride_on_the_job_id() -> None:
    first = died_again(None, "500")
    assert first == Deaths("500", 1)
    assert died_again(first, "500") == Deaths("500", 2)
    assert died_again(Deaths("500", 2), "1000") == Deaths("1000", 1)  # it got further: counted afresh
    job_id = new_job_id("replay", Deaths("orders.17", 2))
    assert len(job_id) <= 64 and deaths_in(job_id) == Deaths("orders.17", 2)
    assert deaths_in(new_job_id("replay")) is None and deaths_in(None) is None


@both_databases
def test_recover_fails_a_replay_whose_runner_died_at_the_same_cursor(app, db, redis) -> None:  # noqa: ANN001
    """The count on both databases: a running replay whose job is silent, found three times at cursor 500."""
    destination_id = _destination(db)
    replay = _replay_row(db, destination_id, cursor=500, done=500)
    for death in (1, 2):
        _mark_running(db, replay)
        assert replays.recover(grace=timedelta(0), wait=_no_wait) == {"resumed": 1, "requeued": 0}
        assert deaths_in(_fresh(db, replay).job_id) == Deaths("500", death)
    _lose_queued_job(redis)  # a flushed Redis loses the queued job: requeued, not a death
    assert replays.recover(grace=timedelta(0), wait=_no_wait) == {"resumed": 0, "requeued": 1}
    assert deaths_in(_fresh(db, replay).job_id) == Deaths("500", 2)
    _mark_running(db, replay)
    assert replays.recover(grace=timedelta(0), wait=_no_wait) == {"resumed": 0, "requeued": 0, "failed": 1}
    failed = _fresh(db, replay)
    assert failed.status == "failed" and failed.finished_at is not None
    assert failed.error.startswith("stopped after 3 attempts at the events after event 500: the worker died each "
                                   "time (killed, or out of memory) without getting past them; the 500 events "
                                   "queued before stay queued, the other 1,500 were not")


# --- real workers, killed mid-chunk -----------------------------------------------------------------------

@postgres_only
def test_a_replay_killed_at_the_same_chunk_ends_failed(app, api, db, redis) -> None:  # noqa: ANN001
    destination_id = _destination(db)
    ids = _events(db, destination_id, EVENTS)
    replay = replays.start_replay(db.session.get(_destination_model(), destination_id), _window())
    assert replay.status == "queued" and replay.job_id
    poison = ids[1200]  # in the third chunk: two chunks (1,000 events) go through first
    for death in (1, 2, 3):
        _kill_blocked_worker(app, db, "default", "events", poison, lambda: _fresh(db, replay).job_id)
        row = _fresh(db, replay)
        assert (row.status, row.cursor, row.done) == ("running", ids[999], 1000)
        counts = replays.recover(grace=timedelta(0), wait=_no_wait)
        if death < 3:
            assert counts == {"resumed": 1, "requeued": 0}
            assert deaths_in(_fresh(db, replay).job_id) == Deaths(str(ids[999]), death)
    assert counts == {"resumed": 0, "requeued": 0, "failed": 1}
    row = _fresh(db, replay)
    assert (row.status, row.cursor, row.done, row.chunks) == ("failed", ids[999], 1000, 2)
    assert row.error.startswith(f"stopped after 3 attempts at events {ids[1000]}–{ids[1499]} (the chunk after "
                                f"event {ids[999]}): the worker died each time")
    body = api.get(f"/api/v1/replays/{replay.id}").get_json()  # where the replay's status shows
    assert (body["status"], body["error"]) == ("failed", row.error)
    assert _event_states(db) == {"retrying": 1000, "delivered": EVENTS - 1000}  # the first two chunks, once
    assert replays.recover(grace=timedelta(0), wait=_no_wait) == {"resumed": 0, "requeued": 0}  # over for good


@postgres_only
def test_a_replay_that_gets_further_between_deaths_is_resumed_each_time(app, api, db, redis) -> None:  # noqa: ANN001
    destination_id = _destination(db)
    ids = _events(db, destination_id, EVENTS)
    replay = replays.start_replay(db.session.get(_destination_model(), destination_id), _window())
    for death, poison in enumerate((ids[100], ids[700], ids[1300], ids[1900]), start=1):  # chunks 1, 2, 3, 4
        _kill_blocked_worker(app, db, "default", "events", poison, lambda: _fresh(db, replay).job_id)
        assert _fresh(db, replay).done == 500 * (death - 1)
        assert replays.recover(grace=timedelta(0), wait=_no_wait) == {"resumed": 1, "requeued": 0}
        at = str(ids[500 * (death - 1) - 1]) if death > 1 else "0"
        assert deaths_in(_fresh(db, replay).job_id) == Deaths(at, 1)  # each death at a new chunk: the first
    worker = _worker(app, "default")
    try:
        wait_until(lambda: _fresh(db, replay).status == "succeeded", timeout=60)
    finally:
        stop_process(worker, grace=5)
    row = _fresh(db, replay)
    assert (row.done, row.chunks, row.error) == (EVENTS, 6, None)
    assert _event_states(db) == {"retrying": EVENTS}  # every event queued once


@postgres_only
def test_a_sync_apply_killed_at_the_same_chunk_ends_failed(app, api, db, redis) -> None:  # noqa: ANN001
    from webapp.services.catalog.orphaned_runs import fail_orphaned_runs
    from webapp.services.catalog.sync import hand_over

    source, run, products = _applying_sync(db)
    hand_over(run)
    for death in (1, 2, 3):
        # the chunk's one update: the first chunk never commits
        _kill_blocked_worker(app, db, "sync", "products", products[0], lambda: _fresh_run(db, run).job_id)
        result = fail_orphaned_runs(connect(REDIS_URL), now=utcnow() + timedelta(minutes=5), wait=_no_wait)
        if death < 3:
            assert result == {"sync_runs_resumed": 1}
            note = _fresh_run(db, run).problems[0]
            assert (note["field"], note["deaths"]) == ("worker_died", death)
            assert f"({death} of 3 attempts)" in note["message"]
    assert result == {"sync_runs_stopped": 1}
    row = _fresh_run(db, run)
    assert row.status == "failed" and row.finished_at is not None
    assert row.error.startswith("stopped after 3 attempts at staged changes ")
    assert "(products N0-0 … U0): the worker died each time" in row.error
    assert row.error.endswith("none of its 1,500 changes had been applied, so the catalog is as it was before "
                              "this sync; fix those rows in the source and sync again")
    assert api.get(f"/api/v1/sync-runs/{run.id}").get_json()["error"] == row.error
    # Nothing of the dead chunk reached the catalog; the staged rest is dropped.
    assert _titles(db, source) == {"U0": "old", "U1": "old", "U2": "old"}
    assert db.session.scalar(sa.text("SELECT count(*) FROM catalog_stage")) == 0


@postgres_only
def test_a_sync_apply_that_gets_further_between_deaths_is_resumed_each_time(app, api, db, redis) -> None:  # noqa: ANN001
    from webapp.services.catalog.orphaned_runs import fail_orphaned_runs
    from webapp.services.catalog.sync import hand_over

    source, run, products = _applying_sync(db)
    hand_over(run)
    for product in products:  # the update in chunk 1, then 2, then 3
        _kill_blocked_worker(app, db, "sync", "products", product, lambda: _fresh_run(db, run).job_id)
        assert fail_orphaned_runs(connect(REDIS_URL), now=utcnow() + timedelta(minutes=5), wait=_no_wait) \
            == {"sync_runs_resumed": 1}
        assert _fresh_run(db, run).problems[0]["deaths"] == 1
    worker = _worker(app, "sync")
    try:
        wait_until(lambda: _fresh_run(db, run).status == "succeeded", timeout=60)
    finally:
        stop_process(worker, grace=5)
    assert _titles(db, source) == {"U0": "new", "U1": "new", "U2": "new"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(sa.text("products"))) == 1500


# --- helpers ----------------------------------------------------------------------------------------------

def _no_wait(_: float) -> None:
    """silent_jobs' second look a beat later: the test has already removed the dead job's heartbeat."""


def _destination_model():  # noqa: ANN202
    from webapp.models import Destination

    return Destination


def _destination(db) -> int:  # noqa: ANN001
    from webapp.services.platform.crypto import encrypt_json

    destination = _destination_model()(name="Klaviyo", kind="klaviyo", base_url="http://127.0.0.1:9/klaviyo",
                                       credentials_encrypted=encrypt_json({"api_key": "pk_test"}),
                                       events=["placed_order"])
    db.session.add(destination)
    db.session.commit()
    return destination.id


def _events(db, destination_id: int, count: int) -> list[int]:  # noqa: ANN001
    now = utcnow()
    db.session.execute(sa.insert(Event), [
        {"destination_id": destination_id, "name": "placed_order", "unique_id": f"o{n}", "payload": {"n": n},
         "state": "delivered", "attempts": 1, "occurred_at": now, "created_at": now, "next_attempt_at": now}
        for n in range(count)])
    db.session.commit()
    return list(db.session.scalars(sa.select(Event.id).order_by(Event.id)))


def _window() -> ReplayWindow:
    now = datetime.now(UTC)
    return ReplayWindow(since=now - timedelta(hours=1), until=now + timedelta(hours=1))


def _replay_row(db, destination_id: int, *, cursor: int, done: int) -> Replay:  # noqa: ANN001
    now = utcnow()
    replay = Replay(id="r0", destination_id=destination_id, status="running", since=now - timedelta(hours=1),
                    until=now + timedelta(hours=1), events=None, states=["delivered"], new_ids=False, total=2000,
                    done=done, chunks=1, not_replayable=0, breakdown=[], slowest_chunk_ms=0, cursor=cursor,
                    last_id=10**9, job_id=new_job_id("replay"), created_at=now, started_at=now)
    db.session.add(replay)
    db.session.commit()
    return replay


def _mark_running(db, replay: Replay) -> None:  # noqa: ANN001
    """The job recover queued was taken by a worker, which marked the replay running and then died."""
    db.session.execute(sa.update(Replay).where(Replay.id == replay.id).values(status="running"))
    db.session.commit()
    _lose_queued_job(connect(REDIS_URL))


def _lose_queued_job(redis) -> None:  # noqa: ANN001
    from workers.queue import get_queue

    get_queue("default", redis).empty()


def _fresh(db, replay: Replay) -> Replay:  # noqa: ANN001
    return replays.get_replay(replay.id)


def _fresh_run(db, run: SyncRun) -> SyncRun:  # noqa: ANN001
    db.session.expire_all()
    found = db.session.get(SyncRun, run.id)
    db.session.commit()
    return found


def _event_states(db) -> dict[str, int]:  # noqa: ANN001
    db.session.expire_all()
    return dict(db.session.execute(sa.select(Event.state, sa.func.count()).group_by(Event.state)).all())


def _applying_sync(db) -> tuple[Source, SyncRun, list[int]]:  # noqa: ANN001
    """A source with products U0-U2 (title "old") and a run past its commit point with three chunks staged:
    each chunk 499 new products and, last, the update of one of U0-U2 to "new"."""
    from webapp.models import Product
    from webapp.services.catalog import stage as catalog_stage

    source = Source(name="Catalog", kind="csv")
    db.session.add(source)
    db.session.commit()
    products = []
    for n in range(3):
        product = Product(source_id=source.id, external_id=f"U{n}", title="old", categories=[], extras={})
        db.session.add(product)
        db.session.flush()
        products.append(product.id)
    run = SyncRun(source_id=source.id, status="running", phase="applying", trigger="manual", problems=[],
                  started_at=utcnow(), apply_started_at=utcnow(), added=1497, updated=3)
    db.session.add(run)
    db.session.commit()
    now = utcnow()

    def values(external_id: str, title: str, **extra) -> dict:  # noqa: ANN003
        return {name: None for name in catalog_stage.CONTENT} | {
            "external_id": external_id, "title": title, "description": "", "categories": [], "extras": {},
            "content_hash": 1, "created_at": now, "updated_at": now} | extra

    for chunk, product in enumerate(products):
        inserts = [values(f"N{chunk}-{n}", "new") for n in range(499)]
        catalog_stage.stage(run.id, inserts, [values(f"U{chunk}", "new", id=product)], [])
    return source, run, products


def _titles(db, source: Source) -> dict[str, str]:  # noqa: ANN001
    db.session.expire_all()
    rows = db.session.execute(sa.text("SELECT external_id, title FROM products WHERE source_id = :s AND "
                                      "external_id LIKE 'U%'"), {"s": source.id}).all()
    db.session.commit()
    return dict(rows)


def _worker(app, queue: str) -> subprocess.Popen:  # noqa: ANN001
    env = dict(os.environ) | {
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": REDIS_URL,
        "SHOPRELAY_INSTANCE_PATH": app.instance_path, "SECRET_KEY": "test-secret",
        "SHOPRELAY_ENCRYPTION_KEY": app.config["ENCRYPTION_KEY"], "SHOPRELAY_LOG_LEVEL": "WARNING"}
    log = open(os.path.join(app.instance_path, f"worker-{time.monotonic_ns()}.log"), "wb")  # noqa: SIM115
    with log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "webapp.cli", "worker", "-q", queue], env=env,
                                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


@contextmanager
def _row_locked(db, table: str, row_id: int) -> Iterator[None]:  # noqa: ANN001
    """The poison row: locked by the test, so the chunk that writes it waits inside its transaction."""
    connection = db.engine.connect()
    try:
        connection.execute(sa.text(f"SELECT id FROM {table} WHERE id = :id FOR UPDATE"), {"id": row_id})
        yield
    finally:
        connection.rollback()
        connection.close()


def _waiting_on_locks(db) -> int:  # noqa: ANN001
    with db.engine.connect() as connection:
        return connection.scalar(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"))


def _wait_blocked(db, worker: subprocess.Popen) -> None:  # noqa: ANN001
    """Until the worker's chunk waits on the poison row (it is mid-chunk: its transaction is open)."""
    def blocked() -> bool:
        assert worker.poll() is None, f"the worker exited with {worker.returncode}"
        return _waiting_on_locks(db) > 0

    wait_until(blocked, timeout=90)


def _settled(db) -> None:  # noqa: ANN001
    """The dead worker's server session ends once the lock it waited on is free (it finds its client gone and
    rolls back): nothing of the dead chunk was committed, and the row locks it held are released."""
    def quiet() -> bool:
        with db.engine.connect() as connection:
            return not connection.scalar(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND state <> 'idle'"))

    db.session.commit()  # the test's own session holds no transaction open

    wait_until(quiet, timeout=30)


def _kill_blocked_worker(app, db, queue: str, table: str, row_id: int, job_id: Callable[[], str]) -> str:  # noqa: ANN001
    """A worker on `queue` takes the job, blocks on the locked row mid-chunk and is killed with SIGKILL; its
    heartbeat key is expired (it would run out in 15 s). Returns the killed job's id."""
    with _row_locked(db, table, row_id):
        worker = _worker(app, queue)
        try:
            _wait_blocked(db, worker)
            killed = job_id()
            assert job_alive(connect(REDIS_URL), killed)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            stop_process(worker, grace=0, sig=signal.SIGKILL)
    _settled(db)
    connect(REDIS_URL).delete(heartbeat_key(killed))
    return killed
