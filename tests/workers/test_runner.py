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


def test_the_command_listener_stops_at_once_when_the_worker_ends(app, redis):
    """RQ listens for commands with a 60 s poll and stops the listener without a timeout: when the listener had
    already read the unsubscribe reply and was back in its blocking read (a race), a worker ending a burst run
    hung up to a minute after its work. Here the listener is stopped while it waits with nothing to read, the
    race's outcome made certain: it stops within its 1 s poll."""
    import time

    from workers.runner import AppWorker

    worker = AppWorker(["default"], connection=redis)
    worker.subscribe()
    time.sleep(0.3)  # the listener thread is in its blocking read
    started = time.monotonic()
    worker.pubsub_thread.stop()
    assert time.monotonic() - started < 10  # RQ's own listener: 60 s
    assert not worker.pubsub_thread.is_alive()
    worker.pubsub.close()
