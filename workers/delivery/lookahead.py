"""Claiming and building the next batches while the current one is being sent.

On PostgreSQL the next batches are claimed (database) and built (adapter) in threads of their own, each call
with its own app context and session, while the engine's thread sends the current batch: neither waits for
the other, and with two batches ahead one's claim waits on the database while the other is built.
On SQLite, which has one writer, the work is deferred to the moment its result is asked for, in the caller's
thread, so the single-writer path stays one connection. Either way a claim only ever takes events whose
earlier events (the Placed Order) are settled, so claiming ahead never breaks order-level ordering.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from flask import Flask

from webapp.services.platform.statements import dialect_name

T = TypeVar("T")


class Pending(Generic[T]):
    """Work asked for ahead; `result()` waits for it (or, deferred, runs it then)."""

    def __init__(self, work: Callable[[], T], future: Future[T] | None = None) -> None:
        self._work, self._future = work, future

    @property
    def started(self) -> bool:
        """Whether the work runs already (threaded); deferred work that is never asked for never runs."""
        return self._future is not None

    def result(self) -> T:
        return self._future.result() if self._future is not None else self._work()


class Lookahead:
    """Runs look-ahead work deferred, in the caller's thread (SQLite's single-writer path)."""

    depth = 1  # batches asked for ahead of the one being sent

    def ahead(self, work: Callable[[], T]) -> Pending[T]:
        return Pending(work)

    def close(self) -> None:
        """Nothing to stop."""


class ThreadLookahead(Lookahead):
    """Runs look-ahead work at once in one thread of its own, each call in a fresh app context (own session)."""

    def __init__(self, app: Flask, depth: int = 2) -> None:
        self._app, self.depth = app, depth
        self._executor = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="deliver-claim")

    def ahead(self, work: Callable[[], T]) -> Pending[T]:
        return Pending(work, self._executor.submit(self._in_context, work))

    def _in_context(self, work: Callable[[], T]) -> T:
        with self._app.app_context():
            return work()

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def make_lookahead(app: Flask) -> Lookahead:
    """A look-ahead thread where the database takes concurrent writers (PostgreSQL), deferred work elsewhere."""
    if dialect_name() == "postgresql":
        return ThreadLookahead(app)
    return Lookahead()
