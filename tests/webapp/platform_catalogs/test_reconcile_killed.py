"""An operator kills the worker mid-reconcile (kill -9, a real worker process): the run is picked up by a new
job, the jobs left in flight are read back, and the platform ends holding the catalog exactly once."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import sqlalchemy as sa

from tests.conftest import both_databases
from tests.processes import stop_process
from tests.webapp.catalog.sync_helpers import worker_process
from webapp.models import CatalogEntry, CatalogReconcile, Destination
from webapp.services.platform_catalogs import runs
from workers.queue import HEARTBEAT_TTL_SECONDS, heartbeat_key, job_alive

pytestmark = both_databases
PRODUCTS = 900  # 9 item jobs and 9 variant jobs, each polled while "processing": long enough to kill mid-way


def _wait(condition, seconds: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_killed_reconcile_goes_on_and_sends_everything_once(app, api, db, redis, fake) -> None:  # noqa: ANN001
    upserts = [{"external_id": f"P{n}", "item_group_id": f"G{n // 3}", "title": f"Product {n}", "price": 5 + n % 7,
                "link": f"https://shop.test/p/{n}", "categories": [f"Cat {n % 4}"],
                "inventory_quantity": n % 5} for n in range(PRODUCTS)]
    assert api.post("/api/v1/products", json={"upserts": upserts}).status_code == 202
    response = api.post("/api/v1/destinations", json={
        "name": "Klaviyo", "kind": "klaviyo", "credentials": {"api_key": fake.klaviyo_key},
        "base_url": fake.base_url("klaviyo"), "catalog": "api"})
    assert response.status_code == 201
    destination_id = response.get_json()["id"]
    run = db.session.scalars(sa.select(CatalogReconcile)).one()
    fake.set_klaviyo_job_polls(3)  # slower jobs: time to kill the worker mid-way

    def variant_jobs() -> int:
        return sum(1 for r in list(fake.requests) if r.method == "POST" and "catalog-variant-bulk" in r.path)

    worker = worker_process(app, "sync")
    try:
        _wait(lambda: variant_jobs() >= 2, 120, "the reconcile to send variants")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        stop_process(worker, grace=0, sig=signal.SIGKILL)
    db.session.expire_all()
    assert db.session.get(CatalogReconcile, run.id).status == "running"
    assert len(fake.klaviyo_variants) < PRODUCTS, "killed before the end"
    # The heartbeat lapses: killed and reaped, nothing beats the key any more; it expires within
    # HEARTBEAT_TTL_SECONDS on its own (-1, never, fails here). Expired now rather than waited out (15 s).
    key = heartbeat_key(db.session.get(CatalogReconcile, run.id).job_id)
    ttl = redis.ttl(key)
    assert ttl == -2 or 0 <= ttl <= HEARTBEAT_TTL_SECONDS, ttl
    redis.delete(key)
    assert not job_alive(redis, db.session.get(CatalogReconcile, run.id).job_id)
    assert runs.recover(grace=timedelta(0), wait=lambda _: None) == {"resumed": 1, "requeued": 0, "started": 0}
    worker = worker_process(app, "sync")
    try:
        _wait(lambda: (db.session.expire_all() or db.session.get(CatalogReconcile, run.id).status) not in
              runs.ACTIVE, 180, "the resumed reconcile to finish")
    finally:
        # never leave a worker behind for the next tests' queues (killed and reaped past 30 s, and that fails)
        assert stop_process(worker, grace=30) != -signal.SIGKILL, "the worker did not stop within 30 s of SIGTERM"
    finished = db.session.get(CatalogReconcile, run.id)
    assert finished.status == "succeeded", finished.error
    assert len(fake.klaviyo_variants) == PRODUCTS and len(fake.klaviyo_catalog) == PRODUCTS // 3
    assert len(fake.klaviyo_categories) == 4
    assert all(v["item"] == f"$custom:::$default:::G{int(k.rsplit('P', 1)[1]) // 3}"
               for k, v in fake.klaviyo_variants.items())
    table = CatalogEntry.__table__
    assert db.session.scalar(sa.select(sa.func.count()).select_from(table).where(
        table.c.action.is_not(None) | table.c.error.is_not(None))) == 0
    status = api.get(f"/api/v1/destinations/{destination_id}/catalog").get_json()
    assert (status["state"], status["variants"], status["items"]) == ("in_step", PRODUCTS, PRODUCTS // 3)
    assert db.session.get(Destination, destination_id).catalog == "api"
