"""RQ job on the cron (every minute): find due and stuck work in the database and signal it.

This is what makes Redis disposable: a lost job, a flushed Redis or a killed worker only delays
delivery until the next sweep.
"""

from __future__ import annotations

from flask import current_app

from webapp.services.catalog.orphaned_runs import fail_orphaned_runs
from workers.delivery.sweeper import sweep
from workers.queue import connect


def sweep_job() -> dict:
    connection = connect(current_app.config["REDIS_URL"])
    result = sweep(connection)
    orphans = fail_orphaned_runs(connection)  # sync runs / feed builds whose worker died
    return {**result, "orphaned_runs": orphans} if orphans else result
