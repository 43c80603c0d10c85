"""Drain one destination's due events: claim a batch, build requests, respect the rate limit, send, record.

A job works for at most `time_budget` seconds and then asks for a follow-up job, so one busy destination
never starves the others, and a worker killed at any point loses nothing (leases + sweeper). Answers are
recorded in groups (GROUP_REQUESTS requests or GROUP_SECONDS, whichever comes first, and always before the
run stops), so the database costs one commit per group instead of one per request. On PostgreSQL the
sending thread only sends: a recorder thread stores the answers (recorder.py) and look-ahead threads claim
and build the next batches (lookahead.py), each with its own session, while the current batch goes out.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from redis import Redis

from webapp.extensions import db
from webapp.models import Destination
from webapp.services.platform.crypto import decrypt_json
from workers import shutdown
from workers.delivery import claim, outcomes
from workers.delivery.claim import ClaimedEvent
from workers.delivery.health import HealthLog, stop_reason, update_health
from workers.delivery.http_client import SendResult, get_client, send
from workers.delivery.lookahead import Lookahead, Pending, make_lookahead
from workers.delivery.pause import Pause, throttled
from workers.delivery.policy import RetryPolicy
from workers.delivery.recorder import Group, Recorder, make_recorder
from workers.destinations import get_adapter_class
from workers.destinations.base import (
    DestinationAdapter,
    OutboundEvent,
    Outcome,
    PreparedRequest,
)
from workers.rate_limit import Limits, RateLimiter, Slots

log = logging.getLogger(__name__)

GROUP_REQUESTS = 50   # answers recorded together ...
GROUP_EVENTS = 2000   # ... or this many events (bulk requests) ...
GROUP_SECONDS = 0.25  # ... or after this long, whichever comes first
# A run looks for in-flight events of a dead worker when it starts and then at most this often (or once a
# lease, if shorter): a lease runs out minutes after its claim, and the look costs a scan of the in-flight rows.
EXPIRED_LEASE_SECONDS = 10.0
RATE_LIMITED = "rate limited"  # the platform account is paused (pause.py): nothing is sent until it ends


@dataclass
class DeliveryReport:
    destination_id: int
    sent_requests: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    stopped: str | None = None  # why the run ended early (paused, rate limited, budget)
    more: bool = False          # due work remains: the caller should signal again
    not_before: datetime | None = None  # the platform said wait until then (the account's pause)

    def add(self, counts: dict[str, int]) -> None:
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0) + value


def now_utc() -> datetime:
    return datetime.now(UTC)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def build_adapter(destination: Destination) -> DestinationAdapter:
    cls = get_adapter_class(destination.kind)
    return cls(decrypt_json(destination.credentials_encrypted), destination.base_url, destination.settings)


def limiters(redis: Redis | None, destination: Destination,
             pause: Pause) -> tuple[RateLimiter | None, RateLimiter | None]:
    """The platform account's shared windows (destinations on one key share them), each reading its pause."""
    if redis is None:
        return None, None
    limits = destination.rate_limits or {}
    single = RateLimiter(redis, f"{pause.account}:single", Limits.from_dict(limits), pause)
    bulk = RateLimiter(redis, f"{pause.account}:bulk", Limits(
        float(limits.get("bulk_burst_per_second") or 0), float(limits.get("bulk_per_minute") or 0)), pause)
    return single, bulk


def is_batch_due(destination: Destination, now: datetime) -> bool:
    if destination.mode != "batch" or destination.last_batch_at is None:
        return True
    return now - destination.last_batch_at >= timedelta(minutes=destination.batch_interval_minutes)


def deliver_destination(destination_id: int, redis: Redis | None = None, *, time_budget: float = 30.0,
                        batch_size: int | None = None) -> DeliveryReport:
    report = DeliveryReport(destination_id)
    # Read afresh: a caller's session may hold this row from an earlier run, whose commits did not expire it
    # (see below), and a stale copy would miss a pause or a person's pause switch set since.
    destination = db.session.get(Destination, destination_id, populate_existing=True)
    if destination is None or not destination.enabled or destination.paused_at is not None:
        report.stopped = "paused or disabled"
        return report
    if not is_batch_due(destination, now_utc()):
        report.stopped = "batch interval not reached"
        return report
    adapter = build_adapter(destination)
    pause = Pause(redis, adapter.account(), destination.id, destination.kind)
    if (until := pause.check(destination.rate_limited_until)) is not None:
        report.stopped, report.not_before = RATE_LIMITED, until  # nothing is claimed, nothing sent
        return report
    # Commits must not expire the destination (each access would reload it); the job's session ends with it.
    session = db.session()  # the scoped session's Session itself (the proxy does not forward this flag)
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    try:
        if destination.mode == "batch":
            destination.last_batch_at = now_utc()
            db.session.commit()
        _run_to_end(_Run.start(destination, adapter, pause, redis, time_budget, report, batch_size))
    finally:
        session.expire_on_commit = expire_on_commit
    return report


def _run_to_end(run: _Run) -> None:
    """Drain, then record every answer in hand, also when the run fails (then best effort, and re-raise)."""
    try:
        _drain(run)
        _record(run, final=True)
        run.recorder.flush()
    except BaseException:
        _record_quietly(run)
        raise
    finally:
        run.lookahead.close()
        run.recorder.close()
        run.report.add(run.recorder.counts)
        run.report.sent_requests = run.recorder.requests


def _record_quietly(run: _Run) -> None:
    """On the way out of a failed run: the answers already in hand are still worth recording."""
    try:
        db.session.rollback()
        _record(run, final=True)
    except Exception:
        log.exception("could not record the last answers of destination %s; their leases will run out",
                      run.destination.id)


@dataclass
class _Run:
    """One delivery run: the destination, its adapter, limits, client, deadline and the answers not yet recorded."""

    destination: Destination   # loaded by the job's session: read by the sending thread only
    destination_id: int
    mode: str
    adapter: DestinationAdapter
    secrets: list[str]
    policy: RetryPolicy
    client: Any
    pause: Pause
    single: Slots
    bulk: Slots
    worker: str
    deadline: float
    batch_size: int
    report: DeliveryReport
    recorder: Recorder
    lookahead: Lookahead
    health: HealthLog          # as this run sees it, and as last handed to the recorder
    claimed: dict[int, ClaimedEvent] = field(default_factory=dict)  # leased, not yet recorded or released
    # One claim at a time per run: two at once would split a small backlog into two smaller requests.
    claiming: threading.Lock = field(default_factory=threading.Lock)
    group: list[outcomes.Sent] = field(default_factory=list)
    group_started: float = 0.0
    expired_looked_at: float = float("-inf")  # monotonic time of the last look for leases that ran out

    @classmethod
    def start(cls, destination: Destination, adapter: DestinationAdapter, pause: Pause, redis: Redis | None,
              time_budget: float, report: DeliveryReport, batch_size: int | None) -> _Run:
        """One slot per single request, reserved right before it (none held ahead for later requests): that one
        round trip also reads the account's pause, so no request leaves after another worker's 429 was stored.
        The slot is still stamped `hold` ahead, so a send delayed after its reservation stays inside the window."""
        app = current_app._get_current_object()
        secrets, policy = adapter.secrets(), RetryPolicy.from_config()
        single_limiter, bulk_limiter = limiters(redis, destination, pause)
        recorder = make_recorder(app, destination.id, secrets, policy)
        return cls(destination, destination.id, destination.mode, adapter, secrets, policy,
                   get_client(app.config["DELIVERY_TIMEOUT"]), pause, Slots(single_limiter, chunk=1),
                   Slots(bulk_limiter, hold=0.0, chunk=1), worker_identity(), time.monotonic() + time_budget,
                   batch_size or app.config["DELIVERY_BATCH"], report, recorder, make_lookahead(app),
                   HealthLog.of(destination))

    def ending(self) -> str | None:
        """Why the run must end now, with work left for a follow-up job: its worker is shutting down (the run
        stops at the next batch or rate-limit wait, records what it has, hands the rest back), or the budget
        is spent."""
        if shutdown.requested():
            return "worker shutting down"
        return "time budget" if time.monotonic() >= self.deadline else None

    def time_left(self) -> float:
        """Seconds the run may still wait for anything (none once it is ending)."""
        return 0.0 if self.ending() else self.deadline - time.monotonic()

    def group_due(self) -> bool:
        if not self.group:
            return False
        events = sum(len(sent.request.event_ids) for sent in self.group)
        return (len(self.group) >= GROUP_REQUESTS or events >= GROUP_EVENTS
                or time.monotonic() - self.group_started >= GROUP_SECONDS)


@dataclass
class _Batch:
    """Built requests with their leased events, or why there are none (stopped) and whether work remains."""

    requests: list[PreparedRequest] = field(default_factory=list)
    events: dict[int, ClaimedEvent] = field(default_factory=dict)
    stopped: str | None = None
    more: bool = False
    not_before: datetime | None = None


@dataclass
class _Stop:
    """Why sending a batch stopped early, and the requests that were not sent."""

    reason: str
    unsent: list[PreparedRequest]
    more: bool = False
    not_before: datetime | None = None


def _drain(run: _Run) -> None:
    """Send batch after batch, one request at a time, while the next batches are claimed and built ahead
    (`lookahead.depth` of them: one's claim waits on the database while another is built) and the answers
    are recorded by the recorder."""
    ahead = deque(_ahead(run) for _ in range(run.lookahead.depth))
    while True:
        batch = ahead.popleft().result()
        if not _take(run, batch):
            if batch.stopped is not None:
                break
            if ahead:
                continue
            # Every claim ahead ran before the answers so far were recorded: once they are, a Fulfilled
            # Order they blocked may be due.
            _record(run)
            run.recorder.flush()
            batch = _ahead(run).result()
            if not _take(run, batch):
                break
        ahead.append(_ahead(run))
        stop = _send_batch(run, batch.requests)
        if stop is not None:
            _record(run)
            _release(run, stop.unsent + _settle(run, ahead), not_before=stop.not_before)
            run.report.stopped, run.report.more, run.report.not_before = stop.reason, stop.more, stop.not_before
            return
    _release(run, _settle(run, ahead))
    _record(run)


def _settle(run: _Run, ahead: deque[Pending[_Batch]]) -> list[PreparedRequest]:
    """The requests of batches claimed ahead that will not be sent now (their events to be released)."""
    unsent = []
    while ahead:
        pending = ahead.popleft()
        if pending.started:
            batch = pending.result()
            run.claimed.update(batch.events)
            unsent += batch.requests
    return unsent


def _ahead(run: _Run) -> Pending[_Batch]:
    return run.lookahead.ahead(lambda: _next_batch(run))


def _take(run: _Run, batch: _Batch) -> bool:
    """Adopt a claimed batch (its events are now this run's to record or release); False when it is empty."""
    run.claimed.update(batch.events)
    if batch.stopped is not None:
        run.report.stopped, run.report.more, run.report.not_before = batch.stopped, batch.more, batch.not_before
    return bool(batch.requests)


def _send_batch(run: _Run, requests: list[PreparedRequest]) -> _Stop | None:
    """Send each request in turn, within the rate limit, queueing the answers for the recorder."""
    for index, request in enumerate(requests):
        slots = run.bulk if len(request.event_ids) > 1 else run.single
        if not slots.take(len(requests) - index, run.time_left()):
            if until := run.pause.active():  # another worker's platform answer paused the account
                return _Stop(RATE_LIMITED, requests[index:], not_before=until)
            return _Stop(run.ending() or "rate limit", requests[index:], more=True)
        stop = _answered(run, request, send(run.client, request))
        if stop:
            return _Stop(stop[0], requests[index + 1:], not_before=stop[1])
        if run.group_due():
            _record(run)
    return None


def _next_batch(run: _Run) -> _Batch:
    """Claim and build the next batch (in the look-ahead thread's session on PostgreSQL); no requests when
    nothing is due, the budget is spent or the destination paused."""
    config = current_app.config
    while True:
        if ending := run.ending():
            return _Batch(stopped=ending, more=True)
        if unwanted := _unwanted(run.destination_id):
            return _Batch(stopped=unwanted[0], not_before=unwanted[1])
        lease = config["DELIVERY_LEASE_SECONDS"]
        with run.claiming:  # the other look-ahead thread may build meanwhile, but not claim
            expired = time.monotonic() - run.expired_looked_at >= min(EXPIRED_LEASE_SECONDS, lease)
            if expired:
                run.expired_looked_at = time.monotonic()
            events = claim.claim_due(run.destination_id, run.batch_size, run.worker, lease, now_utc(),
                                     expired=expired)
        if not events:
            return _Batch()
        by_id = {event.id: event for event in events}
        bulk = run.mode == "batch" or len(events) >= config["BULK_THRESHOLD"]
        built = run.adapter.build_requests([_outbound(e) for e in events], bulk=bulk)
        covered = {i for request in built.requests for i in request.event_ids} | set(built.skipped)
        skipped = dict(built.skipped) | {i: "the adapter built no request for this event"
                                         for i in by_id if i not in covered}
        outcomes.mark_skipped(skipped, by_id, now_utc())
        if built.requests:
            return _Batch(built.requests, {i: event for i, event in by_id.items() if i not in skipped})


def _answered(run: _Run, request: PreparedRequest,
              result: SendResult) -> tuple[str, datetime | None] | None:
    """Classify an answer, queue it for recording, update the destination's health; returns a stop reason."""
    classification = outcomes.masked(run.adapter.classify(result.status, result.headers, result.body, result.error),
                                      run.secrets)  # the message becomes a pause reason, a log line, an error
    at = now_utc()
    if not run.group:
        run.group_started = time.monotonic()
    run.group.append(outcomes.Sent(request, result, classification, at))
    update_health(run.health.current, classification, at, run.policy)
    if stop := stop_reason(run.health.current, classification, result.status):
        return stop
    if throttled(classification, result.status):  # the whole account waits, in every worker, from now on
        return f"platform rate limit ({result.status})", run.pause.start(classification.retry_after)
    if run.pause.streak and classification.outcome is Outcome.DELIVERED:
        run.pause.reset_backoff()
    return None


def _unwanted(destination_id: int) -> tuple[str, datetime | None] | None:
    """Re-read the pause switch each round (a person may pause the destination while it drains), and the
    database copy of the platform's pause (a flushed Redis forgot it)."""
    table = Destination.__table__
    row = db.session.execute(sa.select(table.c.enabled, table.c.paused_at, table.c.rate_limited_until)
                             .where(table.c.id == destination_id)).one_or_none()
    if row is None or not row.enabled or row.paused_at is not None:
        return "paused or disabled", None
    if row.rate_limited_until is not None and row.rate_limited_until > now_utc():
        return RATE_LIMITED, row.rate_limited_until
    return None


def _record(run: _Run, *, final: bool = False) -> None:
    """Hand the answers in hand (and the health changes due) to the recorder; their events leave `claimed`."""
    health = run.health.due(final=final)
    if not run.group and not health:
        return
    group, run.group = run.group, []
    ids = [event_id for sent in group for event_id in sent.request.event_ids]
    events = {event_id: run.claimed[event_id] for event_id in ids}
    for event_id in ids:
        run.claimed.pop(event_id, None)
    run.recorder.submit(Group(group, events, health))


def _release(run: _Run, requests: list[PreparedRequest], not_before: datetime | None = None) -> None:
    """Hand back the events of requests that were never sent."""
    ids = {i for request in requests for i in request.event_ids}
    claim.release([run.claimed.pop(i) for i in ids if i in run.claimed], not_before=not_before)


def _outbound(event: ClaimedEvent) -> OutboundEvent:
    """The adapter's view of an outbox row (a ClaimedEvent or an ORM Event)."""
    return OutboundEvent(id=event.id, name=event.name, unique_id=event.unique_id, payload=event.payload,
                         occurred_at=event.occurred_at, historical=event.historical)
