"""RQ job: deliver one destination's due events (signalled by ingest, the sweeper, resume or retry).

While the platform account is paused (it answered 429, or 503 with Retry-After) the job sends nothing. A pause
that ends within PAUSE_WAIT_SECONDS is waited out here, like a rate-limit wait, with the destination's signal
held so no other job piles up behind it; a longer one is left to the sweeper, which signals the destination at
its first round after the pause (it reads the pause from the database, so a flushed Redis changes nothing).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from flask import current_app
from redis import Redis

from workers import shutdown
from workers.delivery.engine import DeliveryReport, deliver_destination
from workers.queue import JOB_DELIVER, clear_signal, connect, deliver_signal_key, hold_signal, signal

log = logging.getLogger(__name__)

PAUSE_WAIT_SECONDS = 15.0
_WAIT_STEP = 0.1
_PAUSES_WAITED = 4  # pauses waited out in one job at most (a platform that keeps saying "wait")


def deliver_destination_job(destination_id: int) -> dict:
    redis = connect(current_app.config["REDIS_URL"])
    key = deliver_signal_key(destination_id)
    for _ in range(_PAUSES_WAITED + 1):
        # Cleared before looking, so events committed while we work get a fresh job rather than waiting.
        clear_signal(redis, key)
        report = deliver_destination(destination_id, redis)
        if report.not_before is None or not _wait_out(redis, destination_id, report.not_before):
            break
    if report.more:
        signal(redis, "delivery", JOB_DELIVER, key, destination_id)
    if report.sent_requests or report.not_before:
        log.info("destination %s: %s requests, %s (stopped: %s%s)", destination_id, report.sent_requests,
                 report.counts, report.stopped or "drained",
                 f" until {report.not_before.isoformat()}" if report.not_before else "")
    return _summary(report)


def _wait_out(redis: Redis, destination_id: int, until: datetime) -> bool:
    """Wait for a short pause to end (True: look again) while holding the destination's signal; a long one
    (or a worker shutting down) leaves the signal held until the pause ends, for the sweeper to take over."""
    left = (until - datetime.now(UTC)).total_seconds()
    key = deliver_signal_key(destination_id)
    hold_signal(redis, key, max(left, 0.0))
    if left > PAUSE_WAIT_SECONDS:
        return False
    deadline = time.monotonic() + left
    while time.monotonic() < deadline:
        if shutdown.requested():
            return False
        time.sleep(min(_WAIT_STEP, max(0.0, deadline - time.monotonic())))
    return True


def _summary(report: DeliveryReport) -> dict:
    return {"counts": report.counts, "requests": report.sent_requests, "stopped": report.stopped,
            "not_before": report.not_before.isoformat() if report.not_before else None}
