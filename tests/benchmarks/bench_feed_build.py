"""Issue 4: build a Klaviyo XML feed from the database, and serve the published file.

Build targets (at 1,000,000 products): within 1.5x of the floor, peak RSS under 200 MB and flat from
100k to 1M. The floor is a bare loop, measured in the same run on the same database: the same rows
streamed with SQLAlchemy Core and written with lxml `xmlfile` (one `xf.element` per item, nested fields).

Serving: requests/s for a 304 conditional GET and for the full ~50 MB part through gunicorn (the
production server, `-w 2 --threads 4` on this 2-core machine), beside the same gunicorn serving the same
file through a ten-line WSGI app (the floor). Bounded in count and time, only to 127.0.0.1.

    SHOPRELAY_BENCH_ROWS=20000 python -m pytest tests/benchmarks/bench_feed_build.py -m benchmark -s
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.benchmarks.conftest import (
    BACKENDS,
    BENCH_ROWS,
    REDIS_URL,
    ChildResult,
    Measured,
    Stopwatch,
    make_app,
    print_table,
    product_records,
    rss_now_mb,
    run_measured,
)

SIZES = (max(BENCH_ROWS // 10, 1), BENCH_ROWS)  # 100k and 1M by default
SERVE_PRODUCTS = int(os.environ.get("SHOPRELAY_BENCH_SERVE_PRODUCTS", "110000"))  # ~50 MB of Klaviyo XML
NOT_MODIFIED_REQUESTS = 2000
FULL_BODY_REQUESTS = 20
CLIENTS = 2
LOOP_SECONDS = 60.0
TARGET_RATIO = 1.5
TARGET_PEAK_MB = 200.0
REPO = Path(__file__).resolve().parents[2]


# -- measured in child processes --

def seed_catalog(database_url: str, instance: Path, start: int, stop: int) -> Measured:
    """Products start..stop of one source (bare Core inserts), plus the benchmark's feeds on first call."""
    import sqlalchemy as sa

    from webapp.extensions import db
    from webapp.models import Feed, Product, Source
    from webapp.schemas.feeds import FeedCreate
    from webapp.schemas.sources import SourceCreate
    from webapp.services.catalog.sources import create_source
    from webapp.services.publishing.feeds import create_feed

    app = make_app(database_url, instance)
    with app.app_context(), Stopwatch() as watch:
        source = db.session.scalar(sa.select(Source).where(Source.name == "bench catalog")) or \
            create_source(SourceCreate(name="bench catalog", kind="csv"))
        for slug, gzip in (("bench-plain", False), ("bench-gzip", True)):
            if db.session.scalar(sa.select(Feed.id).where(Feed.slug == slug)) is None:
                create_feed(FeedCreate(name=slug, slug=slug, format="klaviyo_xml", source_ids=[source.id],
                                       gzip=gzip))
        batch: list[dict[str, Any]] = []
        for record in product_records(source.id, start, stop):
            batch.append(record)
            if len(batch) == 5000:
                db.session.execute(sa.insert(Product.__table__), batch)
                batch = []
        if batch:
            db.session.execute(sa.insert(Product.__table__), batch)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return Measured(watch.seconds, stop - start)


def lxml_floor(database_url: str, out: Path) -> Measured:
    """The same rows, Core-streamed, written with lxml xmlfile and no application code."""
    import sqlalchemy as sa
    from lxml import etree

    from webapp.models import Product

    engine = sa.create_engine(database_url)
    columns = (Product.external_id, Product.title, Product.link, Product.description, Product.image_link,
               Product.price, Product.categories, Product.inventory_quantity)
    query = sa.select(*columns).order_by(Product.id).execution_options(yield_per=5000, stream_results=True)
    before = rss_now_mb()
    items = 0
    with Stopwatch() as watch, engine.connect() as connection, etree.xmlfile(str(out), encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("Products"):
            for external_id, title, link, description, image, price, categories, stock in \
                    connection.execute(query):
                with xf.element("Product"):
                    for tag, text in (("id", external_id), ("title", title), ("link", link),
                                      ("description", description), ("image_link", image),
                                      ("price", format(price, "f")), ("categories", ",".join(categories)),
                                      ("inventory_quantity", str(stock))):
                        with xf.element(tag):
                            xf.write(text)
                items += 1
    engine.dispose()
    return Measured(watch.seconds, {"items": items, "bytes": out.stat().st_size}, before)


def app_build(database_url: str, instance: Path, slug: str) -> Measured:
    """One build of the feed as the worker runs it: stream, write, split, (gzip), validate, publish."""
    import sqlalchemy as sa

    from webapp.extensions import db
    from webapp.models import Feed
    from webapp.services.publishing.builds import request_build, run_build

    app = make_app(database_url, instance)
    with app.app_context():
        feed = db.session.scalar(sa.select(Feed).where(Feed.slug == slug))
        before = rss_now_mb()
        with Stopwatch() as watch:
            build = run_build(request_build(feed, enqueue=False).id)
        value = {"status": build.status, "error": build.error, "items": build.items_written,
                 "skipped": build.items_skipped, "bytes": build.bytes, "parts": len(build.parts),
                 "token": feed.token, "directory": build.directory}
        db.session.remove()
        db.engine.dispose()
    return Measured(watch.seconds, value, before)


# -- the build benchmark --

@pytest.mark.benchmark
@pytest.mark.parametrize("backend", BACKENDS)
def test_feed_build(backend: str, bench_dir: Path, new_database: Callable[[str, str], str]) -> None:
    url = new_database(backend, f"feed-{backend}")
    instance = bench_dir / f"instance-feed-{backend}"
    rows: list[tuple] = []
    peaks: dict[int, float] = {}
    ratios: dict[int, float] = {}
    seeded = 0
    for size in SIZES:
        run_measured(seed_catalog, url, instance, seeded, size)
        seeded = size
        floor = run_measured(lxml_floor, url, bench_dir / f"floor-{backend}.xml")
        (bench_dir / f"floor-{backend}.xml").unlink()
        build = run_measured(app_build, url, instance, "bench-plain")
        assert floor.value["items"] == size
        assert (build.value["status"], build.value["items"], build.value["skipped"]) == ("succeeded", size, 0), \
            build.value
        peaks[size], ratios[size] = build.peak_rss_mb, build.seconds / floor.seconds
        rows.append(_row("floor: Core rows -> lxml xmlfile", size, floor, None, floor.value["bytes"], 1))
        rows.append(_row("shoprelay build (gzip off)", size, build, floor, build.value["bytes"],
                         build.value["parts"]))
    gzip_build = run_measured(app_build, url, instance, "bench-gzip")
    assert gzip_build.value["status"] == "succeeded", gzip_build.value
    rows.append(_row("shoprelay build (gzip on, the default)", SIZES[-1], gzip_build, None,
                     gzip_build.value["bytes"], gzip_build.value["parts"]))

    print_table(f"Klaviyo XML feed build, {backend}", ("how", "products", "seconds", "products/s",
                                                       "time vs floor", "MB written", "parts", "peak RSS MB",
                                                       "RSS before work MB"), rows)
    small, large = SIZES
    print_table(f"Targets, {backend}", ("target", "measured", "met"), [
        (f"build within {TARGET_RATIO}x of the floor at {large:,}", f"{ratios[large]:.2f}x",
         "yes" if ratios[large] <= TARGET_RATIO else "**no**"),
        (f"peak RSS < {TARGET_PEAK_MB:.0f} MB", f"{max(peaks.values()):.0f} MB",
         "yes" if max(peaks.values()) < TARGET_PEAK_MB else "**no**"),
        (f"peak RSS flat from {small:,} to {large:,} (within 10%)", f"{peaks[small]:.0f} -> {peaks[large]:.0f} MB",
         "yes" if peaks[large] <= peaks[small] * 1.1 else "**no**"),
    ])


def _row(how: str, size: int, result: ChildResult, floor: ChildResult | None, size_bytes: int,
         parts: int) -> tuple:
    ratio = f"{result.seconds / floor.seconds:.2f}x" if floor else "—"
    return (how, f"{size:,}", f"{result.seconds:.1f}", f"{size / result.seconds:,.0f}", ratio,
            f"{size_bytes / 1e6:.0f}", parts, f"{result.peak_rss_mb:.0f}", f"{result.rss_before_mb:.0f}")


# -- serving --

def static_file_app(environ: dict[str, Any], start_response: Callable) -> Any:
    """The serving floor: one file, a strong ETag, 304 on a match, the body through wsgi.file_wrapper."""
    path = os.environ["SHOPRELAY_BENCH_STATIC_FILE"]
    stat = os.stat(path)
    etag = '"' + hashlib.sha1(f"{stat.st_mtime_ns}-{stat.st_size}".encode()).hexdigest() + '"'
    if environ.get("HTTP_IF_NONE_MATCH") == etag:
        start_response("304 Not Modified", [("ETag", etag)])
        return [b""]
    start_response("200 OK", [("Content-Type", "application/xml; charset=utf-8"),
                              ("Content-Length", str(stat.st_size)), ("ETag", etag)])
    handle = open(path, "rb")  # noqa: SIM115 - closed by the server through file_wrapper
    return environ["wsgi.file_wrapper"](handle, 1 << 20)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn(app_spec: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """gunicorn -w 2 --threads 4 on a free 127.0.0.1 port; stopped (by its pid) on exit."""
    port = _free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "--threads", "4", "-b", f"127.0.0.1:{port}",
             "--log-level", "warning", app_spec], cwd=REPO, env={**os.environ, **env}, stdout=output,
            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn {app_spec} did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def request_loop(url: str, total: int, headers: dict[str, str], expect: int) -> tuple[float, int, int]:
    """(seconds, requests, body bytes) for `total` GETs over CLIENTS keep-alive clients, time-bounded."""
    counts = [0] * CLIENTS
    sizes = [0] * CLIENTS
    errors: list[str] = []
    stop_at = time.monotonic() + LOOP_SECONDS

    def client_loop(slot: int) -> None:
        with httpx.Client(timeout=60) as client:
            for _ in range(total // CLIENTS):
                if time.monotonic() > stop_at:
                    return
                with client.stream("GET", url, headers=headers) as response:
                    for chunk in response.iter_raw(1 << 20):
                        sizes[slot] += len(chunk)
                if response.status_code != expect:
                    errors.append(f"{response.status_code} from {url}")
                    return
                counts[slot] += 1

    threads = [threading.Thread(target=client_loop, args=(slot,)) for slot in range(CLIENTS)]
    with Stopwatch() as watch:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors, errors
    return watch.seconds, sum(counts), sum(sizes)


def measure_server(url: str) -> dict[str, tuple[float, int, int]]:
    first = httpx.get(url, headers={"Accept-Encoding": "identity"}, timeout=60)
    assert first.status_code == 200 and first.headers.get("etag"), first.status_code
    conditional = {"If-None-Match": first.headers["etag"], "Accept-Encoding": "identity"}
    return {"304": request_loop(url, NOT_MODIFIED_REQUESTS, conditional, 304),
            "full": request_loop(url, FULL_BODY_REQUESTS, {"Accept-Encoding": "identity"}, 200)}


@pytest.mark.benchmark
@pytest.mark.parametrize("backend", BACKENDS)
def test_feed_serving(backend: str, bench_dir: Path, new_database: Callable[[str, str], str]) -> None:
    url = new_database(backend, f"serve-{backend}")
    instance = bench_dir / f"instance-serve-{backend}"
    run_measured(seed_catalog, url, instance, 0, SERVE_PRODUCTS)
    build = run_measured(app_build, url, instance, "bench-gzip").value
    assert build["status"] == "succeeded", build
    served = Path(build["directory"]) / "bench-gzip.xml"
    env = {"DATABASE_URL": url, "SHOPRELAY_INSTANCE_PATH": str(instance), "REDIS_URL": REDIS_URL,
           "SECRET_KEY": "bench-secret", "SHOPRELAY_LOG_LEVEL": "WARNING"}
    with gunicorn("webapp:create_app()", env, bench_dir / f"gunicorn-app-{backend}.log") as base:
        app = measure_server(f"{base}/feeds/{build['token']}/bench-gzip.xml")
    floor_env = {"SHOPRELAY_BENCH_STATIC_FILE": str(served)}
    with gunicorn("tests.benchmarks.bench_feed_build:static_file_app", floor_env,
                  bench_dir / f"gunicorn-floor-{backend}.log") as base:
        floor = measure_server(f"{base}/bench-gzip.xml")

    size_mb = served.stat().st_size / 1e6
    rows = []
    for kind, label in (("304", "304 conditional GET"), ("full", f"full {size_mb:.0f} MB body")):
        for how, (seconds, count, body) in (("floor: static WSGI app", floor[kind]), ("shoprelay", app[kind])):
            assert count > 0
            rate = count / seconds
            ratio = f"{floor[kind][1] / floor[kind][0] / rate:.2f}x" if how == "shoprelay" else "—"
            rows.append((label, how, count, f"{seconds:.1f}", f"{rate:,.0f}", f"{body / 1e6 / seconds:,.0f}",
                         ratio))
    print_table(f"Serving a published feed part through gunicorn -w 2 --threads 4, {backend}, "
                f"{CLIENTS} keep-alive clients",
                ("request", "server", "requests", "seconds", "requests/s", "MB/s", "floor rate / ours"), rows)
