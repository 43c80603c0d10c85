"""RQ job: import historical orders from an uploaded file (resumable: it continues from the run's position)."""

import logging
from pathlib import Path

from webapp.extensions import db
from webapp.models import ImportRun
from webapp.services.orders.imports import run_import
from webapp.services.platform.progress import set_progress

log = logging.getLogger(__name__)


def import_orders_job(run_id: int) -> dict:
    run = db.session.get(ImportRun, run_id)
    if run is None or run.status == "succeeded":
        return {"run_id": run_id, "status": run.status if run else "missing"}
    run = run_import(run, Path(run.filename),
                     on_progress=lambda current: set_progress("import", current.id, current.position, current.total))
    log.info("import %s: %s imported, %s invalid", run.id, run.imported, run.failed)
    return {"run_id": run.id, "status": run.status, "imported": run.imported, "failed": run.failed}
