"""Reconcile runs: at most one queued or running per destination, requested when the catalog is switched on
(full), nightly (full), after every sync (the changes), or by hand; recovered when their worker died, but not
for ever: SHOPRELAY_CHUNK_ATTEMPTS deaths at the same point (phase and products done) fail the run."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from webapp.extensions import db
from webapp.models import CatalogReconcile, Destination, utcnow
from webapp.services.platform.job_heartbeats import silent_jobs
from webapp.services.platform.row_jobs import Deaths, chunk_attempts, deaths_in, died_again, gave_up

log = logging.getLogger(__name__)
JOB_RECONCILE = "workers.jobs.catalogs.reconcile_catalog_job"
ACTIVE = ("queued", "running")
TAKES_RECONCILE = ("klaviyo", "sendlane")  # platforms whose catalog a reconcile keeps (workers/catalogs)
READS_BACK = ("klaviyo",)  # ... and which of them list what they hold (the nightly run reads it back)
GRACE = timedelta(seconds=30)  # a run is marked running a moment after its job's first beat
JOB_TIMEOUT = 6 * 3600


def reconciled(destination: Destination) -> bool:
    return destination.catalog == "api" and destination.kind in TAKES_RECONCILE and destination.enabled


def active_run(destination_id: int) -> CatalogReconcile | None:
    return db.session.scalars(sa.select(CatalogReconcile).where(
        CatalogReconcile.destination_id == destination_id, CatalogReconcile.status.in_(ACTIVE))
        .order_by(CatalogReconcile.id.desc()).limit(1)).first()


def last_run(destination_id: int) -> CatalogReconcile | None:
    return db.session.scalars(sa.select(CatalogReconcile).where(CatalogReconcile.destination_id == destination_id)
                              .order_by(CatalogReconcile.id.desc()).limit(1)).first()


def request_reconcile(destination: Destination, trigger: str, *, full: bool,
                      enqueue_job: bool = True) -> CatalogReconcile | None:
    """Queue a reconcile unless one is already waiting (which then also reads the platform back when asked).
    A run already going compares the whole catalog anyway; a change after it started gets its own run."""
    if not reconciled(destination):
        return None
    run = active_run(destination.id)
    if run is not None and run.status == "queued":
        if full and not run.full:
            run.full = True
            db.session.commit()
        return run
    run = CatalogReconcile(destination_id=destination.id, trigger=trigger, full=full, counts={})
    db.session.add(run)
    db.session.commit()
    if enqueue_job:
        enqueue(run)
    return run


def catalog_switched(destination: Destination, before: str) -> None:
    """Switching the catalog on starts a full reconcile: the platform gets the whole catalog."""
    if destination.catalog == "api" and before != "api":
        request_reconcile(destination, "enabled", full=True)


def enqueue(run: CatalogReconcile, deaths: Deaths | None = None) -> None:
    """Queue the run's job; a job handed over after its worker died carries the deaths so far in its id."""
    from workers.queue import connect
    from workers.queue import enqueue as enqueue_job

    url = current_app.config.get("REDIS_URL")
    run.job_id = f"catalog-{run.id}-{int(utcnow().timestamp())}"
    if deaths is not None:
        run.job_id += f"-died{deaths.count}at{deaths.at}"
    db.session.commit()
    if not url:
        return
    try:
        enqueue_job(connect(url), "sync", JOB_RECONCILE, run.id, job_id=run.job_id, job_timeout=JOB_TIMEOUT)
    except RedisError as exc:  # the recovery job enqueues it again
        log.warning("could not queue catalog reconcile %s: %s", run.id, exc)


def catalog_destinations() -> list[Destination]:
    rows = db.session.scalars(sa.select(Destination).where(Destination.catalog == "api").order_by(Destination.id))
    return [destination for destination in rows if reconciled(destination)]


def after_sync() -> None:
    """A sync changed products: send the changes (an incremental reconcile of each catalog)."""
    for destination in catalog_destinations():
        request_reconcile(destination, "sync", full=False)


def nightly() -> dict[str, int]:
    """A full reconcile where the platform lists what it holds (whatever it lost is sent again); elsewhere
    the changes the ledger does not show as confirmed (sending a whole catalog every night to a platform
    that cannot say what it holds would take hours at Sendlane's rate)."""
    runs = [request_reconcile(destination, "nightly", full=destination.kind in READS_BACK)
            for destination in catalog_destinations()]
    return {"requested": len([run for run in runs if run is not None])}


def recover(grace: timedelta = GRACE, wait: Callable[[float], None] = time.sleep) -> dict[str, int]:
    """Runs whose worker died go on in a new job (the ledger makes that safe); queued runs whose job was lost
    are queued again; a catalog switched on without any run gets its first (full) one."""
    from workers.queue import connect, get_queue

    url = current_app.config.get("REDIS_URL")
    if not url:
        return {}
    connection = connect(url)
    cutoff = utcnow() - grace
    candidates = [run for run in db.session.scalars(sa.select(CatalogReconcile).where(
        CatalogReconcile.status.in_(ACTIVE))).all() if (run.started_at or run.created_at) <= cutoff]
    try:
        waiting = set(get_queue("sync", connection).get_job_ids())
        silent = silent_jobs(connection, [run.job_id for run in candidates if run.job_id and
                                          run.job_id not in waiting], wait)
    except RedisError:
        return {}
    counts = {"resumed": 0, "requeued": 0, "started": 0}
    for run in candidates:
        if run.job_id and (run.job_id in waiting or run.job_id not in silent):
            continue
        deaths = deaths_in(run.job_id)
        if run.status == "running":  # its worker died there; a queued run's job was only lost (nothing ran)
            deaths = died_again(deaths, _position(run))
            if deaths.count >= chunk_attempts():
                _give_up(run, deaths)
                counts["failed"] = counts.get("failed", 0) + 1
                continue
        counts["resumed" if run.status == "running" else "requeued"] += 1
        log.warning("catalog reconcile %s lost its job (%s): queued again", run.id, run.status)
        enqueue(run, deaths)
    for destination in catalog_destinations():
        if last_run(destination.id) is None:
            request_reconcile(destination, "enabled", full=True)
            counts["started"] += 1
    return counts


def _position(run: CatalogReconcile) -> str:
    """Where a run stood (its phase and how many products it had done), short enough for a job id."""
    return hashlib.sha256(f"{run.phase}:{run.done}".encode()).hexdigest()[:10]


def _give_up(run: CatalogReconcile, deaths: Deaths) -> None:
    """Fail a run whose worker died `deaths.count` times at the same point, instead of killing workers for ever."""
    where = f"{run.phase or 'its start'} (after {run.done:,} of {run.total or 0:,} products)"
    run.status, run.finished_at = "failed", utcnow()
    run.error = gave_up(deaths, where, "what earlier jobs sent stays at the platform and in the ledger, so the next "
                        "reconcile (nightly, after a sync, or Reconcile now) goes on from there once the cause "
                        "is found")[:1000]
    db.session.commit()
    log.error("catalog reconcile %s: %s", run.id, run.error)
