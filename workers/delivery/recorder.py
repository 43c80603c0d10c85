"""Recording answered groups off the sending thread.

On PostgreSQL a recorder thread with its own app context (so its own session and connection) stores each
group while the engine's thread goes on sending; on SQLite, which has one writer, groups are recorded in
the caller's thread as before. Either way `close()` records everything submitted before the run ends, also
when the run ends with an error. A group whose recording fails is rolled back and left in flight: its lease
runs out and the sweeper sends it again (the platform de-duplicates by unique id), so nothing is lost.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from flask import Flask

from webapp.extensions import db
from webapp.services.platform.statements import dialect_name
from workers.delivery import outcomes
from workers.delivery.claim import ClaimedEvent
from workers.delivery.policy import RetryPolicy

log = logging.getLogger(__name__)

# Groups waiting for the recorder at most: the sender stops when recording falls this far behind, so a
# slow database slows sending instead of letting leases run out.
MAX_PENDING = 4


@dataclass(slots=True)
class Group:
    """Answers recorded in one transaction, with their leased events and the destination's health changes."""

    sent: list[outcomes.Sent]
    events: dict[int, ClaimedEvent]
    health: dict[str, Any]


class Recorder:
    """Records groups inline (in the caller's thread and session): SQLite's single-writer path."""

    def __init__(self, destination_id: int, secrets: list[str], policy: RetryPolicy) -> None:
        self.destination_id, self.secrets, self.policy = destination_id, secrets, policy
        self.counts: dict[str, int] = {}
        self.requests = 0
        self.error: BaseException | None = None

    def submit(self, group: Group) -> None:
        """Record a group (here at once; the threaded recorder queues it). Raises a previous recording error."""
        self._record(group)

    def flush(self) -> None:
        """Return once every submitted group is recorded; raise the first recording error."""
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Record what is left and stop; never raises (call flush() for the error)."""

    def _record(self, group: Group) -> None:
        counts = outcomes.record_many(self.destination_id, group.sent, group.events, self.secrets, self.policy,
                                      group.health)
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0) + value
        self.requests += len(group.sent)


class ThreadRecorder(Recorder):
    """Records groups in a thread of its own, with its own app context, session and connection."""

    def __init__(self, app: Flask, destination_id: int, secrets: list[str], policy: RetryPolicy) -> None:
        super().__init__(destination_id, secrets, policy)
        self._app = app
        self._queue: queue.Queue[Group | None] = queue.Queue(maxsize=MAX_PENDING)
        self._thread = threading.Thread(target=self._run, name=f"deliver-record-{destination_id}", daemon=True)
        self._thread.start()

    def submit(self, group: Group) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(group)

    def flush(self) -> None:
        self._queue.join()
        super().flush()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        with self._app.app_context():
            while True:
                group = self._queue.get()
                try:
                    if group is None:
                        return
                    self._record_or_keep_error(group)
                finally:
                    self._queue.task_done()

    def _record_or_keep_error(self, group: Group) -> None:
        """A failed group stays in flight (lease + sweeper); later groups are still tried."""
        try:
            self._record(group)
        except Exception as exc:  # handed to the sending thread, which raises it
            log.exception("recording %d answers of destination %s failed; their leases will run out",
                          len(group.sent), self.destination_id)
            db.session.rollback()
            if self.error is None:
                self.error = exc


def make_recorder(app: Flask, destination_id: int, secrets: list[str], policy: RetryPolicy) -> Recorder:
    """A recorder thread where the database takes concurrent writers (PostgreSQL), inline recording elsewhere."""
    if dialect_name() == "postgresql":
        return ThreadRecorder(app, destination_id, secrets, policy)
    return Recorder(destination_id, secrets, policy)
