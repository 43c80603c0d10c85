"""Issue 14: the delivery claim and the pages that read events stay flat from 1,000,000 to 10,000,000 events.

The store's history is generated straight into the database, as it would stand after months of steady
traffic: orders at a constant rate (the newest SHOPRELAY_BENCH_EVENTS_FROM events span the last 30 days), 4
events per order (placed and fulfilled, 2 destinations), one delivery attempt per delivered or failed event,
one logged bulk request per 100 attempts. Every 500th order's events are dead (dead letters stay until
resolved, so they grow with the history); the newest 2,500 orders are a pending backlog and every 997th
order of the last 30 days is retrying later (both the same at both sizes). The first build writes the
newest orders; the second adds the older history underneath (lower ids, earlier times), so the grown
database looks as if it had been written in order. The rows are made by the database itself, one
INSERT ... SELECT per table: over generate_series on PostgreSQL (the secondary indexes of events and
attempts dropped for the load and built again after it, then VACUUM ANALYZE, as autovacuum would), over a
recursive CTE on SQLite (a 1 GB page cache for the load; the app never runs ANALYZE, so neither does this).

Timed at both sizes, in this process: `workers.delivery.claim.claim_due` (a batch of
SHOPRELAY_DELIVERY_BATCH = 1,000 events, then released untimed) and, through the Flask test client logged
in, the overview (24 h and 7 d), the destinations list, a destination page, an order page, the order API,
the destinations API and /metrics. Each figure is the median of SHOPRELAY_BENCH_SCALE_REPEAT runs (3 for
a figure slower than SHOPRELAY_BENCH_SCALE_BUDGET seconds in all), printed beside the same figure at the
small size with their ratio, and beside a floor that reads no event (the sources API: its ratio shows
how much the shared machine's load moved between the two sizes). Target: every ratio within 1.5x.

    SHOPRELAY_BENCH_EVENTS_FROM=100000 SHOPRELAY_BENCH_EVENTS_TO=1000000 \
        python -m pytest tests/benchmarks/bench_event_scale.py -m benchmark -s

Environment: SHOPRELAY_BENCH_EVENTS_FROM (default 1,000,000), SHOPRELAY_BENCH_EVENTS_TO (default
10,000,000), SHOPRELAY_BENCH_SCALE_REPEAT (timed runs per figure, default 15),
SHOPRELAY_BENCH_SCALE_BUDGET (seconds, default 60), SHOPRELAY_BENCH_BACKENDS (default sqlite,postgresql),
SHOPRELAY_BENCH_POSTGRES_URL, SHOPRELAY_TEST_REDIS_URL.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.benchmarks.bench_dashboard import PASSWORD, StatementLog, log_in
from tests.benchmarks.bench_support import (
    backends,
    create_destinations,
    dispose,
    env_int,
    flushed_redis,
    make_app,
    print_table,
    scratch_folder,
    throwaway_database,
)

EVENTS_FROM = env_int("SHOPRELAY_BENCH_EVENTS_FROM", 1_000_000)
EVENTS_TO = env_int("SHOPRELAY_BENCH_EVENTS_TO", 10_000_000)
REPEAT = env_int("SHOPRELAY_BENCH_SCALE_REPEAT", 15)
BUDGET_S = env_int("SHOPRELAY_BENCH_SCALE_BUDGET", 60)  # seconds per figure before stopping at 3 runs
EVENTS_PER_ORDER = 4  # placed + fulfilled, for each of the 2 destinations
RECENT_DAYS = 30  # the newest EVENTS_FROM events span this much time; older history goes further back
BACKLOG_ORDERS = 2_500  # the newest orders: pending (their fulfilled events blocked behind placed)
DEAD_EVERY = 500
RETRYING_EVERY = 997  # among the recent orders only: retries happen in the days after a failure
ATTEMPTS_PER_REQUEST = 100
CLAIM_BATCH = 1_000
TARGET_RATIO = 1.5
# Reads no event: its ratio says how much the shared machine's load moved between the two sizes.
FLOOR = "floor: sources API"
# sqlite3 runs a statement up to its first row in execute() and the rest while rows are fetched.
SLOWEST_NOTE = {"sqlite": " (SQLite: time to its first row only)"}
NOW = datetime.now(UTC).replace(microsecond=0)


# -- the history --

@dataclass(frozen=True)
class History:
    """Orders numbered 1..total_orders in time order; the small size is the newest `recent_orders`."""

    total_orders: int
    recent_orders: int
    destinations: tuple[int, int]

    @property
    def step(self) -> timedelta:
        return timedelta(days=RECENT_DAYS) / self.recent_orders


# One INSERT ... SELECT per table, generated in the database (no Python per row). {series} numbers the orders
# :lo..:hi as g(k); o adds each order's state and creation time t (epoch seconds); s is the 4 event slots.
# {t:EXPR} is a timestamp from epoch seconds and @json(EXPR)json@ a JSON value from text, per dialect.
ORDERS_OF = """o(k, state, t) AS (
    SELECT k, CASE WHEN k > :total - :backlog THEN 'pending' WHEN k % :dead_every = 0 THEN 'dead'
                   WHEN k > :total - :recent AND k % :retrying_every = 0 THEN 'retrying' ELSE 'delivered' END,
           :now - (:total - k) * :step - 300
    FROM g),
s(slot, destination, name, sequence) AS (VALUES (0, :d0, 'placed_order', 1), (1, :d0, 'fulfilled_order', 2),
                                              (2, :d1, 'placed_order', 1), (3, :d1, 'fulfilled_order', 2))"""
BUILD: list[tuple[str, str]] = [
    ("orders", """
        INSERT INTO orders (id, external_id, status, currency, total, email, placed_at, fulfilled_at, historical, data,
                            status_history, anomalies, derived, delivery_state, created_at, updated_at)
        {series}, {orders_of}
        SELECT k, 'E' || k, CASE WHEN state = 'pending' THEN 'placed' ELSE 'fulfilled' END, 'USD', 59.97,
               'customer' || (k % 50000) || '@example.com', {t:t}, CASE WHEN state <> 'pending' THEN {t:t + 7200} END,
               false,
               @json('{"id": "E' || k || '", "status": "placed", "currency": "USD", "total": 59.97, "customer": '
                  || '{"id": "c-' || (k % 50000) || '", "email": "customer' || (k % 50000) || '@example.com"}, '
                  || '"items": [{"sku": "SKU-' || (k % 997) || '", "name": "Linen shirt", "quantity": 3, '
                  || '"price": 19.99, "total": 59.97}]}')json@,
               @json('[]')json@, @json('[]')json@, @json('{}')json@,
               CASE state WHEN 'pending' THEN 'pending' WHEN 'dead' THEN 'dead' WHEN 'retrying' THEN 'failing'
                          ELSE 'delivered' END, {t:t}, {t:t}
        FROM o"""),
    ("delivery_requests", """
        INSERT INTO delivery_requests (id, destination_id, started_at, duration_ms, method, url, http_status, outcome,
                                       request_body, response_body, event_count)
        {series}, {orders_of}
        SELECT 2 * ((k - 1) / 50) + slot / 2 + 1, destination, {t:t + 1}, 40, 'POST',
               'http://127.0.0.1:9/api/event-bulk-create-jobs', 202, 'delivered', '{"data": {}}', '', 100
        FROM o CROSS JOIN s WHERE (k - 1) % 50 = 0 AND slot % 2 = 0"""),
    ("events", """
        INSERT INTO events (id, destination_id, name, unique_id, order_id, payload, state, sequence, historical,
                            attempts, occurred_at, created_at, next_attempt_at, delivered_at, last_error)
        {series}, {orders_of}
        SELECT 4 * (k - 1) + slot + 1, destination, name, CASE WHEN sequence = 1 THEN 'E' || k
                                                          ELSE 'E' || k || '/fulfilled' END, k,
               @json('{"order": {"id": "E' || k || '", "total": 59.97, "currency": "USD"}, "contact": {"email": '
                  || '"customer' || (k % 50000) || '@example.com"}}')json@,
               state, sequence, false, CASE WHEN state = 'pending' THEN 0 ELSE 1 END, {t:t}, {t:t},
               CASE WHEN state = 'retrying' THEN {t::now + 3600} ELSE {t:t} END,
               CASE WHEN state = 'delivered' THEN {t:t + 2} END,
               CASE WHEN state IN ('dead', 'retrying') THEN 'HTTP 500: upstream error' END
        FROM o CROSS JOIN s"""),
    ("delivery_attempts", """
        INSERT INTO delivery_attempts (id, event_id, destination_id, request_id, attempted_at, outcome, http_status,
                                       duration_ms, message)
        {series}, {orders_of}
        SELECT 4 * (k - 1) + slot + 1, 4 * (k - 1) + slot + 1, destination, 2 * ((k - 1) / 50) + slot / 2 + 1,
               {t:t + 1}, CASE WHEN state = 'delivered' THEN 'delivered' ELSE 'retry' END,
               CASE WHEN state = 'delivered' THEN 202 ELSE 500 END, 40,
               CASE WHEN state <> 'delivered' THEN 'HTTP 500: upstream error' END
        FROM o CROSS JOIN s WHERE state <> 'pending'"""),
]
SERIES = {"postgresql": "WITH g(k) AS (SELECT generate_series(:lo, :hi))",
          "sqlite": "WITH RECURSIVE g(k) AS (SELECT :lo UNION ALL SELECT k + 1 FROM g WHERE k < :hi)"}
TIME = {"postgresql": "to_timestamp({})",  # SQLAlchemy's DateTime text on SQLite, microseconds included:
        "sqlite": "(strftime('%Y-%m-%d %H:%M:%f', {}, 'unixepoch') || '000')"}
JSON = {"postgresql": "({})::jsonb", "sqlite": "({})"}


def build_sql(statement: str, dialect: str) -> str:
    """The statement for `dialect`: {series}, {orders_of}, {t:EXPR} and @json(EXPR)json@ filled in."""
    statement = statement.replace("{series}", SERIES[dialect]).replace("{orders_of}", ORDERS_OF)
    statement = re.sub(r"\{t:(.*?)\}", lambda m: TIME[dialect].format(m.group(1)), statement)
    return re.sub(r"@json\((.*?)\)json@", lambda m: JSON[dialect].format(m.group(1)), statement, flags=re.DOTALL)


def secondary_indexes() -> list:
    """The model's non-unique indexes of events and delivery_attempts: PostgreSQL builds them once after a
    load much faster than it maintains them row by row (the unique constraints stay: they check the data)."""
    from webapp.models import DeliveryAttempt, Event

    return [index for table in (Event.__table__, DeliveryAttempt.__table__) for index in table.indexes
            if not index.unique]


def load(database_url: str, history: History, orders: range) -> dict[str, float]:
    """Write the orders `orders` (and their events, requests, attempts); seconds per table."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    dialect = engine.dialect.name
    params = {"lo": orders.start, "hi": orders.stop - 1, "total": history.total_orders,
              "recent": history.recent_orders, "backlog": BACKLOG_ORDERS, "dead_every": DEAD_EVERY,
              "retrying_every": RETRYING_EVERY, "now": NOW.timestamp(),
              "step": history.step.total_seconds(), "d0": history.destinations[0], "d1": history.destinations[1]}
    seconds: dict[str, float] = {}
    with engine.begin() as connection:
        if dialect == "postgresql":
            connection.execute(sa.text("SET LOCAL synchronous_commit = off"))
            connection.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
            for index in secondary_indexes():
                connection.execute(sa.schema.DropIndex(index))
        else:  # a big page cache for the load only: with the default 2 MB every index insert is a disk read
            connection.exec_driver_sql("PRAGMA cache_size = -1048576")
        for table, statement in BUILD:
            started = time.perf_counter()
            connection.execute(sa.text(build_sql(statement, dialect)), params)
            seconds[table] = time.perf_counter() - started
        if dialect == "postgresql":
            started = time.perf_counter()
            for index in secondary_indexes():
                connection.execute(sa.schema.CreateIndex(index))
            seconds["indexes"] = time.perf_counter() - started
            for table, _ in BUILD:
                connection.execute(sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    if dialect == "postgresql":
        started = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE"))
        seconds["vacuum analyze"] = time.perf_counter() - started
    engine.dispose()
    return seconds


# -- timing --

@dataclass
class Figure:
    name: str
    times_ms: list[float]
    statements: int = 0
    slowest: tuple[float, str] | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms) if self.times_ms else float("nan")


def time_it(name: str, log: StatementLog, action: Callable[[], None], after: Callable[[], None] | None = None,
            warmup: int = 1) -> Figure:
    """Median of REPEAT runs after `warmup`; a slow figure stops after 3 runs once BUDGET_S is spent."""
    times: list[float] = []
    spent = time.perf_counter()
    for run in range(warmup + REPEAT):
        if len(times) >= 3 and time.perf_counter() - spent > BUDGET_S:
            break
        log.entries.clear()
        log.active = True
        started = time.perf_counter()
        action()
        elapsed = (time.perf_counter() - started) * 1000
        log.active = False
        if after is not None:
            after()
        if run >= warmup:
            times.append(elapsed)
    slowest = max(log.entries, key=lambda entry: entry[0]) if log.entries else None
    return Figure(name, times, len(log.entries),
                  (slowest[0] * 1000, " ".join(slowest[1].split())[:160]) if slowest else None)


def measure(database_url: str, instance: Path, history: History, api_key: str) -> list[Figure]:
    import sqlalchemy as sa

    from webapp.extensions import db
    from webapp.models import User
    from webapp.security import create_user
    from workers.delivery.claim import claim_due, release

    app = make_app(database_url, instance)
    log = StatementLog()
    with app.app_context():
        if not db.session.scalar(sa.select(User.id).where(User.email == "bench@example.com")):
            create_user("bench@example.com", PASSWORD, is_admin=True)
        log.attach(db.engine)
        db.session.remove()
    figures = []
    destination = history.destinations[0]
    with app.app_context():
        claimed: list = []

        def claim() -> None:
            claimed[:] = claim_due(destination, CLAIM_BATCH, "bench-claim", 300, datetime.now(UTC))
            assert len(claimed) >= min(CLAIM_BATCH, BACKLOG_ORDERS), len(claimed)

        figures.append(time_it(f"claim_due ({CLAIM_BATCH:,} events)", log, claim, lambda: release(claimed)))
        db.session.remove()
    client = app.test_client()
    log_in(client)
    # An order of the last 30 days with failed events (its page lists attempts and a dead letter).
    order = (history.total_orders - BACKLOG_ORDERS - 1000) // DEAD_EVERY * DEAD_EVERY
    auth = {"Authorization": f"Bearer {api_key}"}
    pages = [(FLOOR, "/api/v1/sources", auth), ("overview, 24 h", "/", {}), ("overview, 7 d", "/?window=7d", {}),
             ("destinations list", "/destinations/", {}), ("destination page", f"/destinations/{destination}", {}),
             ("order page", f"/orders/E{order}", {}),
             ("order API", f"/api/v1/orders/E{order}", auth), ("destinations API", "/api/v1/destinations", auth),
             ("/metrics", "/metrics", {})]
    for name, path, headers in pages:
        def get(path: str = path, headers: dict = headers) -> None:
            response = client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.status_code)
        figures.append(time_it(f"{name} (`{path}`)", log, get))
    dispose(app)
    return figures


def report(backend: str, small: list[Figure], large: list[Figure], builds: list[dict[str, float]]) -> None:
    print_table(f"Event history build, {backend}", ("step", *builds[0].keys()),
                [(f"{size:,} events", *(f"{value:.1f} s" for value in build.values()))
                 for size, build in zip((EVENTS_FROM, EVENTS_TO), builds, strict=True)])
    rows = []
    for before, after in zip(small, large, strict=True):
        grown = after.median / before.median if before.median else float("nan")
        slow = f"{after.slowest[0]:.0f} ms: `{after.slowest[1]}`" if after.slowest else ""
        floor = before.name.startswith(FLOOR)
        rows.append((before.name, f"{before.median:.1f} ms ({len(before.times_ms)})",
                     f"{after.median:.1f} ms ({len(after.times_ms)})", f"{grown:.2f}x",
                     "≈ 1 (the machine's load)" if floor else f"≤ {TARGET_RATIO}x",
                     "—" if floor else "yes" if grown <= TARGET_RATIO else "**no**", after.statements, slow))
    print_table(f"Claim and dashboard at {EVENTS_FROM:,} and {EVENTS_TO:,} events, {backend} (median of the runs in "
                f"brackets)",
                ("what", f"{EVENTS_FROM:,} events", f"{EVENTS_TO:,} events", "ratio", "target", "met",
                 "SQL statements", f"slowest statement at {EVENTS_TO:,}{SLOWEST_NOTE.get(backend, '')}"), rows)


@pytest.mark.benchmark
@pytest.mark.parametrize("backend", backends())
def test_event_scale(backend: str) -> None:
    from webapp.security import create_api_key

    flushed_redis()
    with scratch_folder("bench-event-scale-") as folder, \
            throwaway_database(backend, folder, "event_scale") as database_url:
        instance = folder / "instance"
        app = make_app(database_url, instance)
        _, destinations = create_destinations(app, "http://127.0.0.1:9", ["klaviyo", "esputnik"])
        with app.app_context():
            _, api_key = create_api_key("bench scale")
        dispose(app)
        per = ATTEMPTS_PER_REQUEST // 2  # whole request blocks in each build: request ids never overlap
        total = EVENTS_TO // EVENTS_PER_ORDER // per * per
        history = History(total, EVENTS_FROM // EVENTS_PER_ORDER // per * per, (destinations[0], destinations[1]))
        recent = range(total - history.recent_orders + 1, total + 1)
        builds = [load(database_url, history, recent)]
        small = measure(database_url, instance, history, api_key)
        builds.append(load(database_url, history, range(1, recent.start)))
        large = measure(database_url, instance, history, api_key)
    report(backend, small, large, builds)
