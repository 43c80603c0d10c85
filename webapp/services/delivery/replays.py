"""Replay by window: send again what a destination was sent (or failed to get) between two times.

A replay is counted first (a dry run: how many events, by event name and state), then queued in chunks of
CHUNK events, each chunk its own short transaction, in event id order: an order's events were written in
their delivery order (placed before fulfilled before refunded), so its earlier events are always queued in
the same or an earlier chunk, and the claim's blocking rule (`workers.delivery.claim`: a later event of an
order waits while an earlier one is pending) keeps the platform's order. The normal delivery engine sends
them, within the rate limits.

- Same unique ids (the default): the event rows themselves are made due again, as the per-order replay does
  (one row per destination, name and unique id), so the platform de-duplicates what it already has.
- `new_ids`: a new row per event with the unique id `<unique id>:replay-<replay id>`, which the platform
  counts again (only right after it lost them). A chunk run twice inserts nothing twice.

The window is on `created_at` (when shoprelay queued the event), half-open: since <= created_at < until.
Events whose payload retention pruned cannot be sent again; they are counted apart.

The replay's record is a `replays` row (webapp/models/replays.py). Each chunk moves the row's cursor and
progress in the transaction that queues its events, with the row locked, so a chunk is queued exactly once
whoever runs it (a request, the CLI, one or two workers) and wherever it dies. A replay of more than
INLINE_LIMIT events runs as an RQ job; `recover` (a periodic job) hands a replay whose job was lost (a
flushed Redis) or whose runner died to a new job, which goes on from the cursor; one whose runner died
SHOPRELAY_CHUNK_ATTEMPTS times at the same cursor is failed with that reason instead (webapp.services.platform.
row_jobs: a poison chunk would otherwise kill a worker every minute for ever).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import Destination, Event, Replay, utcnow
from webapp.schemas.errors import ApiError, problem
from webapp.services.delivery.destinations import signal_delivery
from webapp.services.delivery.replay_windows import (  # noqa: F401 - the window's names, re-exported
    DEFAULT_STATES,
    REPLAYABLE_STATES,
    ReplayWindow,
    count_window,
    in_window,
    parse_window,
    pruned,
    window_json,
)
from webapp.services.orders.rollup import refresh_delivery_state
from webapp.services.platform.jsonutil import iso
from webapp.services.platform.row_jobs import (
    Deaths,
    chunk_attempts,
    deaths_of,
    enqueue_row_job,
    gave_up,
    lost_rows,
    new_job_id,
)
from webapp.services.platform.statements import dialect_name

log = logging.getLogger(__name__)

CHUNK = 500
INLINE_LIMIT = 1000  # up to this many events the request queues them itself (two chunks, milliseconds)
RECENT = 5
JOB_REPLAY = "workers.jobs.replays.replay_window_job"
JOB_TIMEOUT = 6 * 3600
ACTIVE = ("queued", "running")
# A job is marked running a moment before its first beat (and a queued one waits in the queue).
GRACE = timedelta(seconds=30)
# A replay run by a request or the CLI has no heartbeat: it is judged dead when no chunk committed for this
# long (a chunk takes milliseconds). Judging a live one dead only adds a second runner, which the row lock
# keeps from queuing anything twice.
STALE = timedelta(minutes=5)
EVENTS = Event.__table__
UNIQUE_ID_LENGTH = EVENTS.c.unique_id.type.length or 300


# --- records ----------------------------------------------------------------------------------------------

def get_replay(replay_id: str) -> Replay | None:
    """The replay as committed now (progress a worker made since this session last read it included)."""
    replay = db.session.get(Replay, replay_id, populate_existing=True)
    db.session.commit()  # end the read (no snapshot or lock held on PostgreSQL)
    return replay


def recent_replays(destination_id: int, limit: int = RECENT) -> list[Replay]:
    """The destination's newest replays first (ix_replays_dest_created)."""
    rows = db.session.scalars(sa.select(Replay).where(Replay.destination_id == destination_id)
                              .order_by(Replay.created_at.desc(), Replay.id.desc()).limit(limit)
                              .execution_options(populate_existing=True)).all()
    db.session.commit()
    return list(rows)


def replay_json(replay: Replay) -> dict[str, Any]:
    """The API's (and the page's) view of a replay; its cursor stays inside."""
    by_event: dict[str, int] = {}
    by_state: dict[str, int] = {}
    for entry in replay.breakdown:
        by_event[entry["event"]] = by_event.get(entry["event"], 0) + entry["count"]
        by_state[entry["state"]] = by_state.get(entry["state"], 0) + entry["count"]
    return {"id": replay.id, "destination_id": replay.destination_id, "status": replay.status,
            "since": iso(replay.since), "until": iso(replay.until), "events": replay.events,
            "states": replay.states, "new_ids": replay.new_ids, "total": replay.total, "done": replay.done,
            "chunks": replay.chunks, "not_replayable": replay.not_replayable, "by_event": by_event,
            "by_state": by_state, "breakdown": replay.breakdown, "slowest_chunk_ms": replay.slowest_chunk_ms,
            "error": replay.error, "created_at": iso(replay.created_at), "started_at": iso(replay.started_at),
            "finished_at": iso(replay.finished_at), "job_id": replay.job_id}


def _window_of(replay: Replay) -> ReplayWindow:
    return ReplayWindow(since=replay.since, until=replay.until, events=replay.events, states=replay.states,
                        new_ids=replay.new_ids)


# --- running ----------------------------------------------------------------------------------------------

def start_replay(destination: Destination, window: ReplayWindow, *, run_here: bool = False,
                 on_chunk: Callable[[Replay], None] | None = None) -> Replay:
    """Count the window, record the replay and queue its events: here when small (or `run_here`, the CLI),
    else in an RQ job (the request answers at once; GET /api/v1/replays/<id> shows the progress)."""
    counted = count_window(destination.id, window)
    inline = run_here or counted["count"] <= INLINE_LIMIT
    if not inline and not current_app.config.get("REDIS_URL"):
        raise ApiError(503, [problem([], f"no Redis is configured: a replay of more than {INLINE_LIMIT} events "
                                         "runs on a worker")])
    last_id = db.session.scalar(sa.select(sa.func.max(EVENTS.c.id)).where(
        EVENTS.c.destination_id == destination.id)) or 0
    replay = Replay(id=secrets.token_hex(6), destination_id=destination.id, status="queued",
                    since=window.since.astimezone(UTC), until=window.until.astimezone(UTC), events=window.events,
                    states=window.chosen_states, new_ids=window.new_ids, total=counted["count"], done=0, chunks=0,
                    not_replayable=counted["not_replayable"], breakdown=counted["breakdown"], slowest_chunk_ms=0,
                    cursor=0, last_id=last_id, job_id=None if inline else new_job_id("replay"),
                    created_at=utcnow())
    db.session.add(replay)
    db.session.commit()
    if inline:
        return run_replay(replay.id, on_chunk=on_chunk)
    enqueue_row_job("replay", replay.id, JOB_REPLAY, replay.job_id, JOB_TIMEOUT)
    return replay


def hand_over(replay_id: str, previous_job_id: str | None, deaths: Deaths | None = None) -> bool:
    """Give the rest of a replay to a new job (a worker stopping between chunks, or `recover` for a runner that
    died, with the deaths so far). Only while the row still names `previous_job_id`, so two callers never both
    hand it over."""
    job_id = new_job_id("replay", deaths)
    changed = db.session.execute(
        sa.update(Replay).where(Replay.id == replay_id, Replay.status.in_(ACTIVE),
                                Replay.job_id.is_not_distinct_from(previous_job_id))
        .values(status="queued", job_id=job_id).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if changed:
        enqueue_row_job("replay", replay_id, JOB_REPLAY, job_id, JOB_TIMEOUT)
    return bool(changed)


def run_replay(replay_id: str, *, on_chunk: Callable[[Replay], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> Replay:
    """Queue the window's events chunk by chunk from the row's cursor (each chunk one short transaction that
    moves the cursor too). Stops early (status stays "running") when `should_stop()` says so. An error fails
    it; a worker's cold shutdown or a killed process leaves it running, and `recover` resumes it."""
    replay = get_replay(replay_id)
    if replay is None:
        raise LookupError(f"replay {replay_id} not found")
    if replay.status not in ACTIVE:
        return replay
    window, destination_id = _window_of(replay), replay.destination_id
    _set_status(replay_id, ACTIVE, status="running", started_at=replay.started_at or utcnow())
    try:
        while True:
            if should_stop is not None and should_stop():
                return get_replay(replay_id) or replay
            progressed = _replay_chunk(replay_id, window)
            if progressed is None:
                break
            signal_delivery(destination_id)
            if on_chunk is not None:
                on_chunk(progressed)
    except KeyboardInterrupt:  # Ctrl-C on `shoprelay destinations replay`: stopped on purpose, not resumed
        db.session.rollback()
        _set_status(replay_id, ACTIVE, status="failed", error="stopped from the command line (Ctrl-C); the "
                    "events queued before stay queued", finished_at=utcnow())
        raise
    except Exception as exc:
        db.session.rollback()
        _set_status(replay_id, ACTIVE, status="failed", error=f"{type(exc).__name__}: {exc}"[:500],
                    finished_at=utcnow())
        raise
    _set_status(replay_id, ACTIVE, status="succeeded", finished_at=utcnow())
    return get_replay(replay_id) or replay


def _set_status(replay_id: str, only_if: tuple[str, ...], **values: Any) -> None:
    """One short transaction; a replay another runner finished meanwhile keeps its outcome."""
    db.session.execute(sa.update(Replay).where(Replay.id == replay_id, Replay.status.in_(only_if))
                       .values(**values).execution_options(synchronize_session=False))
    db.session.commit()


def _replay_chunk(replay_id: str, window: ReplayWindow) -> Replay | None:
    """The next CHUNK events after the cursor, made due again or copied with new unique ids, and the row's
    cursor and progress moved, in one transaction with the row locked (two runners take turns, the second
    goes on from the first's cursor). Returns the replay, or None when nothing is left (or it is over)."""
    started = time.perf_counter()
    db.session.rollback()  # no snapshot kept from an earlier read
    if dialect_name() == "postgresql":
        replay = db.session.scalars(sa.select(Replay).where(Replay.id == replay_id).with_for_update()
                                    .execution_options(populate_existing=True)).first()
    else:  # SQLite: take the single write lock before reading the cursor
        db.session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        replay = db.session.get(Replay, replay_id, populate_existing=True)
    if replay is None or replay.status not in ACTIVE:
        db.session.rollback()
        return None
    rows = db.session.execute(
        sa.select(EVENTS.c.id, EVENTS.c.order_id)
        .where(*in_window(replay.destination_id, window), ~pruned(),
               EVENTS.c.id > replay.cursor, EVENTS.c.id <= replay.last_id)
        .order_by(EVENTS.c.id).limit(CHUNK)).all()
    if not rows:
        db.session.rollback()
        return None
    ids = [row.id for row in rows]
    now = utcnow()
    if window.new_ids:
        queued = _copy_with_new_ids(ids, replay_id, now)
    else:
        queued = db.session.execute(
            sa.update(EVENTS).where(EVENTS.c.id.in_(ids), EVENTS.c.state.in_(window.chosen_states), ~pruned())
            .values(state=sa.case((EVENTS.c.attempts > 0, "retrying"), else_="pending"), next_attempt_at=now,
                    lease_until=None, leased_by=None)).rowcount
    refresh_delivery_state(row.order_id for row in rows)
    replay.done += queued
    replay.chunks += 1
    replay.cursor = ids[-1]
    replay.progressed_at = now
    replay.slowest_chunk_ms = max(replay.slowest_chunk_ms, int((time.perf_counter() - started) * 1000))
    db.session.commit()
    return replay


# --- recovery ---------------------------------------------------------------------------------------------

def recover(grace: timedelta = GRACE, stale: timedelta = STALE,
            wait: Callable[[float], None] = time.sleep) -> dict[str, int]:
    """Replays whose runner died go on in a new job from their cursor: a job neither waiting in its queue nor
    beating its heartbeat (lost with a flushed Redis, or its worker killed), or a request's or the CLI's run
    without a committed chunk for `stale`; after SHOPRELAY_CHUNK_ATTEMPTS deaths at one cursor it is failed.
    Runs periodically (workers/schedule.py)."""
    if not current_app.config.get("REDIS_URL"):
        return {}
    active = db.session.execute(sa.select(Replay.id, Replay.status, Replay.job_id, Replay.cursor, Replay.created_at,
                                          Replay.started_at, Replay.progressed_at)
                                .where(Replay.status.in_(ACTIVE))).all()
    db.session.commit()
    lost = lost_rows(active, "replay", grace, stale, wait)
    if lost is None:
        return {}
    counts = {"resumed": 0, "requeued": 0}
    for row in lost:
        deaths = deaths_of(row, str(row.cursor))
        if row.status == "running" and deaths.count >= chunk_attempts():
            if _give_up(row, deaths):
                counts["failed"] = counts.get("failed", 0) + 1
            continue
        if hand_over(row.id, row.job_id, deaths):
            counts["resumed" if row.status == "running" else "requeued"] += 1
            log.warning("replay %s lost its runner (%s, job %s): handed to a new job", row.id, row.status,
                        row.job_id)
    return counts


def _give_up(row: Any, deaths: Deaths) -> bool:
    """Fail a replay whose worker died `deaths.count` times at the same chunk (a poison event, or one the worker
    runs out of memory on), instead of killing workers for ever; what earlier chunks queued stays queued."""
    replay = db.session.get(Replay, row.id)
    if replay is None:
        return False
    ids = db.session.scalars(
        sa.select(EVENTS.c.id).where(*in_window(replay.destination_id, _window_of(replay)), ~pruned(),
                                     EVENTS.c.id > replay.cursor, EVENTS.c.id <= replay.last_id)
        .order_by(EVENTS.c.id).limit(CHUNK)).all()
    rows = f"events {ids[0]}–{ids[-1]} (the chunk after event {replay.cursor})" if ids \
        else f"the events after event {replay.cursor}"
    kept = (f"the {replay.done:,} events queued before stay queued, the other {max(replay.total - replay.done, 0):,}"
            " were not; replay from there once the cause is found")
    reason = gave_up(deaths, rows, kept)
    failed = db.session.execute(
        sa.update(Replay).where(Replay.id == row.id, Replay.status.in_(ACTIVE),
                                Replay.job_id.is_not_distinct_from(row.job_id))
        .values(status="failed", error=reason[:1000], finished_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if failed:
        log.error("replay %s: %s", row.id, reason)
    return bool(failed)


def _copy_with_new_ids(ids: list[int], replay_id: str, now: datetime) -> int:
    """INSERT ... SELECT: one new pending row per event, same order, payload and sequence, new unique id.
    An id that is already there (the same chunk run again after a crash) is skipped."""
    suffix = f":replay-{replay_id}"
    unique_id = sa.type_coerce(sa.func.substr(EVENTS.c.unique_id, 1, UNIQUE_ID_LENGTH - len(suffix)),
                               sa.String) + sa.literal(suffix)
    columns = ("destination_id", "name", "unique_id", "order_id", "contact_id", "payload", "state", "sequence",
               "historical", "attempts", "occurred_at", "created_at", "next_attempt_at")
    source = sa.select(
        EVENTS.c.destination_id, EVENTS.c.name, unique_id, EVENTS.c.order_id, EVENTS.c.contact_id,
        EVENTS.c.payload, sa.literal("pending"), EVENTS.c.sequence, EVENTS.c.historical, sa.literal(0),
        EVENTS.c.occurred_at, sa.literal(now, EVENTS.c.created_at.type),
        sa.literal(now, EVENTS.c.next_attempt_at.type),
    ).where(EVENTS.c.id.in_(ids)).order_by(EVENTS.c.id)
    insert = (postgresql.insert if dialect_name() == "postgresql" else sqlite.insert)(EVENTS)
    statement = insert.from_select(columns, source).on_conflict_do_nothing(
        index_elements=["destination_id", "name", "unique_id"]).returning(EVENTS.c.id)
    return len(db.session.execute(statement).all())  # rowcount is -1 for INSERT ... SELECT on psycopg
