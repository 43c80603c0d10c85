"""Retention against real deliveries: what goes, what stays, and that no total or counter moves."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import both_databases
from tests.factories import make_order
from webapp.models import Contact, ContactLtv, DeliveryAttempt, DeliveryRequest, Event, utcnow
from webapp.services.contacts.insights import events_by_platform
from webapp.services.delivery.queries import event_counts
from webapp.services.delivery.retention import prune
from webapp.services.overview.metrics import render_metrics
from webapp.services.overview.stats import window_stats
from webapp.services.platform.time_buckets import make_window

COUNTER_LINE = re.compile(r"^shoprelay_(delivery_attempts_total|delivery_latency_seconds_\w+|events)\{")


def _deliver_orders(api, fake, make_destination, worker, orders: int = 4) -> dict:
    dest = make_destination("webhook")
    fake.reject_next(1, detail="bad order", platform="webhook")
    for n in range(orders):
        response = api.post("/api/v1/orders", json=make_order(
            id=f"o-{n}", customer={"id": "c-1", "email": "ann@example.com"}))
        assert response.status_code in (200, 201, 202), response.get_json()
    worker(["delivery"])
    return dest


def _age_everything(db, days: float) -> None:
    """Move every stored time back by `days` (latencies stay the same)."""
    shift = timedelta(days=days)
    for model, columns in ((Event, ("created_at", "delivered_at", "occurred_at")),
                           (DeliveryAttempt, ("attempted_at",)), (DeliveryRequest, ("started_at",))):
        for row in db.session.scalars(sa.select(model)).all():
            for column in columns:
                if getattr(row, column) is not None:
                    setattr(row, column, getattr(row, column) - shift)
    db.session.commit()


def _counter_lines() -> list[str]:
    return sorted(line for line in render_metrics().splitlines() if COUNTER_LINE.match(line))


def _totals(db, destination_id: int) -> dict:
    db.session.expire_all()
    stats = window_stats(make_window("30d"))
    contact = db.session.scalars(sa.select(Contact)).one()
    return {
        "events": stats.events, "latency_avg": stats.latency_avg,
        "per_destination": {d.id: d.counts for d in stats.destinations},
        "orders": stats.orders, "revenue": stats.revenue,
        "destination_counts": event_counts([destination_id]),
        "contact": [(p.destination.id, p.counts) for p in events_by_platform([contact.id])],
        "ltv": sorted((row.currency, row.placed, row.orders, row.refunded) for row in
                      db.session.scalars(sa.select(ContactLtv)).all()),
        "ltv_primary": contact.ltv_primary, "orders_count": contact.orders_count,
    }


@both_databases
def test_prune_removes_old_delivered_keeps_failures_and_every_total(app, api, db, fake, make_destination,
                                                                     worker):
    app.config.update(RETENTION_BODY_DAYS=2, RETENTION_ROW_DAYS=5)
    dest = _deliver_orders(api, fake, make_destination, worker)
    states = dict(db.session.execute(sa.select(Event.state, sa.func.count()).group_by(Event.state)).all())
    assert states.get("rejected") == 1 and states.get("delivered", 0) >= 4, states
    _age_everything(db, 10)
    before, counters = _totals(db, dest["id"]), _counter_lines()
    assert any("delivery_attempts_total" in line for line in counters)

    result = prune()

    db.session.expire_all()
    left = db.session.scalars(sa.select(Event)).all()
    assert [e.state for e in left] == ["rejected"]  # failures stay until resolved, with their history
    assert result["events_deleted"] == states["delivered"] + states.get("skipped", 0)
    kept_attempts = db.session.scalars(sa.select(DeliveryAttempt)).all()
    assert kept_attempts and {a.event_id for a in kept_attempts} == {left[0].id}
    requests = db.session.scalars(sa.select(DeliveryRequest)).all()
    assert {r.id for r in requests} == {a.request_id for a in kept_attempts}
    assert left[0].payload  # a rejected event keeps what a retry must send
    after = _totals(db, dest["id"])
    # SQLite's julianday() keeps milliseconds; the roll-up holds the exact seconds.
    assert after.pop("latency_avg") == pytest.approx(before.pop("latency_avg"), abs=2e-3)
    assert after == before
    assert _counter_lines() == counters
    assert prune()["events_deleted"] == 0  # a second pass changes nothing
    assert {k: v for k, v in _totals(db, dest["id"]).items() if k != "latency_avg"} == before


@both_databases
def test_bodies_go_after_body_days_rows_stay_until_row_days(app, api, db, fake, make_destination, worker):
    app.config.update(RETENTION_BODY_DAYS=2, RETENTION_ROW_DAYS=5)
    _deliver_orders(api, fake, make_destination, worker, orders=2)
    _age_everything(db, 3)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Event))

    result = prune()

    db.session.expire_all()
    events = db.session.scalars(sa.select(Event)).all()
    assert len(events) == total and result["events_deleted"] == 0
    assert all(e.payload == {} for e in events if e.state in ("delivered", "skipped"))
    assert all(e.payload for e in events if e.state == "rejected")
    for request in db.session.scalars(sa.select(DeliveryRequest)).all():
        pruned = request.request_body is None and request.response_body is None
        assert pruned == (request.outcome == "delivered"), request.outcome
    assert result["payloads_pruned"] >= 2 and prune()["payloads_pruned"] == 0  # the mark: not walked twice


@both_databases
def test_prune_works_in_short_transactions(app, db):
    """Thousands of old delivered events go in chunks, no transaction holding the write lock for long."""
    from webapp.models import Destination

    destination = Destination(name="d", kind="webhook", credentials_encrypted="x")
    db.session.add(destination)
    db.session.commit()
    old = utcnow() - timedelta(days=400)
    db.session.execute(sa.insert(Event), [
        {"destination_id": destination.id, "name": "placed_order", "unique_id": str(n), "payload": {"n": n},
         "state": "delivered", "created_at": old, "occurred_at": old, "next_attempt_at": old,
         "delivered_at": old + timedelta(seconds=1)} for n in range(3000)])
    db.session.commit()
    durations: list[float] = []
    started: list[float] = []

    def begin(conn):  # noqa: ANN001
        started.append(time.perf_counter())

    def commit(conn):  # noqa: ANN001
        durations.append(time.perf_counter() - started[-1])

    sa.event.listen(db.engine, "begin", begin)
    sa.event.listen(db.engine, "commit", commit)
    try:
        result = prune(chunk=500)
    finally:
        sa.event.remove(db.engine, "begin", begin)
        sa.event.remove(db.engine, "commit", commit)
    assert result["events_deleted"] == 3000 and result["chunks"] >= 6
    durations.sort()
    # Milliseconds each; a generous bound for the slowest (a busy test machine), none near a second.
    assert durations[len(durations) // 2] < 0.2 and durations[-1] < 1.0, durations


def _statements(db, call) -> list[tuple[str, object]]:
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        seen.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", capture)
    return seen


BIG_TABLES = ("events", "delivery_attempts", "delivery_requests")


def _nodes(plan: dict):  # noqa: ANN201
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


@pytest.mark.parametrize("app", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
                         indirect=True)
def test_metrics_reads_no_whole_table(app, api, db, fake, make_destination, worker):
    _deliver_orders(api, fake, make_destination, worker, orders=2)
    statements = [(s, p) for s, p in _statements(db, render_metrics) if s.lstrip().upper().startswith("SELECT")]
    assert statements
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        postgres = db.engine.dialect.name == "postgresql"
        if postgres:  # a seq scan chosen even so means no index could serve the query
            cursor.execute("SET enable_seqscan = off")
        for statement, parameters in statements:
            if postgres:
                cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
                for node in _nodes(cursor.fetchone()[0][0]["Plan"]):
                    if node.get("Relation Name") in BIG_TABLES:  # every read of a big table is a range
                        # A min()/max() may walk an ordered index from its end under a Limit (PostgreSQL's
                        # min/max plan): it stops at the first row that matches, so it reads a range too.
                        ordered_end = node["Node Type"] in ("Index Scan", "Index Only Scan") and "min(" in statement
                        assert node["Node Type"] != "Seq Scan" and (
                            "Index Cond" in node or node["Node Type"] == "Bitmap Heap Scan" or ordered_end), (
                            statement, node)
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                plan = "\n".join(str(row[3]) for row in cursor.fetchall())
                for table in BIG_TABLES:
                    assert not re.search(rf"\bSCAN {table}\b", plan), (statement, plan)
    finally:
        raw.close()
