"""Are the background parts alive? Redis reachable, RQ workers registered, the cron scheduler beating.

Read from RQ's own registries, so it reflects every worker on every host. A Redis outage is a status
here, never an exception: the dashboard must still render when Redis is down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from rq import Worker
from rq.cron import CronScheduler

from workers.queue import connect

SCHEDULER_STALE_AFTER = timedelta(minutes=2)


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    hostname: str | None
    state: str
    queues: list[str]
    last_heartbeat: datetime | None


@dataclass(frozen=True)
class SchedulerInfo:
    name: str
    hostname: str | None
    last_heartbeat: datetime | None


@dataclass
class RuntimeStatus:
    now: datetime
    redis_error: str | None = None  # None: reachable
    workers: list[WorkerInfo] = field(default_factory=list)
    schedulers: list[SchedulerInfo] = field(default_factory=list)

    @property
    def redis_ok(self) -> bool:
        return self.redis_error is None

    @property
    def last_scheduler_heartbeat(self) -> datetime | None:
        beats = [s.last_heartbeat for s in self.schedulers if s.last_heartbeat]
        return max(beats, default=None)

    @property
    def scheduler_alive(self) -> bool:
        beat = self.last_scheduler_heartbeat
        return beat is not None and self.now - beat <= SCHEDULER_STALE_AFTER


def runtime_status(now: datetime | None = None) -> RuntimeStatus:
    status = RuntimeStatus(now=now or datetime.now(UTC))
    url = current_app.config.get("REDIS_URL")
    if not url:
        status.redis_error = "REDIS_URL is not set"
        return status
    connection = connect(url)
    try:
        connection.ping()
        status.workers = [_worker_info(w) for w in Worker.all(connection=connection)]
        status.schedulers = [SchedulerInfo(name=s.name, hostname=s.hostname, last_heartbeat=s.last_heartbeat)
                             for s in CronScheduler.all(connection, cleanup=False)]
    except RedisError as exc:
        status.redis_error = f"{type(exc).__name__}: {exc}"
    return status


def _worker_info(worker: Worker) -> WorkerInfo:
    state = worker.get_state()
    beat = worker.last_heartbeat
    if beat is not None and beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)  # RQ stores naive UTC
    return WorkerInfo(name=worker.name, hostname=worker.hostname, state=str(getattr(state, "value", state)),
                      queues=worker.queue_names(), last_heartbeat=beat)
