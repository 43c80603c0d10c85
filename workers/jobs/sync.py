"""RQ jobs for catalog syncs: run one, and the cron dispatcher that starts due ones."""

from __future__ import annotations

from webapp.services.catalog.dispatch import dispatch_due_syncs
from webapp.services.catalog.sync import apply_run, run_sync


def sync_source_job(run_id: int) -> dict:
    run = run_sync(run_id)
    return {"run_id": run_id, "status": run.status if run else "missing"}


def apply_sync_job(run_id: int) -> dict:
    """Resume the apply of a run past its commit point (its worker died or was stopping)."""
    run = apply_run(run_id)
    return {"run_id": run_id, "status": run.status if run else "missing"}


def dispatch_due_syncs_job() -> dict:
    return dispatch_due_syncs()
