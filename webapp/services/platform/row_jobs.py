"""Jobs whose record is a database row (replays, erasures, sync applies): the row names its job, so a lost job
(a flushed Redis, a dead worker) is found and queued again from the row by the area's `recover`.

A job whose worker dies at the same chunk again and again (a row that crashes the process or exhausts its
memory) is not resumed for ever: the area counts the deaths at one position (`Deaths`) and, after
SHOPRELAY_CHUNK_ATTEMPTS of them with nothing committed in between, fails the job with `gave_up`'s reason.
A replay keeps the count in the job id it is handed over to (`new_job_id(kind, deaths)`), which the row
already swaps in one conditional update: the count moves with the hand-over, never twice for one death, and
needs no column of its own (a sync apply keeps it in its run's problems: webapp/services/catalog/orphaned_runs).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from redis.exceptions import RedisError

from webapp.models import utcnow

log = logging.getLogger(__name__)

_DEATHS = re.compile(r"-died(\d+)at([\w.]+)$")


@dataclass(frozen=True)
class Deaths:
    """How many times in a row a job's worker died at one position (a cursor, or a phase and cursor)."""

    at: str
    count: int


def died_again(previous: Deaths | None, at: str) -> Deaths:
    """One more death, at `at`: counted on from `previous` when the job got no further since, else the first."""
    return Deaths(at, previous.count + 1 if previous is not None and previous.at == at else 1)


def new_job_id(kind: str, deaths: Deaths | None = None) -> str:
    """The job id a row records before its job is queued (so a crash in between is recoverable); a job handed
    over after its worker died carries the deaths so far (`deaths_in`)."""
    job_id = f"{kind}-{uuid.uuid4().hex[:12]}"
    return f"{job_id}-died{deaths.count}at{deaths.at}" if deaths is not None else job_id


def deaths_in(job_id: str | None) -> Deaths | None:
    """The deaths a job id carries (None: its predecessors' workers did not die, or it is the first job)."""
    found = _DEATHS.search(job_id or "")
    return Deaths(found.group(2), int(found.group(1))) if found else None


def chunk_attempts() -> int:
    """SHOPRELAY_CHUNK_ATTEMPTS: deaths at one chunk after which a job is failed instead of resumed."""
    return int(current_app.config.get("CHUNK_ATTEMPTS") or 3)


def gave_up(deaths: Deaths, rows: str, kept: str) -> str:
    """The reason a job ends failed after its worker died `deaths.count` times at the same `rows`."""
    return (f"stopped after {deaths.count} attempts at {rows}: the worker died each time (killed, or out of "
            f"memory) without getting past them; {kept}")


def quiet_since(row: Any) -> datetime:
    """When the row last showed life: its last committed chunk, its start, or its creation."""
    return row.progressed_at or row.started_at or row.created_at


def lost_rows(rows: Sequence[Any], what: str, grace: timedelta, stale: timedelta,
              wait: Callable[[float], None]) -> list[Any] | None:
    """The active rows (id, status, job_id, created_at, started_at, progressed_at) whose runner is gone: a job
    neither waiting in the default queue nor beating its heartbeat for `grace` (lost with a flushed Redis, or
    its worker killed), or a run of a request or the CLI (no job id) without a committed chunk for `stale`.
    None when Redis cannot be asked (nothing is decided then)."""
    from webapp.services.platform.job_heartbeats import silent_jobs
    from workers.queue import connect, get_queue

    now = utcnow()
    lost = [row for row in rows if not row.job_id and quiet_since(row) <= now - stale]
    jobs = [row for row in rows if row.job_id and quiet_since(row) <= now - grace]
    if jobs:
        connection = connect(current_app.config["REDIS_URL"])
        try:
            waiting = set(get_queue("default", connection).get_job_ids())
            silent = silent_jobs(connection, [row.job_id for row in jobs if row.job_id not in waiting], wait)
        except RedisError as exc:
            log.warning("cannot look for lost %s jobs: %s", what, exc)
            return None
        lost += [row for row in jobs if row.job_id in silent]
    return lost


def deaths_of(row: Any, position: str) -> Deaths | None:
    """A running row's runner died at `position` (one more death there); a queued row's job was only lost,
    nothing ran: the deaths so far, none added."""
    return died_again(deaths_in(row.job_id), position) if row.status == "running" else deaths_in(row.job_id)


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
