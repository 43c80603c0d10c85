"""An erasure whose runner is gone, and one that failed (webapp/services/contacts/erasure.py).

A worker that dies mid-way is replaced from the row's phase and cursor (`recover`, periodic), but not for ever:
after SHOPRELAY_CHUNK_ATTEMPTS deaths at one chunk the erasure ends failed with a reason naming the chunk
(webapp.services.platform.row_jobs). A failed erasure that still holds its encrypted values keeps them so
`retry_erasure` can finish it later from its phase and cursor (its contacts no longer hold the email: a new
request for the address would find nothing to clean).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from webapp.extensions import db
from webapp.models import Destination, Erasure, Event, utcnow
from webapp.services.contacts import erasure_steps as steps
from webapp.services.contacts.erasure import (
    ACTIVE,
    EVENT,
    GRACE,
    JOB_ERASE,
    JOB_TIMEOUT,
    REFUSED,
    STALE,
    finish_ready,
    get_erasure,
    run_erasure,
    signal_destinations,
    work_of,
)
from webapp.services.platform.row_jobs import (
    Deaths,
    chunk_attempts,
    deaths_in,
    deaths_of,
    enqueue_row_job,
    gave_up,
    lost_rows,
    new_job_id,
)

log = logging.getLogger(__name__)


class NotRetryable(Exception):
    """A retry asked of an erasure that is not failed, or whose local part is done (the API's 409)."""


# --- recovery ---------------------------------------------------------------------------------------------

def hand_over(erasure_id: str, previous_job_id: str | None, deaths: Deaths | None = None) -> bool:
    """Give the rest of an erasure to a new job, only while the row still names `previous_job_id` (so two callers
    never both hand it over). The new job id carries `deaths`, by default those `previous_job_id` carried: a
    count at a position the erasure has since got past starts again at the next death (`died_again`)."""
    job_id = new_job_id("erasure", deaths if deaths is not None else deaths_in(previous_job_id))
    changed = db.session.execute(
        sa.update(Erasure).where(Erasure.id == erasure_id, Erasure.status.in_(ACTIVE),
                                 Erasure.local_done_at.is_(None),
                                 Erasure.job_id.is_not_distinct_from(previous_job_id))
        .values(status="queued", job_id=job_id).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if changed:
        enqueue_row_job("erasure", erasure_id, JOB_ERASE, job_id, JOB_TIMEOUT)
    return bool(changed)


def recover(grace: timedelta = GRACE, stale: timedelta = STALE,
            wait: Callable[[float], None] = time.sleep) -> dict[str, int]:
    """Erasures whose runner died go on in a new job from their phase and cursor: a job neither waiting in its
    queue nor beating its heartbeat (lost with a flushed Redis, or its worker killed), or a CLI run without a
    committed chunk for `stale`; after SHOPRELAY_CHUNK_ATTEMPTS deaths at one chunk it is failed instead.
    Answered ones are settled. Runs periodically (workers/schedule.py)."""
    result = finish_ready()
    if not current_app.config.get("REDIS_URL"):
        return result
    active = db.session.execute(sa.select(Erasure.id, Erasure.status, Erasure.job_id, Erasure.phase, Erasure.cursor,
                                          Erasure.created_at, Erasure.started_at, Erasure.progressed_at)
                                .where(Erasure.status.in_(ACTIVE), Erasure.local_done_at.is_(None))).all()
    db.session.commit()
    lost = lost_rows(active, "erasure", grace, stale, wait)
    if lost is None:
        return result
    result["resumed"] = 0
    for row in lost:
        # The position rides in the job id, which RQ takes with letters, digits, _ and - only.
        deaths = deaths_of(row, f"{row.phase}_{row.cursor}")
        if row.status == "running" and deaths.count >= chunk_attempts():
            if _give_up(row, deaths):
                result["failed"] = result.get("failed", 0) + 1
            continue
        if hand_over(row.id, row.job_id, deaths):
            result["resumed"] += 1
            log.warning("erasure %s lost its runner (%s, job %s): handed to a new job", row.id, row.status,
                        row.job_id)
    return result


def _give_up(row: Any, deaths: Deaths) -> bool:
    """Fail an erasure whose worker died `deaths.count` times at the same chunk (a row that crashes the worker or
    exhausts its memory) instead of killing workers for ever. The encrypted values stay, for `retry_erasure`."""
    erasure = db.session.get(Erasure, row.id, populate_existing=True)
    if erasure is None:
        return False
    rows = steps.describe_chunk(row.phase, row.cursor, work_of(erasure))
    kept = (f"the person's personal data from there on is still stored here ({steps.left_from(row.phase)}; "
            f"{erasure.done:,} of {erasure.total:,} rows were cleaned before, and their contacts are anonymised). "
            "Find why the worker dies there (its log, its memory), then finish the erasure: "
            f"POST /api/v1/erasures/{erasure.id}/retry, `shoprelay contacts erase --retry {erasure.id}`, or Retry "
            "on the erasure in the dashboard")
    reason = gave_up(deaths, rows, kept)
    failed = db.session.execute(
        sa.update(Erasure).where(Erasure.id == row.id, Erasure.status.in_(ACTIVE), Erasure.local_done_at.is_(None),
                                 Erasure.job_id.is_not_distinct_from(row.job_id))
        .values(status="failed", error=reason[:1000], finished_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if failed:
        log.error("erasure %s: %s", row.id, reason)
    return bool(failed)


# --- retry ------------------------------------------------------------------------------------------------

def retry_refusal(erasure: Erasure) -> str | None:
    """Why this erasure cannot be retried (None: it can): only a failed one whose local part is unfinished. It
    still holds the values to remove (`pending_values`) until it settles, also when it failed after its last
    chunk, while cleaning import files and onsite identities: a retry then runs that last step again."""
    if erasure.status in ACTIVE:
        return f"erasure {erasure.id} is {erasure.status}: only a failed erasure can be retried"
    if erasure.status != "failed":
        return f"erasure {erasure.id} {erasure.status}: there is nothing left to retry"
    if erasure.pending_values is None:
        return (f"erasure {erasure.id} failed after its local part was done (the personal data here is removed): "
                "what failed is a destination's deletion, whose request no longer names the person; delete the "
                "person in that platform's own dashboard")
    return None


def retry_erasure(erasure_id: str, *, run_here: bool = False,
                  on_chunk: Callable[[Erasure], None] | None = None) -> Erasure:
    """Put a failed erasure whose local part is unfinished back to work from its phase and cursor (a new job, so
    its deaths count afresh), and ask again the destinations that refused its deletion request (still enabled:
    the request still names the person until the erasure settles). Runs here with `run_here` (the CLI) or
    without Redis. Raises LookupError (unknown) or NotRetryable."""
    erasure = get_erasure(erasure_id)
    if erasure is None:
        raise LookupError(f"erasure {erasure_id} not found")
    refusal = retry_refusal(erasure)
    if refusal is not None:
        raise NotRetryable(refusal)
    inline = run_here or not current_app.config.get("REDIS_URL")
    job_id = None if inline else new_job_id("erasure")
    changed = db.session.execute(
        sa.update(Erasure).where(Erasure.id == erasure_id, Erasure.status == "failed",
                                 Erasure.pending_values.is_not(None))
        .values(status="queued", job_id=job_id, error=None, finished_at=None, progressed_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    asked = _ask_again(erasure_id) if changed else set()
    db.session.commit()
    if not changed:  # retried (or settled) by someone else meanwhile
        raise NotRetryable(retry_refusal(get_erasure(erasure_id) or erasure) or
                           f"erasure {erasure_id} changed meanwhile; read it again")
    signal_destinations(asked)
    log.warning("erasure %s retried from %s (cursor %s); %d refused deletion request(s) asked again", erasure_id,
                erasure.phase, erasure.cursor, len(asked))
    if inline:
        return run_erasure(erasure_id, on_chunk=on_chunk)
    enqueue_row_job("erasure", erasure_id, JOB_ERASE, job_id, JOB_TIMEOUT)
    return get_erasure(erasure_id) or erasure


def _ask_again(erasure_id: str) -> set[int]:
    """The refused deletion requests of this erasure to destinations still enabled, made due again (in the
    caller's transaction); returns their destinations. A disabled destination's stays refused."""
    enabled = sa.select(Destination.id).where(Destination.enabled.is_(True))
    refused = db.session.execute(sa.select(Event.id, Event.destination_id).where(
        Event.name == EVENT, Event.unique_id == f"erasure:{erasure_id}", Event.state.in_(REFUSED),
        Event.destination_id.in_(enabled))).all()
    if refused:
        db.session.execute(sa.update(Event).where(Event.id.in_([row.id for row in refused])).values(
            state=sa.case((Event.attempts > 0, "retrying"), else_="pending"), next_attempt_at=utcnow(),
            lease_until=None, leased_by=None).execution_options(synchronize_session=False))
    return {row.destination_id for row in refused}


def failed_unfinished_of(contact_id: int) -> Erasure | None:
    """The newest failed erasure of this contact that can be finished (few at any time: read and filtered
    here rather than searched inside the JSON list of contacts)."""
    rows = db.session.scalars(sa.select(Erasure).where(Erasure.status == "failed", Erasure.pending_values.is_not(None))
                              .order_by(Erasure.created_at.desc()).limit(100)).all()
    db.session.commit()
    return next((row for row in rows if contact_id in (row.contact_ids or [])), None)
