"""The cron dispatcher: start every source whose schedule came due, re-enqueue runs whose job was lost."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Source, SyncRun, utcnow
from webapp.services.catalog.sync import SyncAlreadyRunning, enqueue_run, request_sync

LOST_JOB_AFTER = timedelta(minutes=10)


def dispatch_due_syncs() -> dict:
    now = utcnow()
    started, busy = [], []
    due = db.session.scalars(sa.select(Source).where(
        Source.enabled, Source.kind != "push", Source.next_run_at.is_not(None), Source.next_run_at <= now)
        .order_by(Source.next_run_at)).all()
    for source in due:
        try:
            run = request_sync(source, trigger="schedule")
            started.append(run.id)
        except SyncAlreadyRunning:
            busy.append(source.id)
    # A queued run whose job vanished (Redis flushed or restarted) is enqueued again.
    requeued = []
    for run in db.session.scalars(sa.select(SyncRun).where(
            SyncRun.status == "queued", SyncRun.created_at < now - LOST_JOB_AFTER)).all():
        enqueue_run(run)
        requeued.append(run.id)
    return {"started": started, "already_running": busy, "requeued": requeued}
