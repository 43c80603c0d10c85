"""RQ jobs for platform catalogs: one reconcile, the nightly full reconcile, and recovery of lost runs."""

from __future__ import annotations

from flask import current_app

from webapp.services.platform_catalogs import runs
from workers.catalogs.reconcile import run_reconcile
from workers.queue import connect


def reconcile_catalog_job(run_id: int) -> dict:
    url = current_app.config.get("REDIS_URL")
    run = run_reconcile(run_id, connect(url) if url else None)
    return {"run_id": run_id, "status": run.status if run else "missing"}


def nightly_catalogs_job() -> dict:
    return runs.nightly()


def recover_catalogs_job() -> dict:
    return runs.recover()
