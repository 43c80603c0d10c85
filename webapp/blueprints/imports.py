"""Dashboard: historical order imports (upload, progress, problems, resume)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from webapp.blueprints.common import allow_file_uploads, dashboard_blueprint, is_htmx
from webapp.extensions import db
from webapp.models import ImportRun
from webapp.services.orders.import_uploads import queue_import, recent_imports, save_import_file
from webapp.services.platform.progress import get_progress

bp = dashboard_blueprint("imports", __name__, url_prefix="/imports")
allow_file_uploads(bp, "upload")


@bp.get("/")
def index():  # noqa: ANN201
    return render_template("imports/index.html", runs=recent_imports(), error=None)


@bp.post("/")
def upload():  # noqa: ANN201
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise ValueError("file: choose a JSON Lines or CSV file of orders")
        path = save_import_file(upload.filename, upload.stream)
    except ValueError as exc:
        return render_template("imports/index.html", runs=recent_imports(), error=str(exc)), 422
    run = queue_import(path, historical=request.form.get("historical") == "1")
    flash(f"Import #{run.id} queued" + (f", resuming at record {run.position}" if run.position else ""), "success")
    return redirect(url_for("imports.show", run_id=run.id))


@bp.get("/<int:run_id>")
def show(run_id: int):  # noqa: ANN201
    run = db.get_or_404(ImportRun, run_id)
    progress = get_progress("import", run.id) if run.status in ("queued", "running") else None
    template = "imports/_progress.html" if is_htmx() else "imports/show.html"
    return render_template(template, run=run, progress=progress)


@bp.post("/<int:run_id>/resume")
def resume(run_id: int):  # noqa: ANN201
    from pathlib import Path

    run = db.get_or_404(ImportRun, run_id)
    if run.status == "succeeded":
        flash("This import already finished.", "warning")
    else:
        queue_import(Path(run.filename), run.historical)
        flash(f"Import #{run.id} resumes at record {run.position}.", "success")
    return redirect(url_for("imports.show", run_id=run.id))
