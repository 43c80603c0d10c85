"""Dashboard: jobs — RQ queues, workers, failed jobs (requeue / delete) and the cron scheduler."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from redis import Redis
from redis.exceptions import RedisError

from webapp.blueprints.common import dashboard_blueprint, is_htmx
from webapp.services.overview.jobs_info import JobsOverview, delete_failed, jobs_overview, requeue_failed

bp = dashboard_blueprint("jobs", __name__, url_prefix="/jobs")


def _connection() -> Redis | None:
    from webapp.extensions import get_redis

    try:
        return get_redis()
    except RuntimeError:
        return None


def _overview() -> JobsOverview:
    connection = _connection()
    if connection is None:
        from datetime import UTC, datetime

        return JobsOverview(now=datetime.now(UTC), redis_error="REDIS_URL is not set")
    return jobs_overview(connection)


def _render(notice: str | None = None, error: str | None = None):  # noqa: ANN202
    """The page, or (htmx: the 5-second poll and the buttons) the live sections alone."""
    template = "jobs/_live.html" if is_htmx() else "jobs/index.html"
    return render_template(template, overview=_overview(), notice=notice, error=error)


@bp.get("/")
def index():  # noqa: ANN201
    return _render()


def _act(action, job_id: str, done: str):  # noqa: ANN001, ANN202
    connection = _connection()
    notice = error = None
    try:
        if connection is None:
            raise ValueError("REDIS_URL is not set")
        result = action(connection, job_id)
        notice = done.format(job_id=job_id, result=result)
    except (ValueError, RedisError) as exc:
        error = str(exc)
    if is_htmx():
        return _render(notice, error)
    flash(error or notice, "error" if error else "success")
    return redirect(url_for("jobs.index"))


@bp.post("/failed/<job_id>/requeue")
def requeue(job_id: str):  # noqa: ANN201
    return _act(requeue_failed, job_id, "Job {job_id} is back on the {result} queue.")


@bp.post("/failed/<job_id>/delete")
def delete(job_id: str):  # noqa: ANN201
    return _act(delete_failed, job_id, "Job {job_id} deleted.")
