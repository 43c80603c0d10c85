"""RQ jobs for alerts: the evaluation on the cron (every minute) and one channel's sending, both on the
"alerts" queue, so a slow or failing channel never sits in front of event delivery."""

from __future__ import annotations

import logging

from flask import current_app

from webapp.services.alerts import incidents, sending
from workers.queue import EVALUATE_ALERTS_KEY, alerts_signal_key, clear_signal, connect

log = logging.getLogger(__name__)


def evaluate_alerts_job() -> dict:
    """Open and close incidents from what holds now, then signal every channel with notices due."""
    url = current_app.config.get("REDIS_URL")
    if url:
        clear_signal(connect(url), EVALUATE_ALERTS_KEY)
    result = incidents.evaluate()
    signalled = sending.signal_due()
    if result.opened or result.resolved:
        log.info("alerts: opened %s, resolved %s, %s notices", result.opened, result.resolved, result.notices)
    return {**result.as_dict(), "signalled": signalled}


def send_alerts_job(channel_id: int) -> dict:
    url = current_app.config.get("REDIS_URL")
    if url:
        clear_signal(connect(url), alerts_signal_key(channel_id))  # notices queued meanwhile get a fresh job
    return sending.send_due(channel_id)
