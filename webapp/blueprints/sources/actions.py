"""What people do to a source: sync it now (optionally allowing a large removal), delete it."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from webapp.blueprints.sources.pages import bp, get_source
from webapp.services.catalog.sources import delete_source
from webapp.services.catalog.sync import SyncAlreadyRunning, request_sync


@bp.post("/<int:source_id>/sync")
def sync(source_id: int):  # noqa: ANN201
    """Queue a run and go to the source page, where its progress shows; one run at a time per source."""
    source = get_source(source_id)
    if source.kind == "push":
        flash("Push sources are updated by POST /api/v1/products; there is nothing to fetch.", "warning")
        return redirect(url_for("sources.show", source_id=source.id))
    confirm = request.form.get("confirm_removals") == "1"
    try:
        run = request_sync(source, trigger="manual", confirm_removals=confirm)
    except SyncAlreadyRunning as exc:
        flash(f"Sync #{exc.run.id} is already {exc.run.status}; its progress is shown below.", "warning")
        return redirect(url_for("sources.show", source_id=source.id))
    message = f"Sync #{run.id} queued" + (" with removals allowed." if confirm else ".")
    flash(message, "success")
    return redirect(url_for("sources.show", source_id=source.id))


@bp.get("/<int:source_id>/delete")
def confirm_delete(source_id: int):  # noqa: ANN201
    return render_template("sources/delete.html", source=get_source(source_id))


@bp.post("/<int:source_id>/delete")
def delete(source_id: int):  # noqa: ANN201
    source = get_source(source_id)
    name, count = source.name, source.product_count
    delete_source(source)
    flash(f"{name} deleted with its {count:,} products and its run history.", "success")
    return redirect(url_for("sources.index"))
