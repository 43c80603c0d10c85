"""Issue 18: onsite collector throughput through the production server, outbox on PostgreSQL.

Two destinations take onsite events (Klaviyo all three, Sendlane all but Active on Site), so an accepted event
writes one or two outbox rows; no worker runs. Visitors are identified (their email rides on every event, as /t.js sends it) and send 10
events each, across Viewed Product, Added to Cart and Active on Site. Floor, in the same run: the bare WSGI
app of bench_support on the same server and database, inserting each body as one row.

    SHOPRELAY_BENCH_ONSITE_EVENTS=3000 python -m pytest tests/benchmarks/bench_onsite_collector.py -m benchmark -s

Each run posts the events twice: one per request, then in batches of SHOPRELAY_BENCH_ONSITE_BATCH (default 5)
as /t.js sends what a page does together (`{"events": [...]}`).

Environment: SHOPRELAY_BENCH_ONSITE_EVENTS (default 4000), SHOPRELAY_BENCH_ONSITE_CLIENTS (concurrent
connections, default 8), SHOPRELAY_BENCH_ONSITE_WORKERS (server processes, default 2: gunicorn),
SHOPRELAY_BENCH_BACKENDS (default postgresql).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from tests.benchmarks.bench_support import (
    app_env,
    backends,
    child,
    create_destinations,
    env_int,
    flushed_redis,
    free_port,
    make_app,
    post_concurrently,
    print_table,
    ratio,
    scratch_folder,
    throwaway_database,
)

EVENTS = env_int("SHOPRELAY_BENCH_ONSITE_EVENTS", 4000)
BATCH = env_int("SHOPRELAY_BENCH_ONSITE_BATCH", 5)  # events per request as /t.js sends a page's events
CLIENTS = env_int("SHOPRELAY_BENCH_ONSITE_CLIENTS", 8)
PROCESSES = [int(n) for n in os.environ.get("SHOPRELAY_BENCH_ONSITE_WORKERS", "2").split(",") if n.strip()]
TARGET_EVENTS_S = 1000.0
HEADERS = {"Content-Type": "text/plain", "Origin": "https://shop.example",
           "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"}
NAMES = ("viewed_product", "viewed_product", "added_to_cart", "active_on_site")


@dataclass(frozen=True)
class Run:
    events: int
    seconds: float
    failures: int
    requests: int = 0

    @property
    def per_s(self) -> float:
        return self.events / self.seconds


def bodies(prefix: str, count: int) -> list[bytes]:
    """Collect bodies as /t.js posts them: 10 per visitor, each visitor identified by its email."""
    result = []
    for n in range(count):
        visitor = n // 10
        product = {"product_id": str(n % 500), "sku": f"SKU-{n % 500}", "name": f"Product {n % 500}",
                   "price": 9.99, "url": f"https://shop.example/p/{n % 500}"}
        result.append(json.dumps({
            "id": f"{prefix}{n}", "event": NAMES[n % len(NAMES)], "anonymous_id": f"{prefix}-visitor-{visitor:08d}",
            "email": f"shopper{visitor}@example.com", "url": product["url"],
            "properties": {"product": product, "cart": {"total": 9.99, "currency": "USD", "items": [product]}}
            if NAMES[n % len(NAMES)] == "added_to_cart" else {"product": product}}).encode())
    return result


def batched(payloads: list[bytes], size: int) -> list[bytes]:
    """The same events, `size` per request (`{"events": [...]}`); a visitor's 10 events never straddle."""
    events = [json.loads(payload) for payload in payloads]
    for event in events:
        event.pop("id")
    return [json.dumps({"events": events[i:i + size]}).encode() for i in range(0, len(events), size)]


def post_all(port: int, path: str, payloads: list[bytes], clients: int, per_request: int = 1) -> Run:
    """POST every body over `clients` keep-alive connections; anything but 202 counts as a failure."""
    seconds, failures = post_concurrently(port, path, payloads, clients, HEADERS)
    return Run(len(payloads) * per_request, seconds, len(failures), len(payloads))


@pytest.mark.benchmark
@pytest.mark.parametrize("processes", PROCESSES)
@pytest.mark.parametrize("backend", backends("postgresql"))
def test_onsite_collector_throughput(backend: str, processes: int) -> None:
    flushed_redis()
    load_before = os.getloadavg()[0]
    warmup, events = bodies("W", 100), bodies(f"{backend[:2].upper()}{processes}", EVENTS)
    limits = {"SHOPRELAY_ONSITE_IP_PER_MINUTE": str(10 * (EVENTS + 100))}  # one client address here
    assert 10 % BATCH == 0, "a batch holds one visitor's events"
    with scratch_folder("bench-onsite-") as folder:
        with throwaway_database(backend, folder, "onsite") as database_url:
            instance = folder / "instance"
            create_destinations(make_app(database_url, instance), "http://127.0.0.1:9", ["klaviyo", "sendlane"])
            port = free_port()
            with child(["-m", "webapp.cli", "web", "--port", str(port), "--workers", str(processes)],
                       app_env(database_url, instance, **limits), port=port, log=folder / "web.log"):
                post_all(port, "/t/collect", warmup, 2)
                run = post_all(port, "/t/collect", events, CLIENTS)
                flushed_redis()  # new minute budgets for the second half
                pages = post_all(port, "/t/collect", batched(bodies("P", EVENTS), BATCH), CLIENTS, BATCH)
            engine = sa.create_engine(database_url)
            with engine.connect() as connection:
                rows = connection.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
            engine.dispose()
        with throwaway_database(backend, folder, "onsite_floor", schema=False) as floor_url:
            port = free_port()
            with child(["-m", "tests.benchmarks.bench_support", "floor", "--port", str(port), "--database",
                        floor_url, "--workers", str(processes)], port=port):
                post_all(port, "/", warmup, 2)
                floor = post_all(port, "/", events, CLIENTS)
    server = "waitress, 1 process" if processes == 1 else f"gunicorn, {processes} processes"
    print_table(f"Onsite collector through `shoprelay web --workers {processes}` ({server}), {backend}, 2 destinations "
                f"({rows:,} outbox rows written), {CLIENTS} connections; 1-min load average {load_before:.2f} "
                f"before, {os.getloadavg()[0]:.2f} after (the machine is shared)",
                ("requests", "events", "seconds", "shoprelay", "floor (same server, bare WSGI, one insert per event)",
                 "ratio", "target", "met"),
                [(f"{mode}: {one.requests:,}", one.events, f"{one.seconds:.1f}", f"{one.per_s:,.0f} events/s",
                  f"{floor.per_s:,.0f} events/s", ratio(one.per_s, floor.per_s), f"≥ {TARGET_EVENTS_S:.0f} events/s",
                  "yes" if one.per_s >= TARGET_EVENTS_S else "**no**")
                 for mode, one in (("1 event each", run), (f"{BATCH} events each", pages))])
    assert run.failures == 0 and pages.failures == 0 and floor.failures == 0
    assert rows >= 2 * EVENTS + 100
