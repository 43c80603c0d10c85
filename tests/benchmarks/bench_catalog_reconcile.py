"""First reconcile of a platform catalog through Klaviyo's Catalog API, against the fake Klaviyo.

The issue's target: "First reconcile of 100k products (≈ 300k variants) against the fake: items/s, jobs/s and
peak RSS beside the platform's own ceiling (jobs per minute × 100) — target: within 80% of the platform's
steady limit, RSS flat from 10k to 100k."

Klaviyo's catalog endpoints allow 75 requests/s burst and 750/min steady, ≤ 100 entries per job, so the
platform's steady ceiling is 750 × 100 = 75,000 entries/min = 1,250 entries/s (12.5 jobs/s). A run shorter
than a minute also gets the first minute's burst allowance; the "run ceiling" column is what the platform's
two windows allow for a run of that many entries (full jobs only, nothing but job POSTs).

Products are item groups of 3 variants each (3 categories per group out of 9), inserted with Core
executemany. A Klaviyo destination with `"catalog": "api"` is created through the real API, which queues
the first (full) reconcile (`runs.request_reconcile(destination, "enabled", full=True)`); a measured child
process runs it with `workers.catalogs.reconcile.run_reconcile(run_id, redis)`:

* limiter: with Redis, so the account's catalog windows (workers/rate_limit.py: job POSTs 75/s + 750/min; job
  status GETs and listing reads, Klaviyo's XL endpoints, 350/s + 3,500/min) hold it to the platform's limits.
  This is the product's behaviour.
* unthrottled: `redis=None` (no window, no pause): where the code itself tops out against the fake.

Floors, measured in the same run on the same database: the bare pieces — `plan.categories()` + `plan.groups()`
(read and plan the whole catalog), `job_bodies` for the same entities, and a bare httpx client POSTing the
same job bodies to a fresh fake (up to SHOPRELAY_BENCH_FLOOR_JOBS of them, in reconcile order) — and the
platform's ceiling. Each size S and 10×S gets its own throwaway database and its own fake per run (a fresh
Klaviyo key, so a fresh rate-limit account).

    SHOPRELAY_BENCH_BACKENDS=sqlite python -m pytest tests/benchmarks/bench_catalog_reconcile.py -m benchmark -s

Full size (10k and 100k groups = 30k and 300k variants; the 100k limiter run alone takes ≥ 5.5 min):

    SHOPRELAY_BENCH_GROUPS=10000 SHOPRELAY_BENCH_TIMEOUT=1800 \
        python -m pytest tests/benchmarks/bench_catalog_reconcile.py -m benchmark -s

Environment: SHOPRELAY_BENCH_GROUPS (S, item groups of the small size, default 3000; the large size is 10×S),
SHOPRELAY_BENCH_BACKENDS (default sqlite,postgresql), SHOPRELAY_BENCH_POSTGRES_URL (server for the throwaway
databases), SHOPRELAY_BENCH_RECONCILE_MODES (default unthrottled,limiter), SHOPRELAY_BENCH_JOB_POLLS (status
GETs a job answers "processing" before it completes; default 0 = complete when posted, so no status GET
is needed; the reconcile tests use 2), SHOPRELAY_BENCH_FLOOR_JOBS (jobs the POST floor sends, default 500),
SHOPRELAY_BENCH_REDIS_URL (the limiter's Redis, default redis://127.0.0.1:6379/9), SHOPRELAY_BENCH_TIMEOUT
(seconds a measured child may take beyond the limiter's least time, default 600),
SHOPRELAY_BENCH_PG_ANALYZE_EVERY (PostgreSQL: `ANALYZE catalog_entries` every that many seconds while a
reconcile runs, as autovacuum would on a server that has it on; default 0 = never, the server as it is).

PostgreSQL note: the ledger's per-job statements (`ledger.lookup`, `mark_job`, `settle`) filter on
`external_id IN (...)`; until `catalog_entries` has statistics, the planner uses only (destination_id, kind)
of the unique index and filters the rest, so each job reads every ledger entry of its kind. The reconcile
therefore runs `ANALYZE catalog_entries` itself every 5,000 new ledger entries (`ledger.analyze`), autovacuum
or not.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks.bench_support import (
    backends,
    env_int,
    make_app,
    print_table,
    ratio,
    scratch_folder,
    throwaway_database,
)
from tests.benchmarks.conftest import (
    CHILD_TIMEOUT,
    ChildResult,
    Measured,
    Stopwatch,
    catalog_row,
    rss_now_mb,
    run_measured,
)

GROUPS = env_int("SHOPRELAY_BENCH_GROUPS", 3000)
SIZES = (GROUPS, 10 * GROUPS)
VARIANTS_PER_GROUP = 3
BACKENDS = backends("sqlite,postgresql")
MODES = [m.strip() for m in os.environ.get("SHOPRELAY_BENCH_RECONCILE_MODES", "unthrottled,limiter").split(",")
         if m.strip()]
JOB_POLLS = env_int("SHOPRELAY_BENCH_JOB_POLLS", 0)
FLOOR_JOBS = env_int("SHOPRELAY_BENCH_FLOOR_JOBS", 500)
REDIS_URL = os.environ.get("SHOPRELAY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
PG_ANALYZE_EVERY = float(os.environ.get("SHOPRELAY_BENCH_PG_ANALYZE_EVERY", "") or 0)
INSERT_CHUNK = 2000

# The platform: Klaviyo's catalog endpoints (reference/platforms.md §2).
BURST_PER_SECOND = 75
STEADY_PER_MINUTE = 750
ENTRIES_PER_JOB = 100
STEADY_CEILING = STEADY_PER_MINUTE * ENTRIES_PER_JOB / 60  # 1,250 entries/s
TARGET_SHARE = 0.80
TARGET_RSS_GROWTH = 0.10  # "flat": the 10×S peak at most 10% above the S peak


def window_seconds(requests: int) -> float:
    """The least time the account's windows (75/s, 750/min, sliding, as workers/rate_limit.py keeps them) let
    `requests` requests through from empty windows: request k goes at 60·⌊k/750⌋ + ⌊(k mod 750)/75⌋ s at the
    earliest (0 for up to 75 requests: the windows do not bind)."""
    if requests <= 0:
        return 0.0
    k = requests - 1
    return 60.0 * (k // STEADY_PER_MINUTE) + (k % STEADY_PER_MINUTE) // BURST_PER_SECOND


def expected_entries(groups: int) -> dict[str, int]:
    """Group g names categories g, g+1, g+2 (mod 9) of catalog_row's nine."""
    return {"category": min(9, groups + 2), "item": groups, "variant": groups * VARIANTS_PER_GROUP}


# -- the catalog --

def product_rows(source_id: int, start: int, stop: int) -> list[dict[str, Any]]:
    """Groups `start`..`stop` as `products` rows: 3 variants each (sizes), the group's text from catalog_row."""
    rows = []
    for group in range(start, stop):
        _, title, description, price, link, image, categories, stock = catalog_row(group)
        for size in range(VARIANTS_PER_GROUP):
            rows.append({
                "source_id": source_id, "external_id": f"P{group}-{size}", "item_group_id": f"G{group:07d}",
                "title": f"{title} / size {size}", "description": description, "link": f"{link}?size={size}",
                "image_link": image, "price": Decimal(price) + size, "currency": "USD",
                "categories": categories.split(", "), "inventory_quantity": (int(stock) + size) % 97,
                "sku": f"SKU-{group}-{size}", "extras": {"group_title": title}, "content_hash": 0})
    return rows


def seed_catalog(database_url: str, groups: int) -> None:
    import sqlalchemy as sa

    from webapp.models import Product, Source

    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        source_id = connection.execute(sa.insert(Source.__table__).values(
            name="bench catalog", kind="csv", options={}, schedule="0 2 * * *", timezone="UTC", enabled=True,
            product_count=groups * VARIANTS_PER_GROUP).returning(Source.__table__.c.id)).scalar_one()
        step = INSERT_CHUNK // VARIANTS_PER_GROUP
        for start in range(0, groups, step):
            connection.execute(sa.insert(Product.__table__), product_rows(source_id, start, min(groups, start + step)))
    engine.dispose()


def create_destination(database_url: str, instance: Path, base_url: str, api_key: str, *,
                       catalog: str) -> tuple[int, int | None]:
    """A Klaviyo destination through the real API (no Redis: nothing is queued for a worker); with
    catalog "api" the API queues its first, full reconcile. Returns (destination id, run id)."""
    import sqlalchemy as sa

    from webapp.extensions import db
    from webapp.models import CatalogReconcile
    from webapp.security import create_api_key

    app = make_app(database_url, instance, REDIS_URL="")
    with app.app_context():
        _, key = create_api_key(f"bench-{uuid.uuid4().hex[:6]}")
    response = app.test_client().post("/api/v1/destinations", headers={"Authorization": f"Bearer {key}"}, json={
        "name": f"Klaviyo bench {uuid.uuid4().hex[:6]}", "kind": "klaviyo", "credentials": {"api_key": api_key},
        "base_url": base_url, "catalog": catalog})
    assert response.status_code == 201, response.get_json()
    destination_id = response.get_json()["id"]
    with app.app_context():
        run_id = db.session.scalar(sa.select(CatalogReconcile.id).where(
            CatalogReconcile.destination_id == destination_id, CatalogReconcile.status == "queued"))
        db.session.remove()
        db.engine.dispose()
    return destination_id, run_id


@contextlib.contextmanager
def autovacuum_imitation(database_url: str, every: float) -> Iterator[list[float]]:
    """On PostgreSQL with `every` > 0: ANALYZE catalog_entries every `every` seconds from this process (yields
    the seconds each ANALYZE took); otherwise nothing."""
    analyses: list[float] = []
    if every <= 0 or not database_url.startswith("postgresql"):
        yield analyses
        return
    import sqlalchemy as sa

    engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            with Stopwatch() as watch, engine.connect() as connection:
                connection.execute(sa.text("ANALYZE catalog_entries"))
            analyses.append(watch.seconds)

    thread = threading.Thread(target=loop, name="bench-analyze", daemon=True)
    thread.start()
    try:
        yield analyses
    finally:
        stop.set()
        thread.join()
        engine.dispose()


# -- measured in child processes --

def pieces_floor(database_url: str, instance: Path, destination_id: int, post_jobs: int) -> Measured:
    """The bare pieces: read and plan the catalog, build its job bodies, POST (some of) them with httpx."""
    import httpx

    from webapp.extensions import db
    from webapp.models import Destination
    from webapp.services.platform_catalogs import plan
    from workers.delivery.engine import build_adapter
    from workers.destinations.klaviyo_catalog import job_bodies, job_path

    app = make_app(database_url, instance, REDIS_URL=REDIS_URL)
    with app.app_context():
        adapter = build_adapter(db.session.get(Destination, destination_id))
        db.session.rollback()
        before = rss_now_mb()
        with Stopwatch() as plan_watch:
            categories = plan.categories()
            pages = list(plan.groups(plan.Skips()))
        with Stopwatch() as body_watch:  # in reconcile order: categories, then each page's items, its variants
            jobs = [("category", body, len(carried)) for body, carried in job_bodies("category", "create", categories)]
            for page in pages:
                for kind in ("item", "variant"):
                    entities = [entity for entity in page if entity.kind == kind]
                    jobs.extend((kind, body, len(carried)) for body, carried in job_bodies(kind, "create", entities))
        entities = len(categories) + sum(len(page) for page in pages)
        requests = {kind: adapter.catalog_request("POST", job_path(kind, "create"), b"")
                    for kind in ("category", "item", "variant")}
        posted = jobs[:post_jobs]
        with httpx.Client(timeout=30) as client, Stopwatch() as post_watch:
            for kind, body, _ in posted:
                request = requests[kind]
                answer = client.post(request.url, content=body, headers=request.headers)
                assert answer.status_code == 202, answer.text[:500]
        db.session.remove()
        db.engine.dispose()
    return Measured(plan_watch.seconds + body_watch.seconds, {
        "entities": entities, "jobs": len(jobs), "plan_s": plan_watch.seconds, "bodies_s": body_watch.seconds,
        "post_s": post_watch.seconds, "posted_jobs": len(posted), "posted_bytes": sum(len(body) for _, body, _ in posted),
        "posted_entries": sum(count for _, _, count in posted)}, before)


def reconcile_child(database_url: str, instance: Path, run_id: int, limiter: bool) -> Measured:
    """One first reconcile as the worker's job runs it; `limiter` False passes redis=None."""
    import sqlalchemy as sa
    from redis import Redis

    from webapp.extensions import db
    from webapp.models import CatalogReconcile
    from workers.catalogs.reconcile import run_reconcile
    from workers.delivery.http_client import close_all

    app = make_app(database_url, instance, REDIS_URL=REDIS_URL)
    with app.app_context():
        redis = Redis.from_url(REDIS_URL) if limiter else None
        if redis is not None:
            redis.ping()
        db.session.scalar(sa.select(sa.func.count()).select_from(CatalogReconcile))
        db.session.rollback()
        before = rss_now_mb()
        with Stopwatch() as watch:
            run = run_reconcile(run_id, redis)
        assert run is not None
        value = {"status": run.status, "error": run.error, "counts": dict(run.counts or {}), "total": run.total,
                 "done": run.done}
        close_all()
        db.session.remove()
        db.engine.dispose()
    return Measured(watch.seconds, value, before)


# -- the benchmark --

@pytest.mark.benchmark
@pytest.mark.parametrize("backend", BACKENDS)
def test_first_catalog_reconcile(backend: str) -> None:
    from tests.fakeplatform import FakePlatform

    if any(REDIS_URL.rstrip("/").endswith(f"/{n}") for n in (12, 15)):
        pytest.fail(f"{REDIS_URL}: Redis DBs 12 and 15 belong to other suites; use another (default /9)")
    results: dict[int, dict[str, Any]] = {}
    with scratch_folder("shoprelay-bench-reconcile-") as folder:
        for groups in SIZES:
            label = f"reconcile_{groups}"
            with throwaway_database(backend, folder, label) as url:
                instance = folder / f"instance-{label}"
                with Stopwatch() as seed_watch:
                    seed_catalog(url, groups)
                print(f"\n{backend}: {groups:,} groups ({groups * VARIANTS_PER_GROUP:,} products) seeded in "
                      f"{seed_watch.seconds:.1f} s", flush=True)
                sized: dict[str, Any] = {}
                with FakePlatform(keep_bodies=False) as floor_fake:
                    destination_id, _ = create_destination(url, instance, floor_fake.base_url("klaviyo"),
                                                           floor_fake.klaviyo_key, catalog="off")
                    sized["floor"] = run_measured(pieces_floor, url, instance, destination_id, FLOOR_JOBS)
                    assert not floor_fake.internal_errors, floor_fake.internal_errors[:1]
                for mode in MODES:
                    sized[mode] = _reconcile(url, instance, groups, mode)
                results[groups] = sized
    _report(backend, results)


def _reconcile(url: str, instance: Path, groups: int, mode: str) -> dict[str, Any]:
    """One first reconcile against its own fake (its own key: a fresh rate-limit account)."""
    from tests.fakeplatform import FakePlatform

    expected = expected_entries(groups)
    with FakePlatform(klaviyo_key=f"pk_bench_{uuid.uuid4().hex[:12]}", keep_bodies=False) as fake:
        fake.set_klaviyo_job_polls(JOB_POLLS)
        _, run_id = create_destination(url, instance, fake.base_url("klaviyo"), fake.klaviyo_key, catalog="api")
        assert run_id is not None, "switching the catalog on queued no reconcile"
        least = window_seconds(math.ceil(sum(expected.values()) / ENTRIES_PER_JOB) * (JOB_POLLS + 2))
        with autovacuum_imitation(url, PG_ANALYZE_EVERY) as analyses:
            result = run_measured(reconcile_child, url, instance, run_id, mode == "limiter",
                                  timeout=CHILD_TIMEOUT + (least * 2 if mode == "limiter" else 0))
        assert result.value["status"] == "succeeded", result.value
        assert not fake.internal_errors, fake.internal_errors[:1]
        with fake.lock:
            stored = {"category": len(fake.klaviyo_categories), "item": len(fake.klaviyo_catalog),
                      "variant": len(fake.klaviyo_variants)}
            posts = sum(1 for r in fake.requests if r.method == "POST")
            gets = sum(1 for r in fake.requests if r.method == "GET")
            throttled = sum(1 for r in fake.requests if r.status == 429)
            in_flight = fake.klaviyo_max_jobs_in_flight
        assert stored == expected, (stored, expected)
        assert result.value["counts"]["sent"]["create"] == expected, result.value["counts"]
    return {"result": result, "posts": posts, "gets": gets, "throttled": throttled, "in_flight": in_flight,
            "entries": sum(expected.values()), "jobs": result.value["counts"]["jobs"], "analyses": analyses}


def _report(backend: str, results: dict[int, dict[str, Any]]) -> None:
    rows = []
    for groups, sized in results.items():
        floor: ChildResult = sized["floor"]
        f = floor.value
        size = f"{groups:,} groups / {groups * VARIANTS_PER_GROUP:,} variants"
        post_jobs_per_s = f["posted_jobs"] / f["post_s"] if f["post_s"] else 0.0
        post_entries_per_s = f["posted_entries"] / f["post_s"] if f["post_s"] else 0.0
        pieces_s = f["plan_s"] + f["bodies_s"] + (f["jobs"] / post_jobs_per_s if post_jobs_per_s else 0.0)
        sized["pieces_rate"] = f["entities"] / pieces_s if pieces_s else 0.0
        least_jobs_s = window_seconds(math.ceil(f["entities"] / ENTRIES_PER_JOB))
        run_ceiling = f["entities"] / least_jobs_s if least_jobs_s else math.inf  # inf: the windows do not bind
        sized["run_ceiling"] = run_ceiling
        rows.append((size, "floor: plan.categories + plan.groups", f"{f['entities']:,}", "—", "—",
                     f"{f['plan_s']:.2f}", f"{f['entities'] / f['plan_s']:,.0f}", "—", "—", "—",
                     f"{floor.peak_rss_mb:.0f}", f"{floor.rss_before_mb:.0f}"))
        rows.append((size, "floor: job_bodies (same entities)", f"{f['entities']:,}", f"{f['jobs']:,}", "—",
                     f"{f['bodies_s']:.2f}", f"{f['entities'] / f['bodies_s']:,.0f}",
                     f"{f['jobs'] / f['bodies_s']:,.0f}", "—", "—", "—", "—"))
        rows.append((size, f"floor: httpx POST of {f['posted_jobs']:,} jobs to the fake", f"{f['posted_entries']:,}",
                     f"{f['posted_jobs']:,}", f"{f['posted_jobs']:,}/0", f"{f['post_s']:.2f}",
                     f"{post_entries_per_s:,.0f}", f"{post_jobs_per_s:,.1f}", "—", "—", "—", "—"))
        rows.append((size, "floor: bare pieces together (estimate)", f"{f['entities']:,}", f"{f['jobs']:,}", "—",
                     f"{pieces_s:.1f}", f"{sized['pieces_rate']:,.0f}",
                     f"{f['jobs'] / pieces_s:,.1f}", "—", "—", "—", "—"))
        rows.append((size, "ceiling: the windows' least time for full jobs", f"{f['entities']:,}",
                     f"{math.ceil(f['entities'] / ENTRIES_PER_JOB):,}", "—",
                     f"{least_jobs_s:.0f}", f"{run_ceiling:,.0f}" if least_jobs_s else "unbounded",
                     "—", "—", "—", "—", "—"))
        for mode in MODES:
            if mode not in sized:
                continue
            run = sized[mode]
            result: ChildResult = run["result"]
            rate = run["entries"] / result.seconds
            vs = (f"{ratio(rate, STEADY_CEILING)} / {ratio(rate, run_ceiling) if least_jobs_s else '—'}"
                  if mode == "limiter"
                  else f"{ratio(rate, sized['pieces_rate'])} of pieces")
            least = window_seconds(run["posts"])  # status GETs and listings have a window of their own
            notes = [f"≥ {least:.0f} s for {run['posts']:,} job POSTs"] if mode == "limiter" else []
            if run["analyses"]:
                notes.append(f"{len(run['analyses'])} ANALYZE")
            if run["throttled"]:
                notes.append(f"{run['throttled']} answered 429")
            rows.append((size, f"reconcile, {mode}" + (f" ({'; '.join(notes)})" if notes else ""),
                         f"{run['entries']:,}", f"{run['jobs']:,}", f"{run['posts']:,}/{run['gets']:,}",
                         f"{result.seconds:.1f}", f"{rate:,.0f}", f"{run['jobs'] / result.seconds:,.1f}", vs,
                         f"{run['entries'] / (run['posts'] + run['gets']):.1f}", f"{result.peak_rss_mb:.0f}",
                         f"{result.rss_before_mb:.0f}"))
    analyze = f", ANALYZE every {PG_ANALYZE_EVERY:g} s" if PG_ANALYZE_EVERY and backend == "postgresql" else ""
    print_table(f"First catalog reconcile (Klaviyo Catalog API, fake), {backend}, job polls {JOB_POLLS}{analyze}",
                ("size", "step", "entries", "jobs", "POST/GET", "seconds", "entries/s", "jobs/s",
                 "vs 1,250/s steady / vs run ceiling", "entries per request", "peak RSS MB", "RSS before MB"),
                rows)
    checks = []
    small, large = SIZES
    if "limiter" in MODES:
        run = results[large]["limiter"]
        rate = run["entries"] / run["result"].seconds
        seconds = run["result"].seconds
        checks.append((f"limiter run ({large:,} groups) ≥ {TARGET_SHARE:.0%} of the steady ceiling (1,250/s)",
                       f"{rate:,.0f}/s = {rate / STEADY_CEILING:.0%}"
                       + ("" if seconds >= 120 else f" (run of {seconds:.0f} s: first-minute burst included)"),
                       rate >= TARGET_SHARE * STEADY_CEILING))
        ceiling = results[large]["run_ceiling"]
        if math.isfinite(ceiling):
            checks.append((f"limiter run ({large:,} groups) ≥ {TARGET_SHARE:.0%} of the run ceiling",
                           f"{rate:,.0f}/s = {rate / ceiling:.0%} of {ceiling:,.0f}/s", rate >= TARGET_SHARE * ceiling))
    for mode in MODES:
        low, high = results[small][mode]["result"], results[large][mode]["result"]
        checks.append((f"peak RSS flat, {mode}: {large:,} groups ≤ {1 + TARGET_RSS_GROWTH:.2f}× {small:,}",
                       f"{low.peak_rss_mb:.0f} → {high.peak_rss_mb:.0f} MB ({high.peak_rss_mb / low.peak_rss_mb:.2f}×;"
                       f" above the RSS before the work: {low.peak_rss_mb - low.rss_before_mb:.0f} → "
                       f"{high.peak_rss_mb - high.rss_before_mb:.0f} MB)",
                       high.peak_rss_mb <= (1 + TARGET_RSS_GROWTH) * low.peak_rss_mb))
    print_table(f"Targets, {backend}", ("target", "measured", "met"),
                [(name, value, "yes" if met else "**no**") for name, value, met in checks])
