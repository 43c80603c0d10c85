"""Statements built once (per database dialect where they differ) and reused on every request.

Building a Core statement and generating its cache key costs ~100 µs of Python each time, more than
running a small indexed query on SQLite. A statement object that is reused keeps its memoised cache
key, so SQLAlchemy finds the compiled form at once. A single-order ingest runs about ten statements, so
this is ~1 ms of each request (tests/benchmarks/RESULTS-orders.md, issue 5). Values that change from
call to call go in as bound parameters (`sa.bindparam`, `expanding=True` for IN lists), never baked in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from webapp.extensions import db

T = TypeVar("T")


def dialect_name() -> str:
    """'postgresql' or 'sqlite': the database the current session talks to."""
    return db.session.get_bind().dialect.name


def per_dialect(build: Callable[[str], T]) -> Callable[[], T]:
    """`build(dialect_name)` runs once per dialect; later calls return the same statement.

    Two threads racing on the first call both build it and one result wins: harmless, they are equal.
    """
    built: dict[str, T] = {}

    @functools.wraps(build)
    def statement() -> T:
        name = dialect_name()
        found = built.get(name)
        if found is None:
            found = built[name] = build(name)
        return found

    return statement

