"""RQ job: deliver one destination's due events (signalled by ingest, the sweeper, resume or retry)."""

from __future__ import annotations

import logging

from flask import current_app

from workers.delivery.engine import deliver_destination
from workers.queue import JOB_DELIVER, clear_signal, connect, deliver_signal_key, signal

log = logging.getLogger(__name__)


def deliver_destination_job(destination_id: int) -> dict:
    redis = connect(current_app.config["REDIS_URL"])
    # Cleared before looking, so events committed while we work get a fresh job rather than waiting.
    clear_signal(redis, deliver_signal_key(destination_id))
    report = deliver_destination(destination_id, redis)
    if report.more:
        signal(redis, "delivery", JOB_DELIVER, deliver_signal_key(destination_id), destination_id)
    if report.sent_requests:
        log.info("destination %s: %s requests, %s (stopped: %s)", destination_id, report.sent_requests,
                 report.counts, report.stopped or "drained")
    return {"counts": report.counts, "requests": report.sent_requests, "stopped": report.stopped}
