"""Issue 5: ingest throughput through the real web server, single orders and 1000-order batches.

Two destinations (Klaviyo, eSputnik) are enabled, so every order writes its outbox rows; no worker runs.
Targets on this 2-core machine: at least 1,000 orders/s in batches and 200 single-order requests/s.
The server is `shoprelay web --workers N` for each N in SHOPRELAY_BENCH_INGEST_WORKERS (default 1,2: waitress
in one process, then gunicorn with one process per CPU of this machine). Floor, measured in the same run on
the same backend and the same server: a bare WSGI app that parses the same JSON and inserts the orders into
a plain table with one executemany (bench_support.floor_wsgi_app).

    SHOPRELAY_BENCH_INGEST_SINGLE=300 SHOPRELAY_BENCH_INGEST_BATCHES=3 \
        python -m pytest tests/benchmarks/bench_ingest.py -m benchmark -s

Environment: SHOPRELAY_BENCH_INGEST_SINGLE (single-order requests, default 2000),
SHOPRELAY_BENCH_INGEST_BATCHES (batch requests, default 20), SHOPRELAY_BENCH_INGEST_BATCH_SIZE (1000),
SHOPRELAY_BENCH_INGEST_CLIENTS (concurrent connections for singles, default 4; batches use 2),
SHOPRELAY_BENCH_INGEST_WORKERS (server processes, default 1,2), SHOPRELAY_BENCH_BACKENDS (default
sqlite,postgresql).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.benchmarks.bench_support import (
    app_env,
    backends,
    bench_order,
    child,
    create_destinations,
    env_int,
    flushed_redis,
    free_port,
    make_app,
    order_body,
    post_concurrently,
    print_table,
    ratio,
    scratch_folder,
    throwaway_database,
)

SINGLE_REQUESTS = env_int("SHOPRELAY_BENCH_INGEST_SINGLE", 2000)
BATCHES = env_int("SHOPRELAY_BENCH_INGEST_BATCHES", 20)
BATCH_SIZE = env_int("SHOPRELAY_BENCH_INGEST_BATCH_SIZE", 1000)
SINGLE_CLIENTS = env_int("SHOPRELAY_BENCH_INGEST_CLIENTS", 4)
# `shoprelay web --workers N`: 1 is waitress in one process, 2 is gunicorn with one process per CPU here.
SERVER_PROCESSES = [int(n) for n in os.environ.get("SHOPRELAY_BENCH_INGEST_WORKERS", "1,2").split(",") if n.strip()]
BATCH_CLIENTS = 2
LINES = 3
REPEAT_SHARE = 0.3  # share of orders from a customer seen before (the contact is updated, not created)
TARGET_BATCH_ORDERS_S = 1000.0
TARGET_SINGLE_REQUESTS_S = 200.0


@dataclass(frozen=True)
class Run:
    requests: int
    orders: int
    seconds: float
    failures: int

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def orders_per_s(self) -> float:
        return self.orders / self.seconds


def post_all(port: int, bodies: list[bytes], orders_each: int, clients: int, api_key: str = "") -> Run:
    """POST every body over `clients` keep-alive connections; anything but 202 counts as a failure."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    seconds, failures = post_concurrently(port, "/api/v1/orders", bodies, clients, headers, timeout=300)
    return Run(len(bodies), len(bodies) * orders_each, seconds, len(failures))


def make_bodies(prefix: str) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """Warm-up, single-order and batch bodies; ids unique per run, 30% of orders from repeat customers."""
    total = SINGLE_REQUESTS + BATCHES * BATCH_SIZE
    customers = max(1, int(total * (1 - REPEAT_SHARE)))
    warmup = [order_body([bench_order(n, lines=LINES, prefix=f"{prefix}W")]) for n in range(20)]
    singles = [order_body([bench_order(n, lines=LINES, customers=customers, prefix=prefix)])
               for n in range(SINGLE_REQUESTS)]
    batches = []
    for batch in range(BATCHES):
        start = SINGLE_REQUESTS + batch * BATCH_SIZE
        batches.append(order_body([bench_order(n, lines=LINES, customers=customers, prefix=prefix)
                                   for n in range(start, start + BATCH_SIZE)]))
    return warmup, singles, batches


def measure_app(database_url: str, folder: Path, bodies: tuple[list[bytes], list[bytes], list[bytes]],
                processes: int) -> tuple[Run, Run, int]:
    """The real app under `shoprelay web --workers N`: (singles, batches, outbox rows written)."""
    import sqlalchemy as sa

    instance = folder / "instance"
    app = make_app(database_url, instance)
    api_key, _ = create_destinations(app, "http://127.0.0.1:9", ["klaviyo", "esputnik"])
    port = free_port()
    warmup, singles, batches = bodies
    with child(["-m", "webapp.cli", "web", "--port", str(port), "--workers", str(processes)],
               app_env(database_url, instance),
               port=port, log=folder / "web.log"):
        post_all(port, warmup, 1, 1, api_key)
        single_run = post_all(port, singles, 1, SINGLE_CLIENTS, api_key)
        batch_run = post_all(port, batches, BATCH_SIZE, BATCH_CLIENTS, api_key)
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        events = connection.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
    engine.dispose()
    return single_run, batch_run, events


def measure_floor(database_url: str, bodies: tuple[list[bytes], list[bytes], list[bytes]],
                  processes: int) -> tuple[Run, Run]:
    port = free_port()
    warmup, singles, batches = bodies
    with child(["-m", "tests.benchmarks.bench_support", "floor", "--port", str(port), "--database",
                database_url, "--workers", str(processes)], port=port):
        post_all(port, warmup, 1, 1)
        return post_all(port, singles, 1, SINGLE_CLIENTS), post_all(port, batches, BATCH_SIZE, BATCH_CLIENTS)


@pytest.mark.benchmark
@pytest.mark.parametrize("processes", SERVER_PROCESSES)
@pytest.mark.parametrize("backend", backends())
def test_ingest_throughput(backend: str, processes: int) -> None:
    flushed_redis()
    load_before = os.getloadavg()[0]
    bodies = make_bodies(f"{backend[:2].upper()}{processes}")
    with scratch_folder("bench-ingest-") as folder:
        with throwaway_database(backend, folder, "ingest") as database_url:
            single, batch, events = measure_app(database_url, folder, bodies, processes)
        with throwaway_database(backend, folder, "ingest_floor", schema=False) as floor_url:
            floor_single, floor_batch = measure_floor(floor_url, bodies, processes)
    rows = [
        ("single orders", single.requests, f"{single.seconds:.1f}", f"{single.requests_per_s:,.0f} req/s",
         f"{floor_single.requests_per_s:,.0f} req/s", ratio(single.requests_per_s, floor_single.requests_per_s),
         f"≥ {TARGET_SINGLE_REQUESTS_S:.0f} req/s",
         "yes" if single.requests_per_s >= TARGET_SINGLE_REQUESTS_S else "**no**"),
        (f"batches of {BATCH_SIZE}", batch.requests, f"{batch.seconds:.1f}", f"{batch.orders_per_s:,.0f} orders/s",
         f"{floor_batch.orders_per_s:,.0f} orders/s", ratio(batch.orders_per_s, floor_batch.orders_per_s),
         f"≥ {TARGET_BATCH_ORDERS_S:.0f} orders/s",
         "yes" if batch.orders_per_s >= TARGET_BATCH_ORDERS_S else "**no**"),
    ]
    server = "waitress, 1 process" if processes == 1 else f"gunicorn, {processes} processes"
    print_table(f"Ingest through `shoprelay web --workers {processes}` ({server}), {backend}, {LINES} lines per "
                f"order, 2 destinations ({events:,} outbox rows written; singles over {SINGLE_CLIENTS} connections, "
                f"batches over {BATCH_CLIENTS}; 1-min load average {load_before:.2f} before, "
                f"{os.getloadavg()[0]:.2f} after: the machine is shared)",
                ("mode", "requests", "seconds", "shoprelay", "floor (same server, bare WSGI + executemany)",
                 "ratio", "target", "met"), rows)
    assert single.failures == 0 and batch.failures == 0, "some ingest requests failed (see above)"
    assert floor_single.failures == 0 and floor_batch.failures == 0
