"""Issue 14: single-order ingest while a 1,000,000-row FIRST catalog sync runs, beside the same with no sync.

Everything runs as real processes on one throwaway database per backend: `shoprelay web` (the default:
waitress, one process), a static file server holding the generated catalog CSV, and the sync in a process
of its own — `shoprelay sources sync ID` (default), or a `shoprelay worker -q sync` picking up a sync
requested through `POST /api/v1/sources/ID/sync` (SHOPRELAY_BENCH_SYNC_VIA=worker). The source is created
through the API (a CSV at an http:// location), so the benchmark only uses the CLI/HTTP contract and works
whatever way the sync writes. Two destinations are enabled, so every order writes its outbox rows; no
delivery worker runs.

Same run, same database, same web process: first the quiet figures (SHOPRELAY_BENCH_QUIET_SECONDS with
no sync), then the same load from the moment the sync run is `running` until it has ended. The load is
two-fold (see OrderPoster): closed-loop connections that post single orders back to back (throughput),
and an open-loop probe that posts single orders on a fixed schedule and times each from when it was due
(latency: p50/p99/worst).
Every answer is kept; each non-2xx answer is listed (a 503 with Retry-After is an answer the store can
retry, but it is listed too; a timeout or a closed connection counts as "no answer").

Afterwards the same first sync runs once more (a second source, same file) with no order arriving, so
the sync's own slowdown under ingest is printed too (SHOPRELAY_BENCH_SYNC_ALONE=0 skips it).

Targets: p99 during the sync under 1 s; throughput during the sync at least half of the quiet figure.

    SHOPRELAY_BENCH_ROWS=50000 python -m pytest tests/benchmarks/bench_ingest_during_sync.py -m benchmark -s

Environment: SHOPRELAY_BENCH_ROWS (catalog rows, default 1,000,000), SHOPRELAY_BENCH_BACKENDS (default
sqlite,postgresql), SHOPRELAY_BENCH_POSTGRES_URL (server for the throwaway databases),
SHOPRELAY_BENCH_QUIET_SECONDS (default 30), SHOPRELAY_BENCH_SYNC_CLIENTS (closed-loop connections,
default 2), SHOPRELAY_BENCH_PROBE_RATE (probe orders a second, default 10), SHOPRELAY_BENCH_WEB_WORKERS
(`shoprelay web --workers N`, default 1), SHOPRELAY_BENCH_SYNC_VIA (cli or worker, default cli),
SHOPRELAY_BENCH_SYNC_TIMEOUT (seconds, default 1800), SHOPRELAY_BENCH_SYNC_ALONE (default 1),
SHOPRELAY_TEST_REDIS_URL (default redis://127.0.0.1:6379/9).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks.bench_support import (
    REPO,
    app_env,
    backends,
    child,
    create_destinations,
    env_int,
    flushed_redis,
    free_port,
    make_app,
    percentile,
    print_table,
    scratch_folder,
    stop_process,
    throwaway_database,
)
from tests.benchmarks.conftest import write_catalog_csv
from tests.benchmarks.order_load import (
    CLIENTS,
    LINES,
    PROBE_RATE,
    REQUEST_TIMEOUT,
    OrderPoster,
    Phase,
    timed_stop,
)

ROWS = env_int("SHOPRELAY_BENCH_ROWS", 1_000_000)
QUIET_SECONDS = env_int("SHOPRELAY_BENCH_QUIET_SECONDS", 30)
WEB_WORKERS = env_int("SHOPRELAY_BENCH_WEB_WORKERS", 1)
SYNC_VIA = os.environ.get("SHOPRELAY_BENCH_SYNC_VIA", "cli")
SYNC_TIMEOUT = env_int("SHOPRELAY_BENCH_SYNC_TIMEOUT", 1800)
SYNC_ALONE = env_int("SHOPRELAY_BENCH_SYNC_ALONE", 1)  # 0: skip timing the same sync with no orders
TARGET_P99_S = 1.0
TARGET_THROUGHPUT_SHARE = 0.5


def api(port: int, api_key: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body),
                           headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"})
        response = connection.getresponse()
        text = response.read()
    finally:
        connection.close()
    return response.status, json.loads(text) if text else None


@contextlib.contextmanager
def file_server(folder: Path) -> Iterator[int]:
    """The catalog CSV at http://127.0.0.1:PORT/ (the source fetches it like any store's export)."""
    port = free_port()
    with child(["-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)], port=port):
        yield port


class SyncProcess:
    """A first sync of `source_id` in a process of its own; `finished` is set when it has ended."""

    def __init__(self, env: dict[str, str], web_port: int, api_key: str, source_id: int, log: Path) -> None:
        self.env, self.web_port, self.api_key, self.source_id, self.log = env, web_port, api_key, source_id, log
        self.finished = threading.Event()
        self.outcome = ""
        self.seconds = 0.0
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        self._started = time.perf_counter()
        if SYNC_VIA == "worker":
            self._process = self._spawn(["-m", "webapp.cli", "worker", "-q", "sync"])
            status, body = api(self.web_port, self.api_key, "POST", f"/api/v1/sources/{self.source_id}/sync")
            if status != 202:
                raise RuntimeError(f"POST /sync answered {status}: {body}")
            watcher = threading.Thread(target=self._watch_run, args=(body["id"],), daemon=True)
        else:
            self._process = self._spawn(["-m", "webapp.cli", "sources", "sync", str(self.source_id)])
            watcher = threading.Thread(target=self._watch_cli, daemon=True)
        watcher.start()

    def wait_running(self, timeout: float = 120.0) -> None:
        """Until the source's run has started (the process is up, the run is `running`) or has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.finished.is_set():
            status, body = api(self.web_port, self.api_key, "GET", f"/api/v1/sources/{self.source_id}")
            if status == 200 and (body.get("last_run") or {}).get("status") not in (None, "queued"):
                return
            time.sleep(0.1)

    def _spawn(self, args: list[str]) -> subprocess.Popen:
        with self.log.open("ab") as out:
            return subprocess.Popen([sys.executable, *args], env=self.env, cwd=REPO, stdout=out,
                                    stderr=subprocess.STDOUT)

    def _watch_cli(self) -> None:
        assert self._process is not None
        try:
            code = self._process.wait(SYNC_TIMEOUT)
            self.outcome = f"exit {code}: " + self.log.read_text(errors="replace").strip().splitlines()[-1:][0]
        except subprocess.TimeoutExpired:
            self.outcome = f"timed out after {SYNC_TIMEOUT} s"
        except IndexError:
            self.outcome = f"exit {self._process.returncode}, no output"
        self._finish()

    def _watch_run(self, run_id: int) -> None:
        deadline = time.monotonic() + SYNC_TIMEOUT
        self.outcome = f"timed out after {SYNC_TIMEOUT} s"
        while time.monotonic() < deadline:
            status, body = api(self.web_port, self.api_key, "GET", f"/api/v1/sync-runs/{run_id}")
            if status == 200 and body["status"] not in ("queued", "running"):
                counts = body.get("counts", {})
                self.outcome = (f"sync #{run_id} {body['status']}: {counts.get('added')} added"
                                f"{'' if body['status'] == 'succeeded' else ' — ' + str(body.get('error'))}")
                break
            time.sleep(0.5)
        self._finish()

    def _finish(self) -> None:
        self.seconds = time.perf_counter() - self._started  # process start to end (includes its start-up)
        self.finished.set()

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)

    def added(self) -> int | None:
        match = re.search(r"succeeded(?: \(source not modified\))?: (\d+) added", self.outcome)
        return int(match.group(1)) if match else None


# -- figures --

def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def describe_not_2xx(phase: Phase) -> str:
    counts = Counter(f"{answer.status}{' + Retry-After' if answer.retry_after else ''}" if answer.status
                     else "no answer" for answer in phase.not_2xx())
    return ", ".join(f"{count} × {what}" for what, count in sorted(counts.items())) or "none"


def phase_row(backend: str, phase: Phase) -> tuple:
    probe, every = phase.latencies(), phase.latencies(probe=None)
    return (backend, phase.name, len(phase.answers), f"{phase.seconds:.1f}", f"{phase.ok_per_s:,.0f}",
            len(probe), ms(percentile(probe, 0.5)), ms(percentile(probe, 0.99)), ms(max(probe, default=0.0)),
            ms(max(every, default=0.0)), describe_not_2xx(phase))


def report(backend: str, quiet: Phase, during: Phase, sync: SyncProcess, alone: SyncProcess | None,
           load: tuple[float, float]) -> None:
    via = "shoprelay worker -q sync" if SYNC_VIA == "worker" else "shoprelay sources sync"
    print_table(f"Single-order ingest during a first catalog sync, {backend}: `shoprelay web --workers "
                f"{WEB_WORKERS}`, {CLIENTS} closed-loop connections + a probe at {PROBE_RATE:g} orders/s, "
                f"{LINES} lines per order, 2 destinations; the {ROWS:,}-row sync (`{via}`) took "
                f"{sync.seconds:.1f} s ({sync.outcome}); 1-min load average {load[0]:.2f} before, {load[1]:.2f} "
                f"after (shared machine)",
                ("backend", "phase", "requests", "seconds", "2xx/s (all)", "probe requests", "probe p50",
                 "probe p99", "probe worst", "worst of all", "non-2xx answers"),
                [phase_row(backend, quiet), phase_row(backend, during)])
    p99 = percentile(during.latencies(), 0.99)
    share = during.ok_per_s / quiet.ok_per_s if quiet.ok_per_s else 0.0
    print_table(f"Targets, {backend}", ("target", "quiet (same run)", "during the sync", "met"), [
        (f"p99 during the sync < {TARGET_P99_S:.0f} s (probe)", ms(percentile(quiet.latencies(), 0.99)), ms(p99),
         "yes" if p99 < TARGET_P99_S else "**no**"),
        (f"throughput during the sync ≥ {TARGET_THROUGHPUT_SHARE:.0%} of quiet", f"{quiet.ok_per_s:,.0f} req/s",
         f"{during.ok_per_s:,.0f} req/s ({share:.0%})", "yes" if share >= TARGET_THROUGHPUT_SHARE else "**no**"),
        ("every answer 2xx (503 + Retry-After listed, not counted as lost)", describe_not_2xx(quiet),
         describe_not_2xx(during), "yes" if not during.unretryable() else "**no**"),
        *([("(no target) the sync's own time: alone / while orders arrive", f"{alone.seconds:.1f} s alone",
            f"{sync.seconds:.1f} s ({sync.seconds / alone.seconds:.2f}x)", "—")] if alone else []),
    ])
    for answer in during.not_2xx()[:5]:
        print(f"- {answer.status or 'no answer'} after {ms(answer.seconds)}"
              f"{' (Retry-After ' + answer.retry_after + ')' if answer.retry_after else ''}: {answer.detail}")
    print(flush=True)


def create_source(port: int, api_key: str, files_port: int, name: str) -> int:
    status, source = api(port, api_key, "POST", "/api/v1/sources", {
        "name": name, "kind": "csv", "location": f"http://127.0.0.1:{files_port}/catalog.csv"})
    assert status == 201, source
    return source["id"]


def sync_alone(env: dict[str, str], port: int, api_key: str, files_port: int, folder: Path) -> SyncProcess:
    """The same first sync (a second source, same file) with no order arriving: the sync's own floor.
    It runs after the measured one, into a products table that already holds a catalog (not faster)."""
    sync = SyncProcess(env, port, api_key, create_source(port, api_key, files_port, "bench catalog, alone"),
                       folder / "sync-alone.log")
    try:
        sync.start()
        sync.finished.wait(SYNC_TIMEOUT + 5)
    finally:
        sync.stop()
    return sync


# -- the benchmark --

@pytest.fixture(scope="module")
def catalog_folder() -> Iterator[Path]:
    with scratch_folder("bench-sync-catalog-") as folder:
        write_catalog_csv(folder / "catalog.csv", ROWS)
        yield folder


@pytest.mark.benchmark
@pytest.mark.parametrize("backend", backends())
def test_ingest_during_first_sync(backend: str, catalog_folder: Path) -> None:
    flushed_redis()
    load_before = os.getloadavg()[0]
    with scratch_folder("bench-ingest-sync-") as folder, throwaway_database(backend, folder, "ingest_sync") as url, \
            file_server(catalog_folder) as files_port:
        instance = folder / "instance"
        api_key, _ = create_destinations(make_app(url, instance), "http://127.0.0.1:9", ["klaviyo", "esputnik"])
        env = app_env(url, instance)
        port = free_port()
        with child(["-m", "webapp.cli", "web", "--port", str(port), "--workers", str(WEB_WORKERS)], env,
                   port=port, log=folder / "web.log"):
            source_id = create_source(port, api_key, files_port, "bench catalog")
            poster = OrderPoster(port, api_key, f"S{backend[:2].upper()}")
            poster.run(Phase("warm-up"), timed_stop(2), clients=1, rate=0)
            quiet = poster.run(Phase(f"quiet (no sync, {QUIET_SECONDS} s)"), timed_stop(QUIET_SECONDS))
            sync = SyncProcess(env, port, api_key, source_id, folder / "sync.log")
            try:
                sync.start()
                sync.wait_running()
                during = poster.run(Phase(f"during the {ROWS:,}-row first sync"), sync.finished)
            finally:
                sync.stop()
            alone = sync_alone(env, port, api_key, files_port, folder) if SYNC_ALONE else None
    report(backend, quiet, during, sync, alone, (load_before, os.getloadavg()[0]))
    assert sync.added() == ROWS, f"the sync did not load the catalog: {sync.outcome}"
    assert alone is None or alone.added() == ROWS, f"the sync with no ingest failed: {alone.outcome}"
    assert not quiet.not_2xx(), "ingest failed with no sync running (see above)"
    assert during.answers, "no order was sent during the sync"
    assert not during.unretryable(), "ingest answered errors (not 503 + Retry-After) during the sync (see above)"
