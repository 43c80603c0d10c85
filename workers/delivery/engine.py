"""Drain one destination's due events: claim a batch, build requests, respect the rate limit, send, record.

A job works for at most `time_budget` seconds and then asks for a follow-up job, so one busy destination
never starves the others, and a worker killed at any point loses nothing (leases + sweeper).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from redis import Redis

from webapp.extensions import db
from webapp.models import Destination, Event
from webapp.services.crypto import decrypt_json
from workers.delivery import claim, outcomes
from workers.delivery.http_client import get_client, send
from workers.delivery.policy import RetryPolicy
from workers.destinations import get_adapter_class
from workers.destinations.base import DestinationAdapter, OutboundEvent, Outcome, PreparedRequest
from workers.rate_limit import Limits, RateLimiter

log = logging.getLogger(__name__)


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
    if destination.mode == "batch":
        destination.last_batch_at = now_utc()
        db.session.commit()
    config = current_app.config
    policy = RetryPolicy.from_config()
    adapter = build_adapter(destination)
    secrets = adapter.secrets()
    single_limiter, bulk_limiter = limiters(redis, destination)
    client = get_client(config["DELIVERY_TIMEOUT"])
    size = batch_size or config["DELIVERY_BATCH"]
    worker = worker_identity()
    deadline = time.monotonic() + time_budget

    while time.monotonic() < deadline:
        events = claim.claim_due(destination_id, size, worker, config["DELIVERY_LEASE_SECONDS"], now_utc())
        if not events:
            return report
        by_id = {event.id: event for event in events}
        bulk = destination.mode == "batch" or len(events) >= config["BULK_THRESHOLD"]
        built = adapter.build_requests([_outbound(e) for e in events], bulk=bulk)
        covered = {i for request in built.requests for i in request.event_ids} | set(built.skipped)
        skipped = dict(built.skipped) | {i: "the adapter built no request for this event"
                                         for i in by_id if i not in covered}
        outcomes.mark_skipped(skipped, by_id, now_utc())
        pending = list(built.requests)
        while pending:
            request = pending.pop(0)
            limiter = bulk_limiter if len(request.event_ids) > 1 else single_limiter
            if limiter is not None and not limiter.acquire(max_wait=max(0.0, deadline - time.monotonic())):
                _release_requests([request, *pending], by_id)
                report.stopped, report.more = "rate limit", True
                return report
            stop = _send_one(destination, adapter, request, by_id, secrets, policy, client, report)
            if stop:
                _release_requests(pending, by_id, not_before=stop[1])
                report.stopped = stop[0]
                return report
    report.stopped, report.more = "time budget", True
    return report


def _send_one(destination: Destination, adapter: DestinationAdapter, request: PreparedRequest,
              by_id: dict[int, Event], secrets: list[str], policy: RetryPolicy, client,  # noqa: ANN001
              report: DeliveryReport) -> tuple[str, datetime | None] | None:
    """Send and record one request; returns (why, not_before) when the run must stop."""
    result = send(client, request)
    classification = adapter.classify(result.status, result.headers, result.body, result.error)
    report.add(outcomes.record(destination, request, result, classification, by_id, secrets, policy,
                               now_utc()))
    report.sent_requests += 1
    if destination.paused_at is not None:
        return "destination paused: " + (destination.pause_reason or ""), None
    if classification.outcome is Outcome.RETRY and result.status == 429:
        wait = classification.retry_after if classification.retry_after is not None else 10.0
        return "platform rate limit (429)", now_utc() + timedelta(seconds=wait)
    return None


def _release_requests(requests: list[PreparedRequest], by_id: dict[int, Event],
                      not_before: datetime | None = None) -> None:
    ids = {i for request in requests for i in request.event_ids}
    claim.release([by_id[i] for i in ids], not_before=not_before)


def _outbound(event: Event) -> OutboundEvent:
    return OutboundEvent(id=event.id, name=event.name, unique_id=event.unique_id, payload=event.payload,
                         occurred_at=event.occurred_at, historical=event.historical)
