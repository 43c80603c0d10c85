"""Jobs dashboard against a real Redis: queues, failed jobs (traceback, requeue, delete), scheduler."""

from __future__ import annotations

import re
import time

from rq.cron import CronScheduler
from rq.cron_scheduler_registry import get_registry_key

from tests.conftest import csrf_token
from workers.queue import enqueue, get_queue
from workers.schedule import PERIODIC_JOBS, resolve

HTMX = {"HX-Request": "true"}


def _failing_job(redis, worker) -> str:  # noqa: ANN001
    job = enqueue(redis, "default", "builtins.int", "not-a-number")
    worker(["default"])
    assert get_queue("default", redis).failed_job_registry.count == 1
    return job.id


def test_page_lists_queues_periodic_jobs_and_missing_processes(logged_in) -> None:  # noqa: ANN001
    html = logged_in.get("/jobs/").get_data(as_text=True)
    for name in ("delivery", "sync", "feeds", "default"):
        assert f'<td class="mono">{name}</td>' in html
    for periodic in PERIODIC_JOBS:
        assert f"<strong>{periodic.name}</strong>" in html
    assert "every 1 min" in html and "cron 45 3 * * *" in html
    assert "No scheduler is running." in html and "No worker is running" in html
    assert "No failed jobs." in html
    assert 'hx-trigger="every 5s"' in html


def test_page_shows_the_configured_sweep_interval(app, logged_in) -> None:  # noqa: ANN001
    app.config["SWEEP_SECONDS"] = 15
    html = logged_in.get("/jobs/").get_data(as_text=True)
    sweep = html[html.index("<strong>sweep</strong>"):]
    assert "every 15s" in sweep[:600] or "every 15 s" in sweep[:600], sweep[:600]


def test_htmx_poll_gets_the_live_sections_alone(logged_in) -> None:  # noqa: ANN001
    html = logged_in.get("/jobs/", headers=HTMX).get_data(as_text=True)
    assert "<html" not in html and html.strip().startswith('<div id="jobs-live"')
    assert "Queues" in html


def test_queue_counts(logged_in, redis) -> None:  # noqa: ANN001
    for _ in range(3):
        enqueue(redis, "feeds", "builtins.len", "abc")
    html = logged_in.get("/jobs/", headers=HTMX).get_data(as_text=True)
    assert '<td class="mono">feeds</td>\n      <td class="num">3</td>' in html


def test_failed_job_shows_its_traceback_and_requeue_puts_it_back(logged_in, redis, worker) -> None:  # noqa: ANN001
    job_id = _failing_job(redis, worker)
    html = logged_in.get("/jobs/").get_data(as_text=True)
    assert f'id="job-{job_id}"' in html and "builtins.int" in html
    assert "ValueError: invalid literal for int() with base 10: &#39;not-a-number&#39;" in html
    assert "Traceback (most recent call last)" in html
    assert 'hx-preserve="true"' in html  # an opened traceback stays open across the 5 s refresh

    token = csrf_token(logged_in, "/jobs/")
    html = logged_in.post(f"/jobs/failed/{job_id}/requeue", data={"csrf_token": token},
                          headers=HTMX).get_data(as_text=True)
    assert "<html" not in html and f"Job {job_id} is back on the default queue." in html
    queue = get_queue("default", redis)
    assert queue.get_job_ids() == [job_id] and queue.failed_job_registry.count == 0
    assert "No failed jobs." in html

    html = logged_in.post(f"/jobs/failed/{job_id}/requeue", data={"csrf_token": token},
                          headers=HTMX).get_data(as_text=True)
    assert "is not in a failed-jobs list" in html


def test_delete_failed_job_without_htmx(logged_in, redis, worker) -> None:  # noqa: ANN001
    job_id = _failing_job(redis, worker)
    token = csrf_token(logged_in, "/jobs/")
    response = logged_in.post(f"/jobs/failed/{job_id}/delete", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/jobs/"
    assert get_queue("default", redis).failed_job_registry.count == 0
    assert redis.exists(f"rq:job:{job_id}") == 0
    assert f"Job {job_id} deleted." in logged_in.get("/jobs/").get_data(as_text=True)


def test_registered_scheduler_is_alive_and_shows_last_runs(logged_in, redis) -> None:  # noqa: ANN001
    scheduler = CronScheduler(connection=redis, name="test-scheduler")
    sweep = next(job for job in PERIODIC_JOBS if job.name == "sweep")
    scheduler.register(resolve(sweep.func), sweep.queue, interval=sweep.interval, name=sweep.name)
    scheduler.register_birth()
    scheduler.enqueue_jobs()
    scheduler.save()
    html = logged_in.get("/jobs/").get_data(as_text=True)
    assert "No scheduler is running." not in html
    assert "<strong>Alive</strong>" in html and "test-scheduler" in html
    row = html[html.index("<strong>sweep</strong>"):]
    row = row[:row.index("</tr>")]
    assert re.search(r">(just now|\d s ago)</time>", row) and "badge-queued" in row  # last run: a moment ago
    assert re.search(r"in (5\d|60) s|in 1 min", row), row  # the next run, an interval later
    other = html[html.index("<strong>refresh-rfm</strong>"):]
    assert '<span class="muted">never</span>' in other[:other.index("</tr>")]


def test_silent_scheduler_is_flagged(logged_in, redis) -> None:  # noqa: ANN001
    scheduler = CronScheduler(connection=redis, name="old-scheduler")
    scheduler.register_birth()
    redis.zadd(get_registry_key(), {"old-scheduler": time.time() - 600})  # last heartbeat 10 minutes ago
    html = logged_in.get("/jobs/").get_data(as_text=True)
    assert "<strong>Not responding</strong>" in html and "10 min ago" in html
    assert "No heartbeat for over 2 minutes" in html


def test_unreachable_redis_is_a_banner_not_an_error(app, logged_in) -> None:  # noqa: ANN001
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    response = logged_in.get("/jobs/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Redis is unreachable" in html and "ConnectionError" in html
    assert "Redis is unreachable" in logged_in.get("/jobs/", headers=HTMX).get_data(as_text=True)
