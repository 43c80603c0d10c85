"""Concurrent requests that touch the same customer or order: queue, or lose the race and retry.

Ingest reads a contact's LTV and summary, adds the order's change in Python and writes the result. Two
requests doing that at once for the same contact must not both start from the same old figures (one
change would be lost), and two requests creating the same new contact or order at once must not fail.

- PostgreSQL: the stored orders and contacts a request will change are read `FOR UPDATE` (in id order),
  so a second request for them waits for the first to commit and then reads its figures.
- SQLite: the transaction starts with `BEGIN IMMEDIATE`, taking the database's single write lock before
  the first read, so writers run one after the other (SQLite allows one writer at a time anyway); the
  threads of one process first queue on a lock of their own. Both waits end at the request's deadline
  (SHOPRELAY_DB_WAIT_SECONDS): then DatabaseBusy, which the API answers with 503 and Retry-After.
- A row that did not exist yet cannot be locked: the request that inserts it second gets a unique
  violation (or, rarely, a deadlock on PostgreSQL). Nothing of it was committed, so it is run again from
  the start and then finds the winner's row (`in_one_transaction`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import sqlalchemy as sa
from flask import current_app

from webapp.extensions import busy_ms, db
from webapp.services.platform.db_unavailable import DatabaseBusy, is_locked
from webapp.services.platform.statements import dialect_name

T = TypeVar("T")
ATTEMPTS = 3
LOCKED_PAUSE = 0.05
_RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure
_SQLITE_WRITER = threading.Lock()


@contextlib.contextmanager
def _writing(deadline: float) -> Iterator[None]:
    """Around one write transaction: on SQLite, hold the write lock from the first statement on.

    The threads of this process queue on a lock first, so they hand the database over the moment the
    previous commit is done; other processes wait in SQLite's busy handler. Both waits end at the
    request's deadline (DatabaseBusy, or "database is locked" from SQLite).
    """
    if dialect_name() != "sqlite":
        yield
        return
    if not _SQLITE_WRITER.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise DatabaseBusy("another request of this process held the database past the deadline")
    try:
        connection = db.session.connection()
        driver = connection.connection.driver_connection
        if not driver.in_transaction:  # a caller may already be writing
            driver.execute(f"PRAGMA busy_timeout={busy_ms(max(0.001, deadline - time.monotonic()))}")
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            finally:
                driver.execute(f"PRAGMA busy_timeout={busy_ms(current_app.config['DB_WAIT_SECONDS'])}")
        yield
    finally:
        _SQLITE_WRITER.release()


def in_one_transaction(work: Callable[[], T]) -> T:
    """`work()` then commit, as one write transaction, all or nothing; run again from the start (after
    the rollback) when it lost a race with a concurrent request, up to ATTEMPTS times, or when SQLite
    said "locked" before the deadline (SHOPRELAY_DB_WAIT_SECONDS). Past the deadline: DatabaseBusy."""
    deadline = time.monotonic() + current_app.config["DB_WAIT_SECONDS"]
    races = 0
    while True:
        try:
            with _writing(deadline):
                try:
                    result = work()
                    db.session.commit()
                except Exception:
                    db.session.rollback()
                    raise
            return result
        except sa.exc.DBAPIError as error:
            if is_locked(error):
                if time.monotonic() + LOCKED_PAUSE < deadline:
                    time.sleep(LOCKED_PAUSE)
                    continue
                raise DatabaseBusy("the database stayed locked by other work past the deadline") from error
            races += 1
            if races >= ATTEMPTS or not lost_a_race(error):
                raise


def lost_a_race(error: sa.exc.DBAPIError) -> bool:
    """Whether a failed attempt may succeed when run again after its rollback."""
    if isinstance(error, sa.exc.IntegrityError):
        return True  # a concurrent request inserted the same contact, order or LTV row first
    return getattr(error.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES
