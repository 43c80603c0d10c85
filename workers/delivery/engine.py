"""Drain one destination's due events: claim a batch, build requests, respect the rate limit, send, record.

A job works for at most `time_budget` seconds and then asks for a follow-up job, so one busy destination
never starves the others, and a worker killed at any point loses nothing (leases + sweeper). Answers are
recorded in groups (GROUP_REQUESTS requests or GROUP_SECONDS, whichever comes first, and always before the
run stops), so the database costs one commit per group instead of one per request.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from redis import Redis

from webapp.extensions import db
from webapp.models import Destination
from webapp.services.crypto import decrypt_json
from workers.delivery import claim, outcomes
from workers.delivery.claim import ClaimedEvent
from workers.delivery.http_client import SendResult, get_client, send
from workers.delivery.policy import RetryPolicy
from workers.destinations import get_adapter_class
from workers.destinations.base import (
    Classification,
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


@dataclass
class DeliveryReport:
    destination_id: int
    sent_requests: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    stopped: str | None = None  # why the run ended early (paused, rate limited, budget)
    more: bool = False          # due work remains: the caller should signal again

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


def limiters(redis: Redis | None, destination: Destination) -> tuple[RateLimiter | None, RateLimiter | None]:
    if redis is None:
        return None, None
    limits = destination.rate_limits or {}
    single = RateLimiter(redis, f"{destination.id}:single", Limits.from_dict(limits))
    bulk = RateLimiter(redis, f"{destination.id}:bulk", Limits(
        float(limits.get("bulk_burst_per_second") or 0), float(limits.get("bulk_per_minute") or 0)))
    return single, bulk


def is_batch_due(destination: Destination, now: datetime) -> bool:
    if destination.mode != "batch" or destination.last_batch_at is None:
        return True
    return now - destination.last_batch_at >= timedelta(minutes=destination.batch_interval_minutes)


def deliver_destination(destination_id: int, redis: Redis | None = None, *, time_budget: float = 30.0,
                        batch_size: int | None = None) -> DeliveryReport:
    report = DeliveryReport(destination_id)
    destination = db.session.get(Destination, destination_id)
    if destination is None or not destination.enabled or destination.paused_at is not None:
        report.stopped = "paused or disabled"
        return report
    if not is_batch_due(destination, now_utc()):
        report.stopped = "batch interval not reached"
        return report
    # Commits must not expire the destination (each access would reload it); the job's session ends with it.
    session = db.session()  # the scoped session's Session itself (the proxy does not forward this flag)
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    try:
        if destination.mode == "batch":
            destination.last_batch_at = now_utc()
            db.session.commit()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="deliver-send") as sender:
            _drain(_Run.start(destination, redis, time_budget, report, batch_size, sender))
    finally:
        session.expire_on_commit = expire_on_commit
    return report


@dataclass
class _Run:
    """One delivery run: the destination, its adapter, limits, client, deadline and the answers not yet recorded."""

    destination: Destination
    adapter: DestinationAdapter
    secrets: list[str]
    policy: RetryPolicy
    client: Any
    single: Slots
    bulk: Slots
    worker: str
    deadline: float
    batch_size: int
    sender: Executor
    report: DeliveryReport
    claimed: dict[int, ClaimedEvent] = field(default_factory=dict)  # leased, not yet recorded or released
    group: list[outcomes.Sent] = field(default_factory=list)
    group_started: float = 0.0

    @classmethod
    def start(cls, destination: Destination, redis: Redis | None, time_budget: float, report: DeliveryReport,
              batch_size: int | None, sender: Executor) -> _Run:
        adapter = build_adapter(destination)
        single_limiter, bulk_limiter = limiters(redis, destination)
        return cls(destination, adapter, adapter.secrets(), RetryPolicy.from_config(),
                   get_client(current_app.config["DELIVERY_TIMEOUT"]), Slots(single_limiter),
                   Slots(bulk_limiter, hold=0.0, chunk=1), worker_identity(), time.monotonic() + time_budget,
                   batch_size or current_app.config["DELIVERY_BATCH"], sender, report)

    def time_left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def group_due(self) -> bool:
        if not self.group:
            return False
        events = sum(len(sent.request.event_ids) for sent in self.group)
        return (len(self.group) >= GROUP_REQUESTS or events >= GROUP_EVENTS
                or time.monotonic() - self.group_started >= GROUP_SECONDS)


def _drain(run: _Run) -> None:
    """Send batch after batch, one request at a time; while a request is out, the main thread records the
    previous answers and claims the next batch, so database work overlaps the platform's."""
    requests = _next_requests(run)
    while requests:
        upcoming: list[PreparedRequest] | None = None
        for index, request in enumerate(requests):
            slots = run.bulk if len(request.event_ids) > 1 else run.single
            if not slots.take(len(requests) - index, run.time_left()):
                _record(run)
                _release(run, requests[index:])
                run.report.stopped, run.report.more = "rate limit", True
                return
            last = index == len(requests) - 1

            def chores(last: bool = last) -> None:
                nonlocal upcoming
                if run.group_due():
                    _record(run)
                if last:
                    upcoming = _next_requests(run)

            result = _send(run, request, chores if last or run.group_due() else None)
            stop = _answered(run, request, result)
            if stop:
                _record(run)
                _release(run, requests[index + 1:] + (upcoming or []), not_before=stop[1])
                run.report.stopped = stop[0]
                return
        if upcoming is None and run.report.stopped is None:
            # The look-ahead claim ran before the last answers were recorded: once they are, a Fulfilled
            # Order they blocked may be due.
            _record(run)
            upcoming = _next_requests(run)
        requests = upcoming
    _record(run)


def _next_requests(run: _Run) -> list[PreparedRequest] | None:
    """Claim and build the next batch; None when nothing is due, the budget is spent or the destination paused."""
    config = current_app.config
    while True:
        if run.time_left() <= 0:
            run.report.stopped, run.report.more = "time budget", True
            return None
        if not _still_wanted(run.destination):
            run.report.stopped = "paused or disabled"
            return None
        events = claim.claim_due(run.destination.id, run.batch_size, run.worker, config["DELIVERY_LEASE_SECONDS"],
                                 now_utc())
        if not events:
            return None
        by_id = {event.id: event for event in events}
        run.claimed.update(by_id)
        bulk = run.destination.mode == "batch" or len(events) >= config["BULK_THRESHOLD"]
        built = run.adapter.build_requests([_outbound(e) for e in events], bulk=bulk)
        covered = {i for request in built.requests for i in request.event_ids} | set(built.skipped)
        skipped = dict(built.skipped) | {i: "the adapter built no request for this event"
                                         for i in by_id if i not in covered}
        outcomes.mark_skipped(skipped, by_id, now_utc())
        for event_id in skipped:
            run.claimed.pop(event_id, None)
        if built.requests:
            return built.requests


def _send(run: _Run, request: PreparedRequest, chores: Callable[[], None] | None) -> SendResult:
    """Send one request; with chores, send from the sender thread and do the chores while the platform works."""
    if chores is None:
        return send(run.client, request)
    future = run.sender.submit(send, run.client, request)
    try:
        chores()
    finally:
        result = future.result()  # the request is out either way: wait for its answer before going on
    return result


def _answered(run: _Run, request: PreparedRequest,
              result: SendResult) -> tuple[str, datetime | None] | None:
    """Classify an answer, queue it for recording, update the destination's health; returns a stop reason."""
    classification = run.adapter.classify(result.status, result.headers, result.body, result.error)
    at = now_utc()
    if not run.group:
        run.group_started = time.monotonic()
    run.group.append(outcomes.Sent(request, result, classification, at))
    outcomes.update_health(run.destination, classification, at, run.policy)
    return _stop_reason(run.destination, classification, result.status)


def _still_wanted(destination: Destination) -> bool:
    """Re-read the pause switch each round: commits no longer reload the destination by themselves."""
    db.session.refresh(destination, ["enabled", "paused_at", "pause_reason"])
    return destination.enabled and destination.paused_at is None


def _record(run: _Run) -> None:
    if not run.group:
        return
    group, run.group = run.group, []
    run.report.add(outcomes.record_many(run.destination, group, run.claimed, run.secrets, run.policy))
    run.report.sent_requests += len(group)
    for sent in group:
        for event_id in sent.request.event_ids:
            run.claimed.pop(event_id, None)


def _stop_reason(destination: Destination, classification: Classification,
                 status: int | None) -> tuple[str, datetime | None] | None:
    """(why, not_before) when the run must stop after this answer: a pause, or the platform's 429."""
    if destination.paused_at is not None:
        return "destination paused: " + (destination.pause_reason or ""), None
    if classification.outcome is Outcome.RETRY and status == 429:
        wait = classification.retry_after if classification.retry_after is not None else 10.0
        return "platform rate limit (429)", now_utc() + timedelta(seconds=wait)
    return None


def _release(run: _Run, requests: list[PreparedRequest], not_before: datetime | None = None) -> None:
    """Hand back the events of requests that were never sent."""
    ids = {i for request in requests for i in request.event_ids}
    claim.release([run.claimed.pop(i) for i in ids if i in run.claimed], not_before=not_before)


def _outbound(event: ClaimedEvent) -> OutboundEvent:
    """The adapter's view of an outbox row (a ClaimedEvent or an ORM Event)."""
    return OutboundEvent(id=event.id, name=event.name, unique_id=event.unique_id, payload=event.payload,
                         occurred_at=event.occurred_at, historical=event.historical)
