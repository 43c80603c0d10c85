"""The one place that knows Redis and queue names. Imports nothing from webapp: jobs are named, not imported.

Redis carries only "go look" signals; the database is the source of truth, so a lost or flushed
Redis delays work (until the sweeper runs) but never loses it.
"""

from __future__ import annotations

import logging
import uuid
from functools import lru_cache
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job

log = logging.getLogger(__name__)

# "alerts" comes last: a worker takes deliveries first, and a slow alert channel never sits in front of them.
QUEUE_NAMES = ("delivery", "sync", "feeds", "default", "alerts")
SIGNAL_TTL_SECONDS = 600

# Job functions by name (module path strings), so the web side never imports worker code.
JOB_SYNC_SOURCE = "workers.jobs.sync.sync_source_job"
JOB_APPLY_SYNC = "workers.jobs.sync.apply_sync_job"
JOB_BUILD_FEED = "workers.jobs.feeds.build_feed_job"
JOB_DELIVER = "workers.jobs.deliver.deliver_destination_job"
JOB_IMPORT_ORDERS = "workers.jobs.imports.import_orders_job"
JOB_EVALUATE_ALERTS = "workers.jobs.alerts.evaluate_alerts_job"
JOB_SEND_ALERTS = "workers.jobs.alerts.send_alerts_job"


@lru_cache(maxsize=8)
def connect(url: str) -> Redis:
    """A (cached, pooled) Redis client with explicit timeouts, so a dead Redis fails fast instead of hanging requests."""
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)


def get_queue(name: str, connection: Redis) -> Queue:
    return Queue(name, connection=connection, default_timeout=3600)


def enqueue(connection: Redis, queue: str, func: str, *args: Any, job_id: str | None = None,
            **options: Any) -> Job:
    """Enqueue a job by function path with ids and plain JSON values as arguments."""
    options.setdefault("result_ttl", 3600)
    options.setdefault("failure_ttl", 7 * 24 * 3600)
    return get_queue(queue, connection).enqueue(func, *args, job_id=job_id, **options)


def signal(connection: Redis, queue: str, func: str, key: str, *args: Any, **options: Any) -> bool:
    """Enqueue a "go look" job unless one for `key` is already waiting.

    The job clears the key when it starts (see `clear_signal`), so work that arrives while it runs
    gets a fresh job instead of being swallowed by the running one. A key whose job is no longer waiting
    (a worker killed after taking the job and before starting it) is replaced here, so the sweeper's next
    signal repairs it: otherwise every signal was swallowed until the key expired (SIGNAL_TTL_SECONDS).
    """
    if signal_many(connection, queue, func, [(key, args)], **options):
        return True
    waiting = connection.get(_signal_key(key))
    if waiting is not None and connection.lpos(get_queue(queue, connection).key, waiting) is not None:
        return False
    connection.delete(_signal_key(key))
    return bool(signal_many(connection, queue, func, [(key, args)], **options))


def signal_many(connection: Redis, queue: str, func: str, jobs: list[tuple[str, tuple[Any, ...]]],
                **options: Any) -> list[str]:
    """`signal` for several keys at once: one round trip when every key already has a job waiting.

    Args:
        jobs: (key, job arguments) pairs, e.g. one per destination that got new events.

    Returns the keys a new job was enqueued for. Keys are claimed with SET NX in one pipeline; a job is
    enqueued only for keys this call claimed, exactly as `signal` does one by one.
    """
    if not jobs:
        return []
    pipeline = connection.pipeline(transaction=False)
    job_ids = [uuid.uuid4().hex for _ in jobs]  # each key names its job, so `signal` can tell a lost one
    for (key, _), job_id in zip(jobs, job_ids, strict=True):
        pipeline.set(_signal_key(key), job_id, nx=True, ex=SIGNAL_TTL_SECONDS)
    claimed = [(key, args, job_id) for (key, args), job_id, ok
               in zip(jobs, job_ids, pipeline.execute(), strict=True) if ok]
    for position, (_, args, job_id) in enumerate(claimed):
        try:
            enqueue(connection, queue, func, *args, job_id=job_id, result_ttl=60, **options)
        except Exception:  # free the keys still without a job, so the next signal enqueues one
            connection.delete(*[_signal_key(key) for key, _, _ in claimed[position:]])
            raise
    return [key for key, _, _ in claimed]


def safe_signal_many(url: str | None, queue: str, func: str, jobs: list[tuple[str, tuple[Any, ...]]],
                     **options: Any) -> list[str]:
    """Best-effort `signal_many`: with Redis down the committed work still stands (the sweeper finds it)."""
    if not url or not jobs:
        return []
    try:
        return signal_many(connect(url), queue, func, jobs, **options)
    except RedisError as exc:
        log.warning("could not signal %s (%s); the sweeper will pick the work up",
                    ", ".join(key for key, _ in jobs), exc)
        return []


def clear_signal(connection: Redis, key: str) -> None:
    connection.delete(_signal_key(key))


def hold_signal(connection: Redis, key: str, seconds: float) -> None:
    """Mark `key` as having a job for `seconds` (a job waiting out a platform's pause), so signals meanwhile
    add none; when it runs out, the next signal (or the sweeper's) enqueues one again."""
    connection.set(_signal_key(key), "1", px=max(1, int(seconds * 1000)))


def safe_signal(url: str | None, queue: str, func: str, key: str, *args: Any, **options: Any) -> bool:
    """Best-effort signal: with Redis down the caller's committed work still stands (the sweeper finds it)."""
    return bool(safe_signal_many(url, queue, func, [(key, args)], **options))


def deliver_signal_key(destination_id: int) -> str:
    return f"deliver:{destination_id}"


def alerts_signal_key(channel_id: int) -> str:
    return f"alerts:{channel_id}"


EVALUATE_ALERTS_KEY = "alerts:evaluate"  # a worker that finds the scheduler silent asks for an evaluation


def _signal_key(key: str) -> str:
    return f"shoprelay:signal:{key}"


# -- job heartbeats -------------------------------------------------------------------------------------
# RQ keeps a SimpleWorker registered for the whole job timeout (hours for a sync), so a worker killed
# mid-job still looks busy to RQ. The worker process beats this key every HEARTBEAT_SECONDS while a job
# runs; a missing key means nobody is executing that job any more.
HEARTBEAT_SECONDS = 3
HEARTBEAT_TTL_SECONDS = 15


def heartbeat_key(job_id: str) -> str:
    return f"shoprelay:job-alive:{job_id}"


def beat(connection: Redis, job_id: str) -> None:
    connection.set(heartbeat_key(job_id), "1", ex=HEARTBEAT_TTL_SECONDS)


def job_alive(connection: Redis, job_id: str) -> bool:
    return bool(connection.exists(heartbeat_key(job_id)))
