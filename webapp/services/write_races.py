"""Concurrent requests that touch the same customer or order: queue, or lose the race and retry.

Ingest reads a contact's LTV and summary, adds the order's change in Python and writes the result. Two
requests doing that at once for the same contact must not both start from the same old figures (one
change would be lost), and two requests creating the same new contact or order at once must not fail.

- PostgreSQL: the stored orders and contacts a request will change are read `FOR UPDATE` (in id order),
  so a second request for them waits for the first to commit and then reads its figures.
- SQLite: the transaction starts with `BEGIN IMMEDIATE`, taking the database's single write lock before
  the first read, so writers run one after the other (SQLite allows one writer at a time anyway); the
  threads of one process first queue on a lock of their own.
- A row that did not exist yet cannot be locked: the request that inserts it second gets a unique
  violation (or, rarely, a deadlock on PostgreSQL). Nothing of it was committed, so it is run again from
  the start and then finds the winner's row (`in_one_transaction`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import sqlalchemy as sa

from webapp.extensions import db
from webapp.services.statements import dialect_name

T = TypeVar("T")
ATTEMPTS = 3
_RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure
_SQLITE_WRITER = threading.Lock()


@contextlib.contextmanager
def _writing() -> Iterator[None]:
    """Around one write transaction: on SQLite, hold the write lock from the first statement on.

    The threads of this process queue on a lock first, so they hand the database over the moment the
    previous commit is done; other processes wait in SQLite's busy handler (the busy timeout).
    """
    if dialect_name() != "sqlite":
        yield
        return
    with _SQLITE_WRITER:
        connection = db.session.connection()
        if not connection.connection.driver_connection.in_transaction:  # a caller may already be writing
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield


def in_one_transaction(work: Callable[[], T]) -> T:
    """`work()` then commit, as one write transaction, all or nothing; run again from the start (after
    the rollback) when it lost a race with a concurrent request, up to ATTEMPTS times."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with _writing():
                try:
                    result = work()
                    db.session.commit()
                except Exception:
                    db.session.rollback()
                    raise
            return result
        except sa.exc.DBAPIError as error:
            if attempt == ATTEMPTS or not lost_a_race(error):
                raise
    raise AssertionError("unreachable")


def lost_a_race(error: sa.exc.DBAPIError) -> bool:
    """Whether a failed attempt may succeed when run again after its rollback."""
    if isinstance(error, sa.exc.IntegrityError):
        return True  # a concurrent request inserted the same contact, order or LTV row first
    return getattr(error.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES
