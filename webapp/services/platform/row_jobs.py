"""Jobs whose record is a database row (replays, erasures): the row names its job, so a lost job (a flushed
Redis, a dead worker) is found and queued again from the row by the area's `recover`."""

from __future__ import annotations

import logging
import uuid

from flask import current_app
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def new_job_id(kind: str) -> str:
    """The job id a row records before its job is queued (so a crash in between is recoverable)."""
    return f"{kind}-{uuid.uuid4().hex[:12]}"


def enqueue_row_job(kind: str, row_id: str, job_path: str, job_id: str | None, timeout: int) -> None:
    """Queue the job the row names. Redis away: the row still says queued and the area's recovery queues it
    again, so the caller's request does not fail for it."""
    from workers.queue import connect, enqueue

    url = current_app.config.get("REDIS_URL")
    if not url or job_id is None:
        return
    try:
        enqueue(connect(url), "default", job_path, row_id, job_id=job_id, job_timeout=timeout)
    except RedisError as exc:
        log.warning("%s %s: could not queue its job (%s); the recovery queues it again", kind, row_id, exc)
