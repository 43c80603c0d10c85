"""When the database cannot take a request now: SQLite's write lock held past the request's deadline, a
PostgreSQL server down or restarting, a pool with no free connection. The request gets 503 with
Retry-After (blueprints.errors), never a 500 or a hang; the pool's pre-ping reconnects once it is back."""

from __future__ import annotations

import sqlalchemy as sa

RETRY_AFTER_SECONDS = 5


class DatabaseBusy(Exception):
    """The database stayed busy past the request's deadline (SHOPRELAY_DB_WAIT_SECONDS)."""


def is_unavailable(error: BaseException) -> bool:
    """Whether the error means "try again shortly" rather than a bug: busy, locked, unreachable, restarting."""
    if isinstance(error, DatabaseBusy | sa.exc.TimeoutError | sa.exc.OperationalError):
        return True
    return isinstance(error, sa.exc.DBAPIError) and (error.connection_invalidated
                                                     or isinstance(error, sa.exc.InterfaceError))


def is_locked(error: BaseException) -> bool:
    """SQLite's "database is locked" (its busy timeout ran out waiting for the write lock)."""
    return isinstance(error, sa.exc.OperationalError) and "locked" in str(error.orig).lower()
