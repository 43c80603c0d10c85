"""A reconcile whose worker dies at the same point again and again (a product that crashes the worker or runs it
out of memory) is not resumed for ever: after SHOPRELAY_CHUNK_ATTEMPTS deaths with no progress in between it
fails with the reason; a run that got further between deaths is resumed each time."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from tests.conftest import both_databases
from webapp.models import CatalogReconcile, utcnow
from webapp.services.platform.row_jobs import deaths_in
from webapp.services.platform_catalogs import runs
from workers.queue import get_queue

pytestmark = both_databases


def _run(api, db, fake) -> CatalogReconcile:  # noqa: ANN001
    response = api.post("/api/v1/destinations", json={
        "name": "Klaviyo", "kind": "klaviyo", "credentials": {"api_key": fake.klaviyo_key},
        "base_url": fake.base_url("klaviyo"), "catalog": "api"})
    assert response.status_code == 201, response.get_json()
    return db.session.scalars(sa.select(CatalogReconcile)).one()


def _died_at(db, redis, run: CatalogReconcile, done: int) -> None:  # noqa: ANN001
    """A worker took the run's job, got to `done` products of the items phase, and was killed (no heartbeat)."""
    get_queue("sync", redis).empty()
    db.session.execute(sa.update(CatalogReconcile).where(CatalogReconcile.id == run.id).values(
        status="running", phase="items and variants", done=done, total=900,
        started_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()


def _recover() -> dict[str, int]:
    return runs.recover(grace=timedelta(0), wait=lambda _: None)


def _fresh(db, run: CatalogReconcile) -> CatalogReconcile:  # noqa: ANN001
    db.session.expire_all()
    return db.session.get(CatalogReconcile, run.id)


def test_deaths_at_one_point_fail_the_run(app, api, db, redis, fake) -> None:  # noqa: ANN001
    run = _run(api, db, fake)
    for death in (1, 2):
        _died_at(db, redis, run, done=300)
        assert _recover()["resumed"] == 1
        assert deaths_in(_fresh(db, run).job_id).count == death
        assert _fresh(db, run).job_id in get_queue("sync", redis).get_job_ids()
    get_queue("sync", redis).empty()  # a flushed Redis loses the queued job: queued again, not a death
    db.session.execute(sa.update(CatalogReconcile).where(CatalogReconcile.id == run.id).values(
        status="queued", created_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()
    assert _recover()["requeued"] == 1 and deaths_in(_fresh(db, run).job_id).count == 2
    _died_at(db, redis, run, done=300)
    assert _recover()["failed"] == 1
    failed = _fresh(db, run)
    assert failed.status == "failed" and failed.finished_at is not None
    assert failed.error.startswith("stopped after 3 attempts at items and variants (after 300 of 900 products): "
                                   "the worker died each time"), failed.error
    assert "the next reconcile" in failed.error
    assert get_queue("sync", redis).get_job_ids() == []
    status = api.get(f"/api/v1/destinations/{failed.destination_id}/catalog").get_json()
    assert "stopped after 3 attempts" in str(status)


def test_a_run_that_gets_further_between_deaths_is_resumed_each_time(app, api, db, redis, fake) -> None:  # noqa: ANN001
    run = _run(api, db, fake)
    for done in (100, 200, 300, 400, 500):
        _died_at(db, redis, run, done=done)
        assert _recover()["resumed"] == 1
        assert deaths_in(_fresh(db, run).job_id).count == 1
    assert _fresh(db, run).status == "running"
