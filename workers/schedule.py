"""Periodic jobs declared as data and registered with RQ's own cron scheduler.

Every entry is idempotent to run twice, so a restarted scheduler or two overlapping ticks are harmless.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from rq.cron import CronScheduler

from workers.queue import connect


@dataclass(frozen=True)
class Periodic:
    name: str
    func: str                   # dotted path of the job function
    queue: str
    cron: str | None = None     # cron expression (scheduler's local time)...
    interval: int | None = None  # ...or every N seconds
    timeout: int = 600
    interval_setting: str | None = None  # the setting (config key) that replaces `interval` when set


PERIODIC_JOBS: tuple[Periodic, ...] = (
    # Due retries, lost signals, runs whose worker died: every SHOPRELAY_SWEEP_SECONDS (default 60).
    Periodic("sweep", "workers.jobs.sweep.sweep_job", "delivery", interval=60, interval_setting="SWEEP_SECONDS"),
    Periodic("dispatch-syncs", "workers.jobs.sync.dispatch_due_syncs_job", "sync", interval=60),
    Periodic("abandoned-checkouts", "workers.jobs.checkouts.detect_abandoned_checkouts_job", "default",
             interval=300),
    # Quintiles are relative to the whole base, so they are rescored together; only changed rows are written.
    Periodic("refresh-rfm", "workers.jobs.insight.refresh_rfm_job", "default", cron="*/10 * * * *",
             timeout=3600),
    # Platform catalogs (Klaviyo's Catalog API): a full reconcile nightly, lost runs picked up every 5 minutes.
    Periodic("catalogs-nightly", "workers.jobs.catalogs.nightly_catalogs_job", "sync", cron="15 3 * * *"),
    Periodic("catalogs-recover", "workers.jobs.catalogs.recover_catalogs_job", "sync", interval=300),
    # Window replays whose job was lost (a flushed Redis) or whose runner died go on from their cursor.
    Periodic("replays-recover", "workers.jobs.replays.recover_replays_job", "default", interval=60,
             interval_setting="SWEEP_SECONDS"),
    # Erasures: settled once every destination answered its deletion request; lost runs go on from their cursor.
    Periodic("erasures", "workers.jobs.erasures.recover_erasures_job", "default", interval=60,
             interval_setting="SWEEP_SECONDS"),
    # The onsite person index (erasures read only the person's browsers): backfilled once after an upgrade, a
    # flushed Redis or a new SECRET_KEY; otherwise one GET per tick.
    Periodic("onsite-person-index", "workers.jobs.erasures.onsite_person_index_job", "default", interval=300,
             timeout=3600),
    Periodic("retention", "workers.jobs.retention.prune_job", "default", cron="45 3 * * *", timeout=3600),
    # Alerts: open and close incidents from what holds now, and sweep notices due (retries, lost signals).
    Periodic("alerts", "workers.jobs.alerts.evaluate_alerts_job", "alerts", interval=60, timeout=300),
)


def periodic_jobs(config: Mapping[str, Any]) -> tuple[Periodic, ...]:
    """PERIODIC_JOBS with the intervals the operator's settings give (`interval_setting`)."""
    return tuple(replace(job, interval=config[job.interval_setting])
                 if job.interval_setting and config.get(job.interval_setting) else job for job in PERIODIC_JOBS)


def resolve(path: str) -> Callable:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def build_scheduler(redis_url: str, jobs: tuple[Periodic, ...] = PERIODIC_JOBS) -> CronScheduler:
    scheduler = CronScheduler(connection=connect(redis_url))
    for job in jobs:
        scheduler.register(resolve(job.func), job.queue, cron=job.cron, interval=job.interval,
                           job_timeout=job.timeout, result_ttl=600, failure_ttl=7 * 24 * 3600, name=job.name)
    return scheduler


def run_scheduler(redis_url: str) -> None:
    """Runs in the `shoprelay scheduler` command's app context; its side thread watches the workers."""
    from flask import current_app

    from workers.watchdog import watch_workers

    watch_workers(current_app._get_current_object())  # type: ignore[attr-defined]
    build_scheduler(redis_url, periodic_jobs(current_app.config)).start()
