"""Sync runs and feed builds whose worker died.

A worker killed mid-run (SIGKILL, OOM, a lost host) never gets to mark its run finished, and "one run per
source / one build per feed" would then refuse every new one. While a job runs, its worker beats a
heartbeat key in Redis (`workers.runner.heartbeat`); the sweeper fails a run that has been `running` for a
while and whose job has no heartbeat. The catalog or the published feed is untouched (the dead run never
reached its commit point), so failing it loses nothing (its staged changes are dropped), and the next run
starts cleanly. A sync that died past its commit point (phase "applying") is not failed but handed to a new
job, which applies the rest of its staged changes: the catalog is rolled forward, never left half applied.
Unless the worker died SHOPRELAY_CHUNK_ATTEMPTS times at the same staged chunk (a change that crashes or
exhausts it): that run is failed with the reason, the changes applied before it stay, the rest are dropped, and
the next sync brings the catalog level with the source. The deaths so far are noted in the run's problems.
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
from webapp.services.catalog.sources import discard_replaced_uploads
from webapp.services.platform.job_heartbeats import silent_jobs, started_jobs
from webapp.services.platform.row_jobs import Deaths, chunk_attempts, died_again, gave_up
from workers.queue import get_queue

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
        # A handed-over apply waits in the sync queue without a heartbeat: waiting is not dead.
        waiting = set(get_queue("sync", connection).get_job_ids()) if job_ids else set()
        silent = silent_jobs(connection, [job_id for job_id in job_ids if job_id not in waiting], wait)
        killed = started_jobs(connection, sorted(silent))  # ...and only a started job can have been killed
    except RedisError as exc:
        log.warning("cannot read job heartbeats to find orphaned runs: %s", exc)
        silent, killed = set(), set()
    failed: dict[str, int] = {}
    for model, rows in candidates.items():
        orphans = [row_id for row_id, job_id in rows if silent and job_id in silent]
        if model is SyncRun and orphans:
            resumed, stopped = _resume_applies(orphans, killed)
            if resumed:
                failed["sync_runs_resumed"] = len(resumed)
            if stopped:
                failed["sync_runs_stopped"] = len(stopped)
            orphans = [row_id for row_id in orphans if row_id not in resumed | stopped]
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
                discard_replaced_uploads(run.source_id)  # kept for this run's read, which ended here
    return failed


def _resume_applies(run_ids: list[int], killed: set[str]) -> tuple[set[int], set[int]]:
    """Hand the orphaned runs that were past their commit point to a new job (rolled forward), or fail one whose
    worker died SHOPRELAY_CHUNK_ATTEMPTS times at the same staged chunk. Returns (resumed, failed) run ids.

    A death is counted only when the dead job had started (`killed`): a job lost with a flushed Redis did not
    die at its chunk."""
    from webapp.services.catalog.sync import hand_over

    resumed, stopped = set(), set()
    for run in db.session.scalars(sa.select(SyncRun).where(SyncRun.id.in_(run_ids), SyncRun.status == "running",
                                                           SyncRun.phase == "applying")).all():
        at = db.session.scalar(sa.select(sa.func.min(catalog_stage.STAGE.c.id))
                               .where(catalog_stage.STAGE.c.run_id == run.id))
        previous = _noted_deaths(run)
        deaths = died_again(previous, str(at)) if at is not None and run.job_id in killed else previous
        if deaths is not None and deaths.count >= chunk_attempts() and at is not None:
            if _give_up(run, deaths, at):
                stopped.add(run.id)
            continue
        if deaths is not None and deaths != previous and not _note_deaths(run, deaths):
            continue  # someone else handed it over meanwhile
        hand_over(run)
        resumed.add(run.id)
        log.warning("sync run %s died while applying: handed to a new job to finish the apply%s", run.id,
                    f" ({deaths.count} of {chunk_attempts()} attempts at staged change {deaths.at})" if deaths else "")
    return resumed, stopped


DEATH_NOTE = "worker_died"  # the `field` of the run's problem that counts its worker's deaths


def _noted_deaths(run: SyncRun) -> Deaths | None:
    for problem in run.problems or []:
        if problem.get("field") == DEATH_NOTE and problem.get("died_at"):
            return Deaths(str(problem["died_at"]), int(problem.get("deaths", 1)))
    return None


def _note_deaths(run: SyncRun, deaths: Deaths) -> bool:
    """Keep the count in the run's problems (one entry, replaced; also what the run page shows), in an update
    conditional on the dead job: a second sweep judging the same death writes nothing."""
    note = {"row": None, "external_id": None, "field": DEATH_NOTE, "died_at": deaths.at, "deaths": deaths.count,
            "message": f"the worker applying this sync died at staged change {deaths.at} ({deaths.count} of "
                       f"{chunk_attempts()} attempts); the apply was handed to a new job"}
    problems = [note, *[p for p in run.problems or [] if p.get("field") != DEATH_NOTE]]
    done = db.session.execute(
        sa.update(SyncRun).where(SyncRun.id == run.id, SyncRun.status == "running", SyncRun.phase == "applying",
                                 SyncRun.job_id.is_not_distinct_from(run.job_id))
        .values(problems=problems).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    db.session.refresh(run)
    return bool(done)


def _give_up(run: SyncRun, deaths: Deaths, at: int) -> bool:
    """Fail an apply whose worker keeps dying at the same chunk, naming the chunk's staged rows; the changes
    applied before stay (they were committed past the commit point), the rest are dropped with the stage."""
    stage = catalog_stage.STAGE
    chunk = db.session.execute(sa.select(stage.c.id, stage.c.external_id).where(stage.c.run_id == run.id)
                               .order_by(stage.c.id).limit(catalog_stage.APPLY_CHUNK)).all()
    left = db.session.scalar(sa.select(sa.func.count()).select_from(stage).where(stage.c.run_id == run.id)) or 0
    total = run.added + run.updated + run.removed
    rows = (f"staged changes {chunk[0].id}–{chunk[-1].id} (products {chunk[0].external_id} … "
            f"{chunk[-1].external_id})") if chunk else f"staged change {at}"
    applied = max(total - left, 0)
    kept = (f"none of its {total:,} changes had been applied, so the catalog is as it was before this sync"
            if not applied else
            f"{applied:,} of its {total:,} changes had been applied and stay (the catalog is partly updated), the "
            f"other {left:,} were dropped") + "; fix those rows in the source and sync again"
    reason = gave_up(deaths, rows, kept)
    done = db.session.execute(
        sa.update(SyncRun).where(SyncRun.id == run.id, SyncRun.status == "running", SyncRun.phase == "applying",
                                 SyncRun.job_id.is_not_distinct_from(run.job_id))
        .values(status="failed", error=reason, finished_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if done:
        log.error("sync run %s: %s", run.id, reason)
    return bool(done)
