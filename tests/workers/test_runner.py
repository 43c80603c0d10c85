"""The worker's log lines carry the job they belong to."""

import logging

from workers.runner import JobContextFilter


def test_log_lines_outside_a_job_are_marked():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    assert JobContextFilter().filter(record) and record.job == "-"


def test_log_lines_inside_a_job_name_it(app, redis, worker, caplog):
    from workers.queue import connect, enqueue

    caplog.handler.addFilter(JobContextFilter())
    with caplog.at_level(logging.INFO):
        enqueue(connect(app.config["REDIS_URL"]), "default", "workers.jobs.insight.refresh_rfm_job")
        worker(["default"])
    stamped = [r.job for r in caplog.records if getattr(r, "job", "-") != "-"]
    assert any(job.startswith("refresh_rfm_job:") for job in stamped)
