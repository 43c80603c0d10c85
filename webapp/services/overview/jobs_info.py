"""What the background side is doing, read from RQ's own Redis registries (every host's workers).

Queues, workers, failed jobs with their tracebacks, and the cron scheduler's heartbeat and the last
run of each periodic job. Redis being down is a state the page shows, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker
from rq.cron import CronScheduler, get_cron_job_history_key, get_cron_job_ids
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.results import Result

from workers.queue import QUEUE_NAMES, get_queue
from workers.schedule import Periodic, periodic_jobs

SCHEDULER_ALIVE_WITHIN = timedelta(minutes=2)
FAILED_JOBS_SHOWN = 50


@dataclass(frozen=True)
class QueueStats:
    name: str
    queued: int
    started: int
    failed: int
    finished: int
    scheduled: int


@dataclass(frozen=True)
class WorkerRow:
    name: str
    state: str
    queues: list[str]
    current_job: str | None
    last_heartbeat: datetime | None
    successful: int
    failed: int


@dataclass(frozen=True)
class FailedJob:
    id: str
    queue: str
    func_name: str
    error: str              # the exception's last line
    traceback: str
    ended_at: datetime | None


@dataclass(frozen=True)
class SchedulerRow:
    name: str
    hostname: str
    last_heartbeat: datetime | None
    alive: bool


@dataclass(frozen=True)
class PeriodicRow:
    name: str
    func: str
    queue: str
    schedule: str
    last_run: datetime | None
    last_status: str | None   # status of the newest job it enqueued, while RQ still has it
    next_run: datetime | None


@dataclass
class JobsOverview:
    now: datetime
    redis_error: str | None = None
    queues: list[QueueStats] = field(default_factory=list)
    workers: list[WorkerRow] = field(default_factory=list)
    failed_jobs: list[FailedJob] = field(default_factory=list)
    schedulers: list[SchedulerRow] = field(default_factory=list)
    periodic: list[PeriodicRow] = field(default_factory=list)

    @property
    def scheduler_alive(self) -> bool:
        return any(s.alive for s in self.schedulers)


def jobs_overview(connection: Redis, now: datetime | None = None) -> JobsOverview:
    overview = JobsOverview(now=now or datetime.now(UTC))
    try:
        connection.ping()
        overview.queues = [queue_stats(connection, name) for name in QUEUE_NAMES]
        overview.workers = worker_rows(connection)
        overview.failed_jobs = failed_jobs(connection)
        overview.schedulers = scheduler_rows(connection, overview.now)
        overview.periodic = periodic_rows(connection, CronScheduler.all(connection, cleanup=False))
    except RedisError as exc:
        overview.redis_error = f"{type(exc).__name__}: {exc}"
    return overview


def queue_stats(connection: Redis, name: str) -> QueueStats:
    queue = get_queue(name, connection)
    return QueueStats(name=name, queued=queue.count, started=queue.started_job_registry.count,
                      failed=queue.failed_job_registry.count, finished=queue.finished_job_registry.count,
                      scheduled=queue.scheduled_job_registry.count)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def worker_rows(connection: Redis) -> list[WorkerRow]:
    rows = []
    for worker in Worker.all(connection=connection):
        job = worker.get_current_job()
        rows.append(WorkerRow(name=worker.name, state=worker.get_state(), queues=worker.queue_names(),
                              current_job=(job.func_name or job.id) if job else None,
                              last_heartbeat=_aware(worker.last_heartbeat),
                              successful=worker.successful_job_count, failed=worker.failed_job_count))
    return sorted(rows, key=lambda row: row.name)


def _traceback(job: Job) -> str:
    result = job.latest_result()
    if result is not None and result.type == Result.Type.FAILED and result.exc_string:
        return result.exc_string
    return ""


def failed_jobs(connection: Redis, limit: int = FAILED_JOBS_SHOWN) -> list[FailedJob]:
    """The newest failures of every queue (failed-registry scores are expiry times: newest = highest)."""
    found = []
    for name in QUEUE_NAMES:
        ids = get_queue(name, connection).failed_job_registry.get_job_ids(0, limit - 1, desc=True)
        for job in Job.fetch_many(ids, connection=connection):
            if job is None:
                continue
            trace = _traceback(job)
            lines = [line for line in trace.strip().splitlines() if line.strip()]
            found.append(FailedJob(id=job.id, queue=name, func_name=job.func_name or "?",
                                   error=lines[-1] if lines else "failed (no traceback recorded)",
                                   traceback=trace, ended_at=_aware(job.ended_at)))
    found.sort(key=lambda job: job.ended_at or datetime.min.replace(tzinfo=UTC), reverse=True)
    return found[:limit]


def _failed_registry(connection: Redis, job_id: str):  # noqa: ANN202
    job = Job.fetch(job_id, connection=connection)
    return job, get_queue(job.origin, connection).failed_job_registry


def requeue_failed(connection: Redis, job_id: str) -> str:
    """Put a failed job back on its queue; returns the queue name. ValueError when it is not failed."""
    try:
        job, registry = _failed_registry(connection, job_id)
        registry.requeue(job)
    except (NoSuchJobError, InvalidJobOperation):
        raise ValueError(f"job {job_id} is not in a failed-jobs list (already requeued or deleted?)") from None
    return job.origin


def delete_failed(connection: Redis, job_id: str) -> None:
    try:
        job, registry = _failed_registry(connection, job_id)
    except NoSuchJobError:
        raise ValueError(f"job {job_id} no longer exists") from None
    registry.remove(job, delete_job=True)


def scheduler_rows(connection: Redis, now: datetime) -> list[SchedulerRow]:
    rows = []
    for scheduler in CronScheduler.all(connection, cleanup=False):
        beat = scheduler.last_heartbeat
        rows.append(SchedulerRow(name=scheduler.name, hostname=scheduler.hostname, last_heartbeat=beat,
                                 alive=beat is not None and now - beat < SCHEDULER_ALIVE_WITHIN))
    return rows


def _schedule_text(job: Periodic) -> str:
    if job.interval:
        return f"every {job.interval // 60} min" if job.interval % 60 == 0 else f"every {job.interval} s"
    return f"cron {job.cron}"


def periodic_rows(connection: Redis, schedulers: list[CronScheduler]) -> list[PeriodicRow]:
    """Each declared periodic job with its last enqueue (RQ's per-name history) and next run."""
    registered = {cron_job.name: cron_job for scheduler in schedulers for cron_job in scheduler.get_jobs()}
    rows = []
    for periodic in periodic_jobs(current_app.config):
        last_run = status = None
        newest = get_cron_job_ids(periodic.name, connection, 0, 0)
        if newest:
            score = connection.zscore(get_cron_job_history_key(periodic.name), newest[0])
            last_run = datetime.fromtimestamp(score, UTC) if score is not None else None
            job = Job.fetch_many(newest, connection=connection)[0]
            status = job.get_status(refresh=False).value if job is not None else None
        cron_job = registered.get(periodic.name)
        if last_run is None and cron_job is not None:
            last_run = _aware(cron_job.latest_enqueue_time)
        rows.append(PeriodicRow(name=periodic.name, func=periodic.func, queue=periodic.queue,
                                schedule=_schedule_text(periodic), last_run=last_run, last_status=status,
                                next_run=_aware(cron_job.next_enqueue_time) if cron_job else None))
    return rows
