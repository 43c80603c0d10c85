"""The RQ worker process: every job runs inside a fresh Flask app context with its own DB session."""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from collections.abc import Iterator
from typing import Any

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq import SimpleWorker

from workers import shutdown
from workers.queue import HEARTBEAT_SECONDS, QUEUE_NAMES, beat, connect, get_queue, heartbeat_key


class AppWorker(SimpleWorker):
    """SimpleWorker (no fork per job: ~3x the job rate) that pushes an app context around each job.

    A job that dies with the process is recovered by the database leases and the sweeper, not by RQ.
    """

    app: Flask

    def perform_job(self, job: Any, queue: Any, *args: Any, **kwargs: Any) -> bool:
        from webapp.extensions import db

        with self.app.app_context(), heartbeat(self.connection, job.id):
            try:
                return super().perform_job(job, queue, *args, **kwargs)
            finally:
                db.session.remove()

    def reorder_queues(self, reference_queue: Any) -> None:
        """Delivery comes first, but not twice in a row while other work waits. A delivery job runs up to its
        time budget and queues its own follow-up while a backlog lasts, so with delivery always first a busy
        destination (a replay, a backfill, a platform throttling) kept syncs, feed builds, erasures and imports
        queued for as long as it lasted. After a delivery job sync, feeds and default get the next look, in
        their own order; alerts stay after deliveries (a channel that does not answer never holds delivery up).
        After any other job the priority order is back."""
        if reference_queue.name == "delivery":
            turn = {"delivery": 1, "alerts": 2}
            self._ordered_queues = sorted(self.queues, key=lambda queue: turn.get(queue.name, 0))  # stable
        else:
            self._ordered_queues = self.queues[:]

    def subscribe(self) -> None:
        """RQ's command channel (stop, kill-horse), listened to with a 1 s poll instead of RQ's 60 s: stopping
        joins the listener thread without a timeout (redis-py), so a worker ending a burst run or shutting down
        otherwise hung up to a minute after its work was done."""
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(sleep_time=1, daemon=True,
                                                       exception_handler=self._pubsub_exception_handler)

    def request_stop(self, signum: Any, frame: Any) -> None:
        """Warm shutdown (first SIGTERM/SIGINT): RQ waits for the current job; tell the job, so a long one
        stops at its next safe point instead of running out its budget."""
        shutdown.request()
        super().request_stop(signum, frame)


@contextlib.contextmanager
def heartbeat(connection: Redis, job_id: str) -> Iterator[None]:
    """Beat the job's heartbeat key from a side thread while the job runs (a blocking read or a long
    transaction in the job must not make it look dead); the key goes when the job ends."""
    stop = threading.Event()

    def run() -> None:
        while True:
            with contextlib.suppress(RedisError):  # Redis away: the beat resumes when it is back
                beat(connection, job_id)
            if stop.wait(HEARTBEAT_SECONDS):
                return

    thread = threading.Thread(target=run, name=f"heartbeat-{job_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=HEARTBEAT_SECONDS)
        with contextlib.suppress(RedisError):
            connection.delete(heartbeat_key(job_id))


def make_worker(app: Flask, queues: list[str] | None = None) -> AppWorker:
    connection = connect(app.config["REDIS_URL"])
    worker = AppWorker([get_queue(name, connection) for name in (queues or QUEUE_NAMES)],
                       connection=connection)
    worker.app = app
    return worker


class JobContextFilter(logging.Filter):
    """Stamps every log line with the running job's id and function, so a worker's log reads per job."""

    def filter(self, record: logging.LogRecord) -> bool:
        from rq import get_current_job

        job = get_current_job()
        record.job = f"{job.func_name.rsplit('.', 1)[-1]}:{job.id[:8]}" if job else "-"
        return True


def install_job_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(job)s] %(name)s: %(message)s"))
    handler.addFilter(JobContextFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)


# A delivery round decodes ~1,000 payloads of ~100 containers each, none of them cyclic (reference counting
# frees them). At Python's default of a young collection every 700 allocations, the collector ran ~150 times a
# round and promoted the live batches into the older generations for full collections to walk again: 12-20% of
# a bulk worker's CPU (measured: 105-110 -> 85-98 ms per 1,000 events). Cyclic garbage still gets collected.
GC_YOUNG_ALLOCATIONS = 20_000


def run_worker(app: Flask, queues: list[str] | None = None, *, burst: bool = False) -> bool:
    install_job_logging(app.config.get("LOG_LEVEL", "INFO"))
    logging.getLogger("rq.worker").setLevel(app.config.get("LOG_LEVEL", "INFO"))
    worker = make_worker(app, queues)
    if not burst:
        from workers.watchdog import watch_scheduler

        watch_scheduler(app)  # the scheduler cannot say it stopped: a worker notices and raises the alert
    # The app, its modules and settings live as long as the process: keep them out of the garbage collector,
    # whose full collections would otherwise walk them again and again while jobs build large batches.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_ALLOCATIONS, *gc.get_threshold()[1:])
    return worker.work(burst=burst, with_scheduler=False, logging_level=app.config.get("LOG_LEVEL", "INFO"))
