"""Overview page: the attention list (one test per condition), KPI numbers checked by hand, windows."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rq import Worker
from rq.cron import CronScheduler
from rq.cron_scheduler_registry import get_registry_key

from tests.conftest import REDIS_URL, both_databases
from webapp.models import Event, Feed, FeedBuild, FeedFetch, Order, Source, SyncRun
from webapp.schemas.destinations import DestinationCreate
from webapp.services.delivery.destinations import create_destination, pause_destination
from webapp.services.overview.revenue_by_day import revenue_by_day
from webapp.services.overview.stats import first_order_id_since, window_stats
from webapp.services.platform.time_buckets import make_window


def _now() -> datetime:
    """The test's own clock: a module-level one is a quarter of an hour old by the end of the suite."""
    return datetime.now(UTC)


def _destination(name: str = "Klaviyo main"):  # noqa: ANN202
    return create_destination(DestinationCreate(
        name=name, kind="webhook", credentials={"url": "http://127.0.0.1:9/hook", "secret": "hook-secret-1"}))


def _event(db, destination, state: str, n: int, *, created: datetime | None = None,  # noqa: ANN001
           delivered_after: float | None = None, due: datetime | None = None) -> Event:
    created = created or _now()
    event = Event(destination_id=destination.id, name="placed_order", unique_id=f"{state}-{n}", payload={},
                  state=state, created_at=created, occurred_at=created, next_attempt_at=due or created,
                  delivered_at=created + timedelta(seconds=delivered_after) if delivered_after is not None else None)
    db.session.add(event)
    return event


def _order(db, n: int, total: str, *, currency: str = "USD", status: str = "placed", placed: datetime | None = None,
           created: datetime | None = None) -> Order:  # noqa: ANN001
    order = Order(external_id=f"o-{n}", status=status, currency=currency, total=Decimal(total),
                  placed_at=placed or _now(), data={}, created_at=created or _now())
    db.session.add(order)
    return order


def _attention(html: str) -> str:
    match = re.search(r'<section class="card attention".*?</section>', html, re.S)
    return match.group(0) if match else ""


def _page(client, path: str = "/") -> str:  # noqa: ANN001
    response = client.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_empty_instance_shows_the_welcome_steps(logged_in):
    html = _page(logged_in)
    assert "Welcome to shoprelay" in html
    for link in ('href="/sources/"', 'href="/feeds/"', 'href="/destinations/"', 'href="/settings/#api-keys"'):
        assert link in html
    assert 'id="window-stats"' not in html  # nothing to chart yet
    # No worker runs in the test session: that is the first thing to fix.
    assert "No worker is running" in _attention(html)
    assert html.index("Needs attention") < html.index("Welcome to shoprelay")


def test_paused_destination_is_listed_first_with_its_reason(logged_in, db):
    destination = _destination()
    pause_destination(destination, reason="401 from the platform: the API key was revoked")
    attention = _attention(_page(logged_in))
    assert "Klaviyo main is paused" in attention
    assert "the API key was revoked" in attention
    assert f'href="/destinations/{destination.id}"' in attention


def test_dead_and_rejected_events_are_listed_with_counts(logged_in, db):
    destination = _destination()
    for n in range(3):
        _event(db, destination, "dead", n)
    _event(db, destination, "rejected", 9)
    db.session.commit()
    attention = _attention(_page(logged_in))
    assert "Klaviyo main has undelivered events" in attention
    assert "Not delivered: 3 dead, 1 rejected." in attention


def test_failed_and_held_sync_runs_are_listed(logged_in, db):
    broken, held = Source(name="Main export", kind="url"), Source(name="Outlet", kind="url")
    db.session.add_all([broken, held])
    db.session.flush()
    db.session.add_all([SyncRun(source_id=broken.id, status="succeeded"),
                        SyncRun(source_id=broken.id, status="failed", error="HTTP 404 from the export URL"),
                        SyncRun(source_id=held.id, status="held", error="would remove 80% of products")])
    db.session.commit()
    attention = _attention(_page(logged_in))
    assert "Last sync of Main export failed" in attention and "HTTP 404 from the export URL" in attention
    assert f'href="/sources/{broken.id}"' in attention
    assert "Last sync of Outlet was held back" in attention


def test_a_source_whose_latest_sync_succeeded_is_not_listed(logged_in, db):
    source = Source(name="Main export", kind="url")
    db.session.add(source)
    db.session.flush()
    db.session.add_all([SyncRun(source_id=source.id, status="failed", error="old failure"),
                        SyncRun(source_id=source.id, status="succeeded")])
    db.session.commit()
    assert "Main export" not in _attention(_page(logged_in))


def test_failed_feed_build_and_unfetched_feed_are_listed(logged_in, db):
    failing = Feed(name="Klaviyo catalog", slug="klaviyo", format="xml", token="t1")
    unfetched = Feed(name="Sendlane feed", slug="sendlane", format="json", token="t2")
    fetched = Feed(name="Fresh feed", slug="fresh", format="csv", token="t3")
    db.session.add_all([failing, unfetched, fetched])
    db.session.flush()
    db.session.add(FeedBuild(feed_id=failing.id, status="failed", error="OSError: disk full"))
    published = FeedBuild(feed_id=unfetched.id, status="succeeded", finished_at=_now() - timedelta(hours=30))
    fresh = FeedBuild(feed_id=fetched.id, status="succeeded", finished_at=_now() - timedelta(hours=30))
    db.session.add_all([published, fresh])
    db.session.flush()
    unfetched.published_build_id, fetched.published_build_id = published.id, fresh.id
    db.session.add(FeedFetch(feed_id=fetched.id, path="/x", status=200, user_agent="Klaviyo/1.0",
                             fetched_at=_now() - timedelta(hours=2)))
    db.session.add(FeedFetch(feed_id=unfetched.id, path="/x", status=401, user_agent="Sendlane",
                             fetched_at=_now() - timedelta(hours=2)))  # refused: does not count as fetched
    db.session.commit()
    html = _page(logged_in)
    attention = _attention(html)
    assert "Last build of Klaviyo catalog failed" in attention and "disk full" in attention
    assert f'href="/feeds/{failing.id}"' in attention
    assert "No platform has fetched Sendlane feed" in attention
    assert "Fresh feed" not in attention
    assert "Klaviyo/1.0" in html  # catalog freshness shows who fetched it


def test_overdue_pending_events_are_listed(logged_in, db):
    destination = _destination()
    _event(db, destination, "pending", 1, created=_now() - timedelta(minutes=40))
    db.session.commit()
    attention = _attention(_page(logged_in))
    assert "Klaviyo main is falling behind" in attention
    assert re.search(r"waited 4\d min", attention)


def test_a_recent_pending_event_is_not_a_problem(logged_in, db):
    destination = _destination()
    _event(db, destination, "pending", 1, created=_now() - timedelta(minutes=2))
    db.session.commit()
    assert "falling behind" not in _attention(_page(logged_in))


def test_live_worker_and_scheduler_clear_their_items(logged_in, redis):
    from workers.queue import connect, get_queue

    conn = connect(REDIS_URL)
    worker = Worker([get_queue("delivery", conn)], connection=conn, name="test-worker")
    worker.register_birth()
    scheduler = CronScheduler(connection=conn, name="test-scheduler")
    scheduler.register_birth()
    scheduler.heartbeat()
    try:
        html = _page(logged_in)
        attention = _attention(html)
        assert "No worker is running" not in attention
        assert "scheduler is not running" not in attention
        assert "test-worker" in html and "1 alive" in html
        # A scheduler that stopped beating three minutes ago is reported as down.
        redis.zadd(get_registry_key(), {"test-scheduler": time.time() - 180})
        assert "Its last heartbeat was 3 min ago" in _attention(_page(logged_in))
    finally:
        worker.register_death()


def test_redis_down_still_renders_with_an_attention_item(app, logged_in):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    attention = _attention(_page(logged_in))
    assert "Redis is unreachable" in attention
    assert "No worker is running" not in attention  # unknown, not claimed


@both_databases
def test_kpis_match_a_hand_checked_fixture(app, db):
    destination = _destination()
    # Stored in time order (ids grow with created_at, as they do in production).
    _order(db, 5, "7.25", placed=_now() - timedelta(days=3), created=_now() - timedelta(days=3))  # 7 d only
    _order(db, 1, "10.00")
    _order(db, 2, "20.50", placed=_now() - timedelta(hours=1))
    _order(db, 3, "99.00", status="pending")                      # not revenue
    _order(db, 4, "5.00", currency="EUR", status="cancelled")      # placed, counts (gross)
    for n in range(1, 11):  # delivered after 1..10 s: p50 = 5.5 s, p95 = 9.55 s
        _event(db, destination, "delivered", n, created=_now() - timedelta(minutes=30), delivered_after=n)
    _event(db, destination, "delivered", 99, created=_now() - timedelta(days=3), delivered_after=100)
    for n, state in enumerate(("retrying", "retrying", "rejected", "dead", "pending", "skipped")):
        _event(db, destination, state, n)
    db.session.commit()

    day = window_stats(make_window("24h"))
    assert day.orders_total == 4
    assert day.revenue_totals() == [("USD", Decimal("30.50")), ("EUR", Decimal("5.00"))]
    assert day.events_total("delivered") == 10
    assert day.events_total("failing") == 3
    assert day.events_total("dead") == 1
    assert day.latency.p50 == pytest.approx(5.5, abs=0.01)
    assert day.latency.p95 == pytest.approx(9.55, abs=0.01)
    [row] = day.destinations
    assert row.counts == {"delivered": 10, "failing": 3, "dead": 1, "pending": 1}
    assert row.success_rate == pytest.approx(10 / 14)
    assert sum(day.orders) == 4 and len(day.orders) == 24

    week = window_stats(make_window("7d"))
    assert week.orders_total == 5
    assert dict(week.revenue_totals())["USD"] == Decimal("37.75")
    assert week.events_total("delivered") == 11
    # 1..10 s and the 100 s one from three days ago: p50 = 6 s, p95 = 10 + (100 - 10) * 0.5 = 55 s.
    assert week.latency.p50 == pytest.approx(6, abs=0.01)
    assert week.latency.p95 == pytest.approx(55, abs=0.01)
    assert len(week.orders) == 7


@both_databases
def test_first_order_id_since_finds_the_window_boundary(app, db):
    for n in range(1, 21):
        _order(db, n, "1.00", created=_now() - timedelta(hours=21 - n))
    db.session.commit()
    ids = {o.external_id: o.id for o in db.session.query(Order)}
    assert first_order_id_since(_now() - timedelta(hours=5, minutes=30)) == ids["o-16"]
    assert first_order_id_since(_now() + timedelta(hours=1)) is None
    assert first_order_id_since(_now() - timedelta(days=30)) == ids["o-1"]


def test_overview_with_data_renders_cards_and_charts(logged_in, db):
    destination = _destination()
    _order(db, 1, "10.00")
    _order(db, 2, "12.00", currency="EUR", placed=_now() - timedelta(days=2))
    _event(db, destination, "delivered", 1, delivered_after=2)
    _event(db, destination, "dead", 2)
    db.session.commit()
    html = _page(logged_in)
    assert "Welcome to shoprelay" not in html
    assert "Finish setting up" in html  # no source or feed yet
    assert 'id="window-stats"' in html and "Orders ingested" in html
    assert html.count("<svg") >= 8  # six sparklines, destination bars, revenue lines
    assert "Delivery success by destination" in html and "Revenue by day" in html
    assert "<summary>Numbers</summary>" in html and "10.00" in html
    assert "No sources yet" in html and "No feeds yet" in html
    assert 'aria-current="true">Last 24 h' in html


def test_window_toggle_returns_only_the_fragment(logged_in, db):
    destination = _destination()
    _order(db, 1, "10.00", placed=_now() - timedelta(days=3), created=_now() - timedelta(days=3))
    _event(db, destination, "delivered", 1, created=_now() - timedelta(days=3), delivered_after=1)
    db.session.commit()
    response = logged_in.get("/?window=7d", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and html.lstrip().startswith(("{#", "<section"))
    assert 'aria-current="true">Last 7 days' in html
    assert re.search(r'Orders ingested</div>\s*<div class="value">1<', html)
    day = logged_in.get("/?window=24h", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert re.search(r'Orders ingested</div>\s*<div class="value">0<', day)
    # A history restore asks for the whole page.
    full = logged_in.get("/?window=7d", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in full.get_data(as_text=True)


def test_unknown_window_falls_back_to_24h(logged_in, db):
    _order(db, 1, "10.00")
    db.session.commit()
    assert 'aria-current="true">Last 24 h' in _page(logged_in, "/?window=forever")


def test_revenue_by_day_caches_closed_days_and_keeps_today_live(app, db, redis):
    now = _now()  # every order placed before the window is taken, as on a live page
    _order(db, 1, "10.00", placed=now - timedelta(days=2))
    _order(db, 2, "4.00", placed=now)
    db.session.commit()
    days = make_window("30d")
    first = revenue_by_day(days)["USD"]
    assert len(first) == 30 and (first[-3], first[-1], sum(first)) == (Decimal("10"), Decimal("4"), Decimal("14"))
    # A new order today shows at once; a late one for a closed day waits for the cache to expire.
    _order(db, 3, "1.00", placed=now)
    _order(db, 4, "100.00", placed=now - timedelta(days=2))
    db.session.commit()
    second = revenue_by_day(days)["USD"]
    assert (second[-3], second[-1]) == (Decimal("10"), Decimal("5"))
    redis.flushdb()
    assert revenue_by_day(days)["USD"][-3] == Decimal("110")


@pytest.mark.parametrize("name", ["30d", "1y", ""])
def test_a_window_the_toggle_does_not_offer_shows_the_default(logged_in, db, name):
    _destination()
    _order(db, 1, "10.00")
    db.session.commit()
    page = logged_in.get(f"/?window={name}")
    assert page.status_code == 200
    assert '<h2 id="kpi-title">Last 24 h</h2>' in page.get_data(as_text=True)
    fragment = logged_in.get(f"/?window={name}", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and '<h2 id="kpi-title">Last 24 h</h2>' in fragment.get_data(as_text=True)
