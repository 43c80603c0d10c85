"""The fault suite's scale (compact by default; `SHOPRELAY_RELIABILITY=full` for the long run), its private
PostgreSQL cluster, a running stack per scenario, and the table printed and written at the end."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability.accounting import Outcome, text_table, write_report
from tests.reliability.private_postgres import PrivatePostgres, postgres_bin
from tests.reliability.stack import REPO, Stack, upgraded_sqlite

MODE = os.environ.get("SHOPRELAY_RELIABILITY", "compact").strip().lower() or "compact"
REPORT = Path(os.environ.get("SHOPRELAY_RELIABILITY_REPORT", REPO / "test-artifacts" / "reliability.md"))


@dataclass(frozen=True)
class Scale:
    """How hard a run pushes: seconds of load, the store's pace, the catalog size, drain bound."""

    seconds: float
    single_rate: float
    batch_size: int
    batch_every: float
    catalog_rows: int
    drain_timeout: float


SCALES = {
    # catalog_rows: the sync must outlast the store's 14 s of orders by far (300 staging commits and 300 apply
    # chunks of 500; the 400,000 it was took 99 s and its feed build 20 s on a busy 2-CPU machine: the suite's
    # longest test, for no lock a longer sync could hold longer). The full run keeps its million.
    "compact": Scale(seconds=14, single_rate=4, batch_size=20, batch_every=1.5, catalog_rows=150_000,
                     drain_timeout=90),
    "full": Scale(seconds=60, single_rate=8, batch_size=50, batch_every=1.0, catalog_rows=1_000_000,
                  drain_timeout=300),
}
if MODE not in SCALES:
    raise pytest.UsageError(f"SHOPRELAY_RELIABILITY={MODE!r}: compact or full")

_outcomes: list[Outcome] = []


@pytest.fixture(scope="session")
def scale() -> Scale:
    return SCALES[MODE]


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    if postgres_bin() is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    cluster = PrivatePostgres()
    try:
        yield cluster.init()
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def sqlite_schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `shoprelay db upgrade` for the session; each SQLite scenario starts from a copy of its file."""
    return upgraded_sqlite(tmp_path_factory.mktemp("reliability-schema"))


@pytest.fixture()
def start_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """`start_stack(backend)`: a fresh database of that backend and every process, stopped at teardown."""
    stacks: list[Stack] = []

    def start(backend: str, **settings: str) -> Stack:
        schema = None
        if backend == "postgresql":
            database_url = request.getfixturevalue("private_postgres").new_database()
        else:
            database_url = f"sqlite:///{tmp_path / 'shoprelay.db'}"
            schema = request.getfixturevalue("sqlite_schema")
        stack = Stack(tmp_path, database_url, schema_from=schema, **settings)
        stacks.append(stack)
        return stack.start()

    yield start
    for stack in stacks:
        stack.close()


@pytest.fixture()
def record() -> Callable[[Outcome], None]:
    """Keep a scenario's outcome for the table (before its assertions, so failures are in it too)."""
    return _outcomes.append


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's TerminalReporter
    if not _outcomes:
        return
    write_report(_outcomes, REPORT, MODE)
    terminalreporter.write_sep("=", f"reliability ({MODE}) — also in {REPORT}")
    terminalreporter.write_line(text_table(_outcomes))
