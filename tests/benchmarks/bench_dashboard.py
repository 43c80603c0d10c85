"""Issue 7: dashboard server time with 1,000,000 orders, 200,000 contacts and 3,000,000 delivery attempts.

The data is generated inside PostgreSQL with INSERT ... SELECT generate_series (orders placed evenly over
the last year, 3 lines each, 2 Placed Order events per order for 2 destinations, every event attempted
once and every second event twice, one logged request per 10 attempts). Event payloads and request bodies
are kept short: no page measured here reads them. Pages are timed through the Flask test client, logged in;
every SQL statement is timed too, and the slowest one of each slow page is shown with EXPLAIN ANALYZE.
The contacts page is timed twice: as served (its summary cached for a minute) and with the cached summary
deleted before each request (the worst case, once a minute).
Target: p95 under 150 ms for each page.

    SHOPRELAY_BENCH_ORDERS=20000 python -m pytest tests/benchmarks/bench_dashboard.py -m benchmark -s

Environment: SHOPRELAY_BENCH_ORDERS (default 1000000; contacts = orders / 5, attempts = 3 x orders),
SHOPRELAY_BENCH_DASHBOARD_REPEAT (timed requests per page, default 20),
SHOPRELAY_BENCH_DASHBOARD_DB (an existing database on the benchmark server, e.g. one kept with
SHOPRELAY_BENCH_KEEP=1: skips the build).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks.bench_support import (
    REDIS_URL,
    create_destinations,
    dispose,
    env_int,
    flushed_redis,
    make_app,
    percentile,
    postgres_url,
    print_table,
    scratch_folder,
    throwaway_database,
)

ORDERS = env_int("SHOPRELAY_BENCH_ORDERS", 1_000_000)
REPEAT = env_int("SHOPRELAY_BENCH_DASHBOARD_REPEAT", 20)
EXISTING_DB = os.environ.get("SHOPRELAY_BENCH_DASHBOARD_DB", "")
TARGET_P95_MS = 150.0
PASSWORD = "correct horse battery"

# One statement per step; :n = orders, :c = contacts. Orders are spaced so n of them span 365 days.
BUILD_STEPS: list[tuple[str, str]] = [
    ("contacts", """
        INSERT INTO contacts (id, customer_id, email, phone, first_name, last_name, accepts_marketing,
                              address, orders_count, ltv_primary, ltv_primary_currency, rfm_segment,
                              rfm_recency, rfm_frequency, rfm_monetary, created_at, updated_at)
        SELECT g, 'c-' || g, 'customer' || g || '@example.com', '+1555' || lpad(g::text, 7, '0'),
               (ARRAY['Ann','John','Maria','Li','Olga','Sam'])[1 + g % 6],
               (ARRAY['Smith','Jones','Garcia','Chen','Ivanova','Brown'])[1 + (g / 6) % 6], g % 3 > 0,
               jsonb_build_object('city', 'Boston', 'country_code', 'US', 'zip', '02110'), 0, 0, 'USD',
               (ARRAY['Champions','Loyal','At risk','Hibernating','New','Promising'])[1 + g % 6],
               1 + g % 5, 1 + (g / 5) % 5, 1 + (g / 25) % 5, now() - interval '400 days', now()
        FROM generate_series(1, :c) AS g"""),
    ("orders", """
        INSERT INTO orders (id, external_id, contact_id, status, currency, total, subtotal, tax, shipping, email,
                            placed_at, fulfilled_at, historical, data, status_history, anomalies, derived,
                            delivery_state, created_at, updated_at)
        SELECT g, 'O' || g, 1 + (g::bigint * 7919) % :c,
               CASE WHEN g % 50 = 0 THEN 'cancelled' WHEN g % 3 = 0 THEN 'fulfilled' ELSE 'placed' END, 'USD',
               t.total, t.total, 0, 0, 'customer' || (1 + (g::bigint * 7919) % :c) || '@example.com', t.placed,
               CASE WHEN g % 3 = 0 THEN t.placed + interval '2 days' END, false,
               jsonb_build_object('id', 'O' || g, 'status', 'placed', 'currency', 'USD', 'total', t.total,
                   'placed_at', to_char(t.placed, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   'customer', jsonb_build_object('id', 'c-' || (1 + (g::bigint * 7919) % :c),
                       'email', 'customer' || (1 + (g::bigint * 7919) % :c) || '@example.com'),
                   'items', jsonb_build_array(
                       jsonb_build_object('sku', 'SKU-' || g % 997, 'name', 'Linen shirt', 'quantity', 1,
                                          'price', 19.99, 'total', 19.99),
                       jsonb_build_object('sku', 'SKU-' || g % 991, 'name', 'Oak bowl', 'quantity', 2,
                                          'price', 9.99, 'total', 19.98),
                       jsonb_build_object('sku', 'SKU-' || g % 983, 'name', 'Soft throw', 'quantity', 1,
                                          'price', (g % 40) + 0.5, 'total', (g % 40) + 0.5))),
               jsonb_build_array(jsonb_build_object('status', 'placed', 'at', t.placed, 'historical', false)),
               '[]'::jsonb, jsonb_build_object('status', 'placed'),
               CASE WHEN g % 500 = 0 THEN 'dead' WHEN g % 97 = 0 THEN 'failing' ELSE 'delivered' END,
               t.placed + interval '2 seconds', t.placed + interval '2 seconds'
        FROM generate_series(1, :n) AS g,
             LATERAL (SELECT now() - (:n - g) * (interval '365 days' / :n) AS placed,
                             round((39.97 + (g % 40) + 0.5)::numeric, 2) AS total) AS t"""),
    ("order_lines", """
        INSERT INTO order_lines (order_id, line_key, product_id, sku, name, quantity, price, total, categories)
        SELECT o, 'SKU-' || k || '-' || o % 997, 'P' || k, 'SKU-' || k || '-' || o % 997,
               (ARRAY['Linen shirt','Oak bowl','Soft throw'])[k], 1, 19.99, 19.99, '["Home"]'::jsonb
        FROM generate_series(1, :n) AS o, generate_series(1, 3) AS k"""),
    ("contact aggregates", """
        UPDATE contacts SET orders_count = a.cnt, first_order_at = a.first, last_order_at = a.last,
                            ltv_primary = a.value
        FROM (SELECT contact_id, count(*) AS cnt, min(placed_at) AS first, max(placed_at) AS last,
                     coalesce(sum(total) FILTER (WHERE status <> 'cancelled'), 0) AS value
              FROM orders GROUP BY contact_id) AS a
        WHERE contacts.id = a.contact_id"""),
    ("contact_ltv", """
        INSERT INTO contact_ltv (contact_id, currency, placed, cancelled, refunded, orders, fulfilled_orders,
                                 fulfilled_value)
        SELECT contact_id, 'USD', sum(total), coalesce(sum(total) FILTER (WHERE status = 'cancelled'), 0), 0,
               count(*), count(*) FILTER (WHERE status = 'fulfilled'),
               coalesce(sum(total) FILTER (WHERE status = 'fulfilled'), 0)
        FROM orders GROUP BY contact_id"""),
    ("events", """
        INSERT INTO events (id, destination_id, name, unique_id, order_id, contact_id, payload, state, sequence,
                            historical, attempts, occurred_at, created_at, next_attempt_at, delivered_at,
                            last_error)
        SELECT 2 * (o.id - 1) + d.k, d.id, 'placed_order', o.external_id, o.id, o.contact_id,
               jsonb_build_object('order', jsonb_build_object('id', o.external_id)), s.state, 1, false,
               CASE WHEN (2 * (o.id - 1) + d.k) % 2 = 0 THEN 2 ELSE 1 END, o.placed_at, o.created_at,
               o.created_at, CASE WHEN s.state = 'delivered' THEN o.created_at + interval '1 second' END,
               CASE WHEN s.state <> 'delivered' THEN 'HTTP 500: upstream error' END
        FROM orders AS o
        CROSS JOIN (SELECT id, row_number() OVER (ORDER BY id) AS k FROM destinations) AS d,
        LATERAL (SELECT CASE WHEN o.delivery_state = 'dead' THEN 'dead'
                             WHEN o.delivery_state = 'failing' THEN 'retrying' ELSE 'delivered' END AS state) AS s"""),
    ("delivery_requests", """
        INSERT INTO delivery_requests (id, destination_id, started_at, duration_ms, method, url, http_status,
                                       outcome, request_body, response_body, event_count)
        SELECT r, 1 + r % 2, now() - (:attempts / 10 - r) * (interval '365 days' / (:attempts / 10)), 40, 'POST',
               'http://127.0.0.1:9/klaviyo/api/event-bulk-create-jobs', 202, 'delivered',
               '{"data": {"type": "event-bulk-create-job"}}', '', 10
        FROM generate_series(1, :attempts / 10) AS r"""),
    ("delivery_attempts", """
        INSERT INTO delivery_attempts (id, event_id, destination_id, request_id, attempted_at, outcome,
                                       http_status, duration_ms, message)
        SELECT a.n, e.id, e.destination_id, 1 + (a.n - 1) / 10,
               e.created_at + (a.try - 1) * interval '1 minute',
               CASE WHEN a.try < e.attempts OR e.state <> 'delivered' THEN 'retry' ELSE 'delivered' END,
               CASE WHEN a.try < e.attempts OR e.state <> 'delivered' THEN 500 ELSE 202 END, 40,
               CASE WHEN a.try < e.attempts OR e.state <> 'delivered' THEN 'HTTP 500: upstream error' END
        FROM events AS e, LATERAL (SELECT t AS try, CASE WHEN t = 1 THEN e.id ELSE :events + e.id / 2 END AS n
                                   FROM generate_series(1, e.attempts) AS t) AS a"""),
]
SEQUENCES = ("contacts", "orders", "events", "delivery_requests", "delivery_attempts")


def build_dataset(database_url: str, orders: int) -> dict[str, float]:
    """Fill an empty schema (destinations already created); returns seconds per step."""
    import sqlalchemy as sa

    params = {"n": orders, "c": max(1, orders // 5), "events": 2 * orders, "attempts": 3 * orders}
    engine = sa.create_engine(database_url)
    seconds = {}
    with engine.begin() as connection:
        connection.execute(sa.text("SET LOCAL synchronous_commit = off"))
        connection.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
        for name, statement in BUILD_STEPS:
            started = time.perf_counter()
            used = {key: value for key, value in params.items() if f":{key}" in statement}
            connection.execute(sa.text(statement), used)
            seconds[name] = time.perf_counter() - started
        for table in SEQUENCES:
            connection.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))
    seconds["vacuum analyze"] = time.perf_counter() - started
    engine.dispose()
    return seconds


# -- timing pages --

@dataclass
class StatementLog:
    """Every statement the app runs while `active`, with its duration (for the slowest-query report)."""

    active: bool = False
    entries: list[tuple[float, str, Any]] = field(default_factory=list)

    def attach(self, engine: Any) -> None:
        import sqlalchemy as sa

        @sa.event.listens_for(engine, "before_cursor_execute")
        def _before(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
            conn.info.setdefault("bench_started", []).append(time.perf_counter())

        @sa.event.listens_for(engine, "after_cursor_execute")
        def _after(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
            started = conn.info["bench_started"].pop()
            if self.active:
                self.entries.append((time.perf_counter() - started, statement, parameters))


@dataclass
class PageResult:
    name: str
    path: str
    status: int
    times_ms: list[float]
    queries: int = 0
    slowest: tuple[float, str, Any] | None = None


def log_in(client: Any) -> None:
    html = client.get("/login").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html)
    assert match, "no CSRF token on the login page"
    response = client.post("/login", data={"email": "bench@example.com", "password": PASSWORD,
                                           "csrf_token": match.group(1)})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def time_page(client: Any, log: StatementLog, name: str, path: str,
              before_each: Callable[[], None] | None = None) -> PageResult:
    first = client.get(path)
    if first.status_code != 200:
        return PageResult(name, path, first.status_code, [])
    client.get(path)
    times = []
    for _ in range(REPEAT):
        if before_each is not None:
            before_each()
        log.entries.clear()
        log.active = True
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        log.active = False
        assert response.status_code == 200, (path, response.status_code)
    slowest = max(log.entries, key=lambda entry: entry[0]) if log.entries else None
    return PageResult(name, path, 200, times, len(log.entries), slowest)


def forget_contacts_summary() -> None:
    from redis import Redis

    from webapp.services.contacts.insights import SUMMARY_KEY

    with Redis.from_url(REDIS_URL) as connection:
        connection.delete(SUMMARY_KEY)


def next_link(html: str) -> str | None:
    match = re.search(r'href="(/orders/\?[^"]*after=\d+[^"]*)"', html)
    return match.group(1).replace("&amp;", "&") if match else None


def explain(engine: Any, statement: str, parameters: Any) -> str:
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        return "\n".join(row[0] for row in cursor.fetchall())
    finally:
        connection.rollback()
        connection.close()


def measure_pages(database_url: str, instance: Path) -> list[PageResult]:
    import sqlalchemy as sa

    from webapp.extensions import db
    from webapp.models import User
    from webapp.security import create_user

    app = make_app(database_url, instance)
    log = StatementLog()
    with app.app_context():
        if not db.session.scalar(sa.select(User.id).where(User.email == "bench@example.com")):  # a kept database
            create_user("bench@example.com", PASSWORD, is_admin=True)
        log.attach(db.engine)
        db.session.remove()
    client = app.test_client()
    log_in(client)
    results = [time_page(client, log, "overview", "/")]
    results.append(time_page(client, log, "orders list, first page", "/orders/"))
    deep, link = "/orders/?after=1000", next_link(client.get("/orders/").get_data(as_text=True))
    for _ in range(5):  # the keyset "next" link must lead somewhere; the deep cursor sits near the end
        if link is None:
            break
        link = next_link(client.get(link).get_data(as_text=True))
    results.append(time_page(client, log, "orders list, deep page", deep))
    results.append(time_page(client, log, "order page", f"/orders/O{max(1, ORDERS - 500)}"))
    results.append(time_page(client, log, "contacts by LTV", "/contacts/?sort=ltv&dir=desc"))
    # The worst case: the summary above the list is recounted (its one-minute cache just expired).
    results.append(time_page(client, log, "contacts by LTV, summary not cached", "/contacts/?sort=ltv&dir=desc",
                             before_each=forget_contacts_summary))
    report(results, app)
    dispose(app)
    return results


def report(results: list[PageResult], app: Any) -> None:
    from webapp.extensions import db

    rows = []
    for result in results:
        if result.status == 404:
            rows.append((result.name, result.path, "page missing", "", "", "", "", ""))
            continue
        if result.status != 200:
            rows.append((result.name, result.path, f"HTTP {result.status}", "", "", "", "", ""))
            continue
        p50, p95 = percentile(result.times_ms, 0.5), percentile(result.times_ms, 0.95)
        slow = f"{result.slowest[0] * 1000:.0f} ms" if result.slowest else ""
        rows.append((result.name, result.path, f"{p50:.0f} ms", f"{p95:.0f} ms", result.queries, slow,
                     f"< {TARGET_P95_MS:.0f} ms", "yes" if p95 < TARGET_P95_MS else "**no**"))
    print_table(f"Dashboard server time, PostgreSQL, {ORDERS:,} orders ({REPEAT} timed requests per page)",
                ("page", "path", "p50", "p95", "SQL statements", "slowest statement", "target p95", "met"), rows)
    with app.app_context():
        for result in results:
            if result.slowest is None or percentile(result.times_ms, 0.95) < TARGET_P95_MS:
                continue
            seconds, statement, parameters = result.slowest
            print(f"\n#### Slowest statement on {result.name} ({seconds * 1000:.0f} ms)\n\n```sql\n{statement}\n"
                  f"-- {parameters}\n```\n\n```\n{explain(db.engine, statement, parameters)}\n```", flush=True)


@pytest.mark.benchmark
def test_dashboard_pages() -> None:
    flushed_redis()
    with scratch_folder("bench-dashboard-") as folder:
        if EXISTING_DB:
            measure_pages(postgres_url(EXISTING_DB), folder / "instance")
            return
        with throwaway_database("postgresql", folder, "dashboard") as database_url:
            app = make_app(database_url, folder / "instance")
            create_destinations(app, "http://127.0.0.1:9", ["klaviyo", "esputnik"])
            steps = build_dataset(database_url, ORDERS)
            print_table(f"Dataset build, {ORDERS:,} orders", ("step", "seconds"),
                        [(name, f"{value:.1f}") for name, value in steps.items()])
            results = measure_pages(database_url, folder / "instance")
    assert any(result.status == 200 for result in results), "no dashboard page answered"
