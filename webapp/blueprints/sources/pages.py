"""Source pages: the list, one source's detail with its live progress and run history, one run's problems."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, render_template, request

from feeds.fetch import redact
from webapp.blueprints.common import allow_file_uploads, dashboard_blueprint, is_htmx, render_page_or_partial
from webapp.extensions import db
from webapp.models import Source
from webapp.services.catalog.source_forms import KIND_LABELS, credentials_summary
from webapp.services.catalog.source_queries import (
    duration_text,
    last_good_run,
    run_history,
    run_progress,
    schedule_text,
    source_rows,
    source_run,
)
from webapp.services.catalog.sources import latest_run

bp = dashboard_blueprint("sources", __name__, url_prefix="/sources")
allow_file_uploads(bp, "create", "update")


@bp.app_template_global()
def source_kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


@bp.app_template_global()
def source_location(source: Source) -> str:
    """The source URL without any user:password in it (those belong in the credentials fields)."""
    return redact(source.location) if source.location else ""


@bp.app_template_global()
def source_schedule_text(source: Source) -> str:
    return schedule_text(source.schedule, source.timezone)


@bp.app_template_global()
def sync_run_duration(run: Any) -> str:
    return duration_text(run)


def get_source(source_id: int) -> Source:
    source = db.session.get(Source, source_id)
    if source is None:
        abort(404)
    return source


def _cursor(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() else None


@bp.get("/")
def index():  # noqa: ANN201
    return render_page_or_partial("sources/index.html", "sources/_table.html", rows=source_rows())


def show_context(source: Source) -> dict[str, Any]:
    last = latest_run(source.id)
    return {
        "source": source, "last_run": last, "credentials": credentials_summary(source),
        "progress": run_progress(last) if last is not None else None,
        "last_good": last_good_run(source.id) if last is not None and last.status in ("failed", "held") else None,
        "runs": run_history(source.id, after=_cursor("after"), before=_cursor("before")),
        "default_share": current_app.config["SYNC_MAX_REMOVE_SHARE"],
        "push_url": request.url_root.rstrip("/") + "/api/v1/products",
    }


@bp.get("/<int:source_id>")
def show(source_id: int):  # noqa: ANN201
    return render_template("sources/show.html", **show_context(get_source(source_id)))


@bp.get("/<int:source_id>/runs")
def runs(source_id: int):  # noqa: ANN201
    """Run history pages (htmx swaps the table; a plain visit gets the whole detail page)."""
    return render_page_or_partial("sources/show.html", "sources/_runs.html", **show_context(get_source(source_id)))


@bp.get("/<int:source_id>/runs/<int:run_id>")
def run_detail(source_id: int, run_id: int):  # noqa: ANN201
    source = get_source(source_id)
    run = source_run(source.id, run_id)
    if run is None:
        abort(404)
    return render_template("sources/run.html", source=source, run=run, progress=run_progress(run))


@bp.get("/<int:source_id>/runs/<int:run_id>/progress")
def progress(source_id: int, run_id: int):  # noqa: ANN201
    """The self-polling progress fragment: it asks again every second while the run is queued or running."""
    source = get_source(source_id)
    run = source_run(source.id, run_id)
    if run is None:
        abort(404)
    if not is_htmx():
        return run_detail(source_id, run_id)
    return render_template("sources/_progress.html", source=source, progress=run_progress(run))
