"""Which RQ jobs have stopped beating: the one question every "did its worker die?" sweep asks (sync runs
and feed builds, catalog reconciles, replays), answered the same way for all of them."""

from __future__ import annotations

from collections.abc import Callable

from redis import Redis

from workers.queue import HEARTBEAT_SECONDS, job_alive


def silent_jobs(connection: Redis, job_ids: list[str], wait: Callable[[float], None]) -> set[str]:
    """Job ids without a heartbeat, asked twice a beat apart: a flushed Redis loses the keys for one beat,
    and a job marked running a moment ago may not have beaten yet. Redis errors reach the caller, whose
    sweep then judges nothing this round."""
    silent = {job_id for job_id in job_ids if not job_alive(connection, job_id)}
    if silent:
        wait(HEARTBEAT_SECONDS + 1)
        silent = {job_id for job_id in silent if not job_alive(connection, job_id)}
    return silent


def started_jobs(connection: Redis, job_ids: list[str]) -> set[str]:
    """The job ids whose RQ record says a worker started them: a silent one of these died (a worker killed
    mid-job), while one without a record (a flushed Redis) or never started was only lost, not killed."""
    from rq.job import Job

    jobs = Job.fetch_many(job_ids, connection=connection) if job_ids else []
    return {job.id for job in jobs if job is not None and job.started_at is not None}
