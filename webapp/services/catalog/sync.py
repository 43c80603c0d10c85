"""Sync runs: request one (never two at once per source), run it in short transactions, keep the previous
catalog on any failure before the commit point (webapp.services.catalog.stage)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from feeds.fetch import fetch_shopify_pages, fetch_to_file
from feeds.product import SourceError
from feeds.readers import read_products
from webapp.extensions import db
from webapp.models import Product, Source, SyncRun, utcnow
from webapp.services.catalog import changes as catalog_changes
from webapp.services.catalog import stage as catalog_stage
from webapp.services.catalog.diff import Diff, RemovalGuard, known_hash, stage_read, stored_index
from webapp.services.catalog.schedules import next_run_after
from webapp.services.catalog.sources import discard_replaced_uploads
from webapp.services.platform.crypto import decrypt_json
from webapp.services.platform.outbound_http import outbound_client
from webapp.services.platform.progress import set_progress
from webapp.services.platform.statements import dialect_name
from workers import shutdown

log = logging.getLogger(__name__)
ACTIVE = ("queued", "running")
ESTIMATED_NOTE = "total estimated from the share of the file read"  # progress while reading a file


class SyncInterrupted(SourceError):
    """The worker running the sync was asked to stop (warm shutdown) while reading: the run ends with the
    catalog as it was (nothing is applied before the commit point) and the same sync is queued again."""


class SyncAlreadyRunning(Exception):
    def __init__(self, run: SyncRun) -> None:
        super().__init__(f"source {run.source_id} already has sync #{run.id} {run.status}")
        self.run = run


def active_run(source_id: int) -> SyncRun | None:
    return db.session.scalar(sa.select(SyncRun).where(SyncRun.source_id == source_id,
                                                      SyncRun.status.in_(ACTIVE)).order_by(SyncRun.id.desc()))


def request_sync(source: Source, *, trigger: str = "manual", confirm_removals: bool = False,
                 enqueue: bool = True) -> SyncRun:
    """Create a queued run and its job, unless one is already queued or running (then raise)."""
    if dialect_name() == "postgresql":  # serialise concurrent requests for one source
        db.session.execute(sa.select(Source.id).where(Source.id == source.id).with_for_update())
    current = active_run(source.id)
    if current is not None:
        db.session.rollback()
        raise SyncAlreadyRunning(current)
    run = SyncRun(source_id=source.id, status="queued", trigger=trigger, confirm_removals=confirm_removals,
                  problems=[])
    db.session.add(run)
    db.session.commit()
    if enqueue:
        enqueue_run(run)
    return run


def enqueue_run(run: SyncRun) -> None:
    from redis.exceptions import RedisError

    from workers.queue import JOB_SYNC_SOURCE, connect, enqueue

    url = current_app.config.get("REDIS_URL")
    if not url:
        return
    try:
        job = enqueue(connect(url), "sync", JOB_SYNC_SOURCE, run.id, job_id=f"sync-run-{run.id}",
                      job_timeout=4 * 3600)
    except RedisError as exc:  # the dispatcher re-enqueues queued runs later
        log.warning("could not enqueue sync run %s: %s", run.id, exc)
        return
    run.job_id = job.id
    db.session.commit()


def run_sync(run_id: int) -> SyncRun:
    """Execute a queued run. Every failure before the commit point leaves the catalog as it was and says why.

    Phase 1 (`phase` "reading") reads and diffs the source and stages the changes in short commits; the
    guards are checked at its end. One short transaction then marks the run "applying" (the commit point),
    and phase 2 (`apply_run`) moves the staged changes into the catalog in short transactions.
    """
    claimed = db.session.execute(sa.update(SyncRun).where(SyncRun.id == run_id, SyncRun.status == "queued")
                                 .values(status="running", phase="reading", started_at=utcnow(), error=None)
                                 ).rowcount
    db.session.commit()
    run = db.session.get(SyncRun, run_id)
    if not claimed:  # already taken by another worker, or finished
        return run
    source = run.source
    catalog_stage.discard_leftovers(source.id)
    try:
        path, fetched = _obtain_file(source)
        if fetched is not None and fetched.not_modified:
            return _not_modified(run, source)
        diff = _read_and_apply(run, source, path)
        if fetched is not None:
            source.http_etag, source.http_last_modified = fetched.etag, fetched.last_modified
            source.content_digest = fetched.sha256
    except (SourceError, RemovalGuard) as exc:
        catalog_stage.discard(run_id)
        status = "held" if isinstance(exc, RemovalGuard) and "would remove" in str(exc) else "failed"
        run = _finish(db.session.get(SyncRun, run_id), status, error=str(exc))
        if isinstance(exc, SyncInterrupted):
            request_sync(run.source, trigger=run.trigger, confirm_removals=run.confirm_removals)
        return run
    except Exception as exc:
        catalog_stage.discard(run_id)
        log.exception("sync run %s crashed", run_id)
        _finish(db.session.get(SyncRun, run_id), "failed", error=f"internal error: {type(exc).__name__}: {exc}")
        raise
    run.added, run.updated, run.unchanged, run.removed = diff.added, diff.updated, diff.unchanged, diff.removed
    run.skipped, run.problems = diff.problem_count, diff.problems
    # The commit point: from here on the staged changes are applied (rolled forward), never thrown away.
    if not db.session.execute(sa.update(SyncRun).where(SyncRun.id == run_id, SyncRun.status == "running",
                                                       SyncRun.phase == "reading")
                              .values(phase="applying", apply_started_at=utcnow())).rowcount:
        catalog_stage.discard(run_id)  # the sweeper judged this run dead meanwhile: it stays failed
        return db.session.get(SyncRun, run_id)
    db.session.commit()
    return apply_run(run_id)


def apply_run(run_id: int) -> SyncRun:
    """Phase 2: apply the run's staged changes to the catalog, one short transaction per chunk, then finish.

    Safe to call again on a run whose worker died mid-apply (the sweeper does): it applies what is still
    staged. A worker asked to stop hands the rest to a new job instead of finishing.
    """
    from webapp.services.catalog.changes import product_targets

    run = db.session.get(SyncRun, run_id)
    if run is None or run.status != "running" or run.phase != "applying":
        return run
    source_id, with_events = run.source_id, bool(product_targets())
    total = catalog_stage.staged_count(run_id)
    done, touched = 0, set()
    while True:
        if shutdown.requested():
            hand_over(db.session.get(SyncRun, run_id))
            return db.session.get(SyncRun, run_id)
        applied, got = catalog_stage.apply_chunk(run_id, source_id, with_events)
        if not applied:
            break
        done, touched = done + applied, touched | got
        set_progress("sync", run_id, done, total, note="applying")
    return _succeed(run_id, touched)


def hand_over(run: SyncRun) -> None:
    """Queue the rest of an apply as a new job (a stopping worker, or the sweeper for a dead one)."""
    from redis.exceptions import RedisError

    from workers.queue import JOB_APPLY_SYNC, connect, enqueue

    url = current_app.config.get("REDIS_URL")
    job_id = f"sync-run-{run.id}-apply-{uuid.uuid4().hex[:8]}"
    previous = run.job_id
    if not db.session.execute(sa.update(SyncRun).where(SyncRun.id == run.id, SyncRun.status == "running",
                                                       SyncRun.phase == "applying",
                                                       SyncRun.job_id.is_not_distinct_from(previous))
                              .values(job_id=job_id)).rowcount:
        db.session.rollback()  # someone else took it over first
        return
    db.session.commit()
    if not url:
        return
    try:
        enqueue(connect(url), "sync", JOB_APPLY_SYNC, run.id, job_id=job_id, job_timeout=4 * 3600)
    except RedisError as exc:  # the job id has no heartbeat: the sweeper hands it over again later
        log.warning("could not enqueue the rest of sync run %s: %s", run.id, exc)


def _succeed(run_id: int, touched: set[int]) -> SyncRun:
    """Everything is applied: count, mark succeeded (once, whoever applied the last chunk), rebuild feeds."""
    db.session.rollback()
    run = db.session.get(SyncRun, run_id)
    source = run.source
    count = db.session.scalar(
        sa.select(sa.func.count()).select_from(Product).where(Product.source_id == source.id)) or 0
    if not db.session.execute(sa.update(SyncRun).where(SyncRun.id == run_id, SyncRun.status == "running",
                                                       SyncRun.phase == "applying")
                              .values(phase="applied")).rowcount:
        db.session.rollback()
        return db.session.get(SyncRun, run_id)
    source.product_count = count
    run = _finish(run, "succeeded")
    diff = Diff(added=run.added, updated=run.updated, unchanged=run.unchanged, removed=run.removed,
                touched=touched)
    catalog_changes.after_sync(source, run, diff)
    return run


def applying(source_ids: list[int]) -> bool:
    """Whether any of these sources is in the middle of applying a sync (its catalog is half old, half new)."""
    return bool(source_ids) and db.session.scalar(sa.select(sa.func.count()).select_from(SyncRun).where(
        SyncRun.source_id.in_(source_ids), SyncRun.status == "running", SyncRun.phase == "applying")) > 0


def applied_since(source_ids: list[int], since: datetime) -> bool:
    """Whether an apply of these sources ran at any time after `since` (a read from then may mix catalogs)."""
    return bool(source_ids) and db.session.scalar(sa.select(sa.func.count()).select_from(SyncRun).where(
        SyncRun.source_id.in_(source_ids), SyncRun.apply_started_at.is_not(None),
        SyncRun.added + SyncRun.updated + SyncRun.removed > 0,
        sa.or_(SyncRun.phase == "applying", SyncRun.apply_started_at >= since))) > 0


def _obtain_file(source: Source):  # noqa: ANN202
    """The file to read: the uploaded one, or a fresh download (conditional GET) of the URL."""
    if source.kind == "push":
        raise SourceError("push sources are updated by POST /api/v1/products; there is nothing to fetch")
    if not source.location:
        if not source.upload_path or not Path(source.upload_path).exists():
            raise SourceError("no file uploaded and no URL set for this source")
        return Path(source.upload_path), None
    credentials = decrypt_json(source.credentials_encrypted)
    auth = (credentials["username"], credentials.get("password", "")) if credentials.get("username") else None
    headers = {credentials["header_name"]: credentials["header_value"]} if credentials.get("header_name") else None
    config = current_app.config
    dest = Path(config["UPLOADS_DIR"]) / f"source-{source.id}.download"
    with outbound_client(config["FETCH_TIMEOUT"]) as client:  # no hop may reach an inward address
        common = {"basic_auth": auth, "headers": headers, "max_bytes": config["SOURCE_MAX_BYTES"],
                  "timeout": config["FETCH_TIMEOUT"], "client": client}
        if source.kind == "shopify":
            return dest, fetch_shopify_pages(source.location, dest, **common)
        have_file = dest.exists() and (source.http_etag is not None or source.http_last_modified is not None)
        return dest, fetch_to_file(source.location, dest, etag=source.http_etag if have_file else None,
                                   last_modified=source.http_last_modified if have_file else None, **common)


def _read_and_apply(run: SyncRun, source: Source, path: Path) -> Diff:
    def progress(done: int, total: int | None) -> None:
        estimated = total is not None and stream.stats.rows_total is None and done < total
        set_progress("sync", run.id, done, total, note=ESTIMATED_NOTE if estimated else "")
        if shutdown.requested():
            raise SyncInterrupted(f"stopped after {done:,} rows because its worker was shutting down; the "
                                  "catalog is unchanged and the sync was queued again")

    index = stored_index(source.id)
    stream = read_products(source.kind, path, mapping=source.mapping, options=source.options or {},
                           on_progress=progress, known=known_hash(index),
                           max_bytes=current_app.config["SOURCE_MAX_BYTES"])
    share = source.max_remove_share if source.max_remove_share is not None else \
        current_app.config["SYNC_MAX_REMOVE_SHARE"]
    try:
        diff = stage_read(run.id, source.id, stream, max_remove_share=share, confirm_removals=run.confirm_removals,
                          index=index)
    finally:
        stream.close()
    run.rows_read, run.rows_total = stream.stats.rows_read, stream.stats.rows_read
    if stream.stats.skipped:
        run.problems = [{"row": None, "message": f"{count} rows skipped: {reason}"}
                        for reason, count in stream.stats.skipped.items()]
    from webapp.services.catalog.sync_notes import read_notes
    diff.problems[:0] = read_notes(stream.stats, source.kind)  # first: the run keeps diff.problems
    return diff


def _not_modified(run: SyncRun, source: Source) -> SyncRun:
    run.not_modified = True
    run.unchanged = source.product_count
    return _finish(run, "succeeded")


def _finish(run: SyncRun, status: str, *, error: str | None = None) -> SyncRun:
    run.status, run.finished_at, run.error = status, utcnow(), error
    if run.phase == "reading":  # ended before its commit point
        run.phase = None
    source = db.session.get(Source, run.source_id)
    if source is not None:
        source.next_run_at = next_run_after(source.schedule, source.timezone, datetime.now(UTC))
    db.session.commit()
    discard_replaced_uploads(run.source_id)  # an upload a URL replaced while this run was reading it
    return run
