"""The fault suite: real processes (web, two workers, scheduler, Redis, the database, the fake platforms)
while the store posts orders singly and in batches with fulfil / cancel / refund updates, one fault at a time.

After each: every expected event kept exactly once at the platform (by unique id), no request before a
Retry-After expired, no outbox row left undelivered, /healthz green, and only the ingest answers the fault
allows. The outcome of each goes in the table printed at the end (tests/reliability/conftest.py).
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import wait_until
from tests.reliability.accounting import Outcome, early_requests, outbox_states
from tests.reliability.conftest import MODE, Scale
from tests.reliability.stack import LEASE_SECONDS, Stack
from tests.reliability.store import Store

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

# The longest one ingest answer may take while a sync or feed build runs. Generous for a busy 2-CPU machine
# (quiet answers take tens of milliseconds); a sync holding SQLite's write lock makes ingest wait far longer.
SYNC_LATENCY_BOUND = 5.0

Inject = Callable[[Stack, Store, Scale, Any], list[str]]


def _at(started: float, seconds: float) -> None:
    time.sleep(max(0.0, started + seconds - time.monotonic()))


# --- the faults: each runs while the store sends, returns notes when the load may stop ----------------

def kill_workers(stack: Stack, store: Store, scale: Scale, _: Any) -> list[str]:
    """kill -9 one worker every 3 s (alternating) while the platform answers slowly (so a kill lands while
    requests are out); the supervisor starts it again at once."""
    started, kills = time.monotonic(), 0
    stack.fault("timeout", platform="klaviyo", delay=0.3, seconds=scale.seconds)
    while time.monotonic() - started < scale.seconds:
        _at(started, 3 * (kills + 1) - 1)
        stack.workers[kills % 2].kill()
        kills += 1
    _at(started, scale.seconds + LEASE_SECONDS + 4)  # new orders keep coming until the last leases ran out
    assert kills >= 4
    return [f"{kills} workers killed with SIGKILL"]


def platform_throttles(stack: Stack, store: Store, scale: Scale, _: Any) -> list[str]:
    """503 for a while, then 429 with Retry-After: 3 while orders keep arriving and both workers run."""
    started = time.monotonic()
    _at(started, 1)
    stack.fault("fail", platform="klaviyo", status=503, seconds=4)
    _at(started, 5)
    throttled = max(8.0, scale.seconds / 2)
    stack.fault("rate_limit", platform="klaviyo", retry_after=3, seconds=throttled)
    _at(started, 5 + throttled + 4)
    return [f"503 for 4 s, then 429 (Retry-After: 3) for {throttled:.0f} s"]


def redis_lost(stack: Stack, store: Store, scale: Scale, _: Any) -> list[str]:
    """FLUSHALL mid-run, later kill -9 the Redis server and start it again (empty) on the same port."""
    started = time.monotonic()
    _at(started, 4)
    stack.flush_redis()
    _at(started, 8)
    stack.redis.kill(hold=True)
    _at(started, 11)
    stack.redis.start()
    stack.wait_redis()
    _at(started, max(scale.seconds, 11) + 6)
    return ["FLUSHALL at 4 s; Redis killed at 8 s, back (empty) at 11 s"]


def postgres_restarted(stack: Stack, store: Store, scale: Scale, cluster: Any) -> list[str]:
    """The private PostgreSQL cluster stopped (fast) mid-run and started again 5 s later."""
    started = time.monotonic()
    _at(started, 4)
    cluster.stop("fast")
    _at(started, 9)
    cluster.start()
    _at(started, max(scale.seconds, 9) + 6)
    return ["PostgreSQL stopped at 4 s, started at 9 s"]


def web_killed(stack: Stack, store: Store, scale: Scale, _: Any) -> list[str]:
    """kill -9 the web process while a batch is being posted (the store retries the same batch)."""
    started, kills = time.monotonic(), 0
    for moment in range(3, int(scale.seconds), 5):
        _at(started, moment)
        if store.batch_in_flight.wait(timeout=5):
            time.sleep(0.03)
            stack.web.kill()
            kills += 1
    _at(started, scale.seconds + 4)
    assert kills >= 2
    return [f"web killed with SIGKILL {kills} times mid-batch"]


def catalog_sync(stack: Stack, store: Store, scale: Scale, prepared: dict[str, int]) -> list[str]:
    """A long catalog sync, then a feed build, while orders arrive singly and in batches."""
    started = time.monotonic()
    _at(started, 2)
    sync_started = time.time()
    run_id = _trigger(stack, f"/api/v1/sources/{prepared['source']}/sync")
    run = _finished(stack, f"/api/v1/sync-runs/{run_id}", 600)
    overlapping = [a for a in store.answers if sync_started <= a.at <= time.time()]
    assert run["status"] == "succeeded", run
    assert run["counts"]["added"] == scale.catalog_rows, run
    build_started = time.monotonic()
    build_id = _trigger(stack, f"/api/v1/feeds/{prepared['feed']}/build")
    build = _finished(stack, f"/api/v1/feed-builds/{build_id}", 600)
    assert build["status"] == "succeeded", build
    assert build["counts"]["written"] == scale.catalog_rows, build
    build_seconds = time.monotonic() - build_started
    _at(started, scale.seconds)
    time.sleep(2)
    return [f"sync of {scale.catalog_rows:,} rows took {run['duration_seconds']:.0f} s with "
            f"{len(overlapping)} ingest calls answered meanwhile; feed build took {build_seconds:.0f} s"]


def _finished(stack: Stack, path: str, timeout: float) -> dict[str, Any]:
    """Poll a run until it is over; an answer that does not come (a busy database) is asked again."""
    seen: dict[str, Any] = {}

    def done() -> bool:
        try:
            response = httpx.get(f"{stack.web_url}{path}", headers=stack.auth, timeout=60)
        except httpx.HTTPError:
            return False
        if response.status_code == 200:
            seen.update(response.json())
        return seen.get("status") not in (None, "queued", "running")

    wait_until(done, timeout=timeout)
    return seen


def _trigger(stack: Stack, path: str) -> int:
    """POST a sync / build request, again after a non-answer or a 5xx (a store's operator would); the id of
    the run it started, or of the one already queued or running."""
    deadline = time.monotonic() + 120
    while True:
        try:
            response = httpx.post(f"{stack.web_url}{path}", json={}, headers=stack.auth, timeout=60)
            if response.status_code == 202:
                return response.json()["id"]
            if response.status_code == 409:  # one is already on its way (a sync queues its feeds' builds)
                body = response.json()
                return (body.get("build") or body.get("run"))["id"]
            assert response.status_code >= 500, response.text
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"POST {path} was not accepted within 120 s"
        time.sleep(1)


def prepare_catalog(stack: Stack, rows: int) -> dict[str, int]:
    """A CSV source with `rows` products (uploaded as the dashboard does) and a Klaviyo feed over it."""
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Source
    from webapp.services.catalog.sources import save_upload

    response = stack.post_json("/api/v1/sources", {"name": "Catalog", "kind": "csv"})
    assert response.status_code == 201, response.text
    source_id = response.json()["id"]
    path = stack.folder / "catalog.csv"
    _write_catalog(path, rows)
    app = create_app({"DATABASE_URL": stack.database_url, "INSTANCE_PATH": stack.env["SHOPRELAY_INSTANCE_PATH"],
                      "REDIS_URL": stack.redis_url, "SECRET_KEY": stack.env["SECRET_KEY"],
                      "ENCRYPTION_KEY": stack.env["SHOPRELAY_ENCRYPTION_KEY"], "LOG_LEVEL": "WARNING"})
    with app.app_context(), path.open("rb") as handle:
        save_upload(db.session.get(Source, source_id), "catalog.csv", handle)
        db.session.remove()
        db.engine.dispose()
    response = stack.post_json("/api/v1/feeds", {"name": "Klaviyo catalog", "slug": "klaviyo",
                                                 "format": "klaviyo_xml", "source_ids": [source_id]})
    assert response.status_code == 201, response.text
    return {"source": source_id, "feed": response.json()["id"]}


def _write_catalog(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("id", "title", "description", "price", "link", "image", "categories", "stock"))
        for n in range(rows):
            writer.writerow((f"P{n}", f"Product {n}", f"Product {n}: linen oak matte steel. " * 4,
                             f"{1 + n % 500}.{n % 100:02d}", f"https://shop.example/p/{n}",
                             f"https://cdn.shop.example/img/{n}.jpg", "Home, Kitchen, Sale", str(n % 97)))


# --- the table of scenarios -----------------------------------------------------------------------------

# name, fault, which ingest answers other than 2xx it may cause, databases (compact, full)
SCENARIOS: dict[str, tuple[Inject, str, tuple[str, ...], tuple[str, ...]]] = {
    "1 worker kill -9": (kill_workers, "none", ("sqlite",), ("sqlite", "postgresql")),
    "2 platform 503 then 429": (platform_throttles, "none", ("sqlite",), ("sqlite", "postgresql")),
    "3 Redis flushed, killed": (redis_lost, "none", ("sqlite",), ("sqlite", "postgresql")),
    "4 PostgreSQL restarted": (postgres_restarted, "503+retry-after", ("postgresql",), ("postgresql",)),
    "5 web kill -9 mid-batch": (web_killed, "no answer", ("sqlite",), ("sqlite", "postgresql")),
    "6 catalog sync + feed build": (catalog_sync, "none", ("sqlite",), ("sqlite",)),
}


def _cases() -> list[Any]:
    return [pytest.param(name, backend, id=f"{name.split()[0]}-{backend}")
            for name, (_, _, compact, full) in SCENARIOS.items()
            for backend in (full if MODE == "full" else compact)]


@pytest.mark.parametrize(("scenario", "backend"), _cases())
def test_scenario(scenario: str, backend: str, scale: Scale, start_stack, record, request) -> None:  # noqa: ANN001
    inject, allowed, _, _ = SCENARIOS[scenario]
    stack = start_stack(backend)
    context: Any = None
    if inject is postgres_restarted:
        context = request.getfixturevalue("private_postgres")
    if inject is catalog_sync:
        context = prepare_catalog(stack, scale.catalog_rows)
    store = Store(stack.web_url, stack.api_key, prefix=f"S{scenario.split()[0]}-", single_rate=scale.single_rate,
                  batch_size=scale.batch_size, batch_every=scale.batch_every).start()
    try:
        notes, failed = inject(stack, store, scale, context), ""
    except Exception as exc:  # noqa: BLE001 - the fault's own checks: in the table with the rest
        notes, failed = [], f"the scenario's own steps failed: {exc!r}"[:1000]
    finally:
        store.stop()
    outcome = _settle(stack, store, scenario, backend, allowed, scale)
    outcome.notes += notes
    if inject is catalog_sync:  # a sync or build must never hold ingest up: seconds, not a lock wait
        outcome.latency_bound = SYNC_LATENCY_BOUND
    if failed:
        outcome.failures.append(failed)
    record(outcome)
    problems = outcome.problems()
    assert not problems, f"{scenario} ({backend}):\n- " + "\n- ".join(problems)


def _settle(stack: Stack, store: Store, scenario: str, backend: str, allowed: str, scale: Scale) -> Outcome:
    """Wait (bounded) until the outbox is drained, then gather what the platform and the database say."""
    expected = store.expected()
    total = sum(expected.values())
    finished = time.monotonic()
    drain: float | None = None
    deadline = finished + scale.drain_timeout
    while time.monotonic() < deadline:
        try:
            states = outbox_states(stack.database_url)
        except Exception:  # noqa: BLE001 - the database may still be coming back
            states = {}
        if states == {"delivered": total}:
            drain = time.monotonic() - finished
            break
        time.sleep(0.25)
    time.sleep(1)  # an answer in flight when the rows settled
    stuck_notes = [] if drain is not None else [f"not drained: {stack.queue_diagnostics()}"]
    summary = stack.fake_summary()
    kept = Counter({(platform, name, unique): count for platform, name, unique, count in summary["kept"]})
    tolerated = scenario.startswith(("3", "4"))  # a worker or scheduler may exit while its Redis/database is gone
    crashes = stack.crashes()
    outcome = Outcome(
        scenario=scenario, backend=backend, orders=len(set(store.numbers)), expected=expected, kept=kept,
        resent=summary["resent"], early=early_requests(summary["requests"], summary["throttles"]),
        states=outbox_states(stack.database_url), answers=list(store.answers), allowed_answers=allowed,
        health=stack.health(), drain_seconds=drain,
        crashes=[] if tolerated else [c for c in crashes],
        notes=[f"tolerated restart: {c[:300]}" for c in crashes] if tolerated else [])
    if summary["internal_errors"]:
        outcome.failures.append(f"fake platform internal errors: {summary['internal_errors'][:2]}")
    faulted = Counter(fault for _, _, _, _, fault in summary["requests"] if fault)
    outcome.notes += stuck_notes
    outcome.notes.append(f"{len(summary['requests'])} platform requests, faults served: {dict(faulted)}")
    return outcome
