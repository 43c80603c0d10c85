"""The parts that cannot report themselves: a dead worker runs no evaluation job, a dead scheduler enqueues none.
So each long-running process watches the other (workers/watchdog.py runs these once a minute):

- the scheduler watches the workers: with none registered for WORKER_GRACE it opens `worker_down` and sends
  the notices itself, in its own process (no worker would take a job);
- each worker watches the scheduler: when it is silent, it asks for an evaluation on the "alerts" queue, which
  opens `scheduler_down` (the cron closes it once the scheduler is back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app

from webapp.services.alerts.incidents import Evaluation, evaluate
from webapp.services.alerts.sending import send_all_due
from webapp.services.overview.runtime_status import runtime_status

WORKER_GRACE = timedelta(minutes=2)  # a restart or a deploy is not an incident


@dataclass
class WorkerWatch:
    """The scheduler's view of the workers, kept between ticks."""

    missing_since: datetime | None = None

    def tick(self, now: datetime | None = None) -> Evaluation | None:
        runtime = runtime_status(now)
        if not runtime.redis_ok or runtime.workers:
            self.missing_since = None  # workers are back: the cron's evaluation (on one of them) resolves it
            return None
        self.missing_since = self.missing_since or runtime.now
        if runtime.now - self.missing_since < WORKER_GRACE:
            return None
        result = evaluate(runtime.now, kinds=("worker_down",), runtime=runtime, signal=False)
        send_all_due(runtime.now)
        return result


def watch_scheduler(now: datetime | None = None) -> bool:
    """In a worker: True when the scheduler is silent and an evaluation was asked for."""
    from workers.queue import EVALUATE_ALERTS_KEY, JOB_EVALUATE_ALERTS, safe_signal

    runtime = runtime_status(now)
    if not runtime.redis_ok or runtime.scheduler_alive:
        return False
    safe_signal(current_app.config.get("REDIS_URL"), "alerts", JOB_EVALUATE_ALERTS, EVALUATE_ALERTS_KEY)
    return True
