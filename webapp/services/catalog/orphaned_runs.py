"""Sync runs and feed builds whose worker died.

A worker killed mid-run (SIGKILL, OOM, a lost host) never gets to mark its run finished, and "one run per
source / one build per feed" would then refuse every new one. While a job runs, its worker beats a
heartbeat key in Redis (`workers.runner.heartbeat`); the sweeper fails a run that has been `running` for a
while and whose job has no heartbeat. The catalog or the published feed is untouched (the dead run never
reached its commit point), so failing it loses nothing (its staged changes are dropped), and the next run
starts cleanly. A sync that died past its commit point (phase "applying") is not failed but handed to a new
job, which applies the rest of its staged changes: the catalog is rolled forward, never left half applied.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError

from webapp.extensions import db
from webapp.models import FeedBuild, SyncRun, utcnow
from webapp.services.catalog import stage as catalog_stage
from webapp.services.platform.job_heartbeats import silent_jobs

log = logging.getLogger(__name__)

# A run's row is marked running a moment before its first beat; the grace also covers clock skew.
GRACE = timedelta(minutes=2)

REASONS = {
    SyncRun: "the worker running this sync stopped (killed or lost) before it finished; "
             "the catalog was left as it was — sync again",
    FeedBuild: "the worker building this feed stopped (killed or lost) before it finished; "
               "the last published file is still served — build again",
}


def fail_orphaned_runs(connection: Redis, now: datetime | None = None,
                       wait: Callable[[float], None] = time.sleep) -> dict[str, int]:
    """Fail every sync run / feed build `running` past the grace whose job has no heartbeat.

    Only runs that went through the queue (a job id) are judged: `shoprelay sources sync` runs in the
    command's own process, not in a worker.
    """
    cutoff = (now or utcnow()) - GRACE
    candidates = {model: db.session.execute(
        sa.select(model.id, model.job_id).where(model.status == "running", model.job_id.is_not(None),
                                                model.started_at < cutoff)).all() for model in REASONS}
    job_ids = [job_id for rows in candidates.values() for _, job_id in rows]
    try:
        silent = silent_jobs(connection, job_ids, wait) if job_ids else set()
    except RedisError as exc:
        log.warning("cannot read job heartbeats to find orphaned runs: %s", exc)
        silent = set()
    failed: dict[str, int] = {}
    for model, rows in candidates.items():
        orphans = [row_id for row_id, job_id in rows if silent and job_id in silent]
        if model is SyncRun and orphans:
            resumed = _resume_applies(orphans)
            if resumed:
                failed["sync_runs_resumed"] = len(resumed)
            orphans = [row_id for row_id in orphans if row_id not in resumed]
        if orphans:
            # Conditional on still running: a run that finished meanwhile keeps its real outcome.
            failed[model.__tablename__] = db.session.execute(
                sa.update(model).where(model.id.in_(orphans), model.status == "running")
                .values(status="failed", error=REASONS[model], finished_at=utcnow())
                .execution_options(synchronize_session=False)).rowcount
            log.warning("failed orphaned %s %s: no worker is running them", model.__tablename__, orphans)
    db.session.commit()
    if SyncRun in candidates:
        for run_id in [row_id for row_id, _ in candidates[SyncRun]]:
            run = db.session.get(SyncRun, run_id)
            if run is not None and run.status == "failed":
                catalog_stage.discard(run_id)
    return failed


def _resume_applies(run_ids: list[int]) -> set[int]:
    """Hand the orphaned runs that were past their commit point to a new job (rolled forward)."""
    from webapp.services.catalog.sync import hand_over

    resumed = set()
    for run in db.session.scalars(sa.select(SyncRun).where(SyncRun.id.in_(run_ids), SyncRun.status == "running",
                                                           SyncRun.phase == "applying")).all():
        hand_over(run)
        resumed.add(run.id)
        log.warning("sync run %s died while applying: handed to a new job to finish the apply", run.id)
    return resumed
