"""Conditions read from real state: a feed its platform stopped fetching, no worker alive (told from the
scheduler's process), a silent scheduler (noticed by a worker)."""

from datetime import timedelta

import sqlalchemy as sa
from rq import Worker
from rq.cron import CronScheduler

from tests.webapp.publishing.feed_helpers import buffered_clients, build_now  # noqa: F401 - autouse
from webapp.models import FeedFetch, Incident, utcnow
from webapp.schemas.canonical.products import ProductPush
from webapp.schemas.feeds import FeedCreate
from webapp.services.alerts.conditions import KINDS
from webapp.services.alerts.incidents import evaluate
from webapp.services.alerts.sending import send_all_due
from webapp.services.alerts.watch import WorkerWatch, watch_scheduler
from webapp.services.catalog.product_push import apply_push
from webapp.services.publishing.feeds import create_feed, feed_json
from workers.queue import connect, get_queue


def _published_feed():
    run, _ = apply_push(ProductPush(upserts=[
        {"external_id": f"P{i}", "title": f"Mug {i}", "description": "A mug", "link": f"https://s.example/p/{i}",
         "image_link": f"https://s.example/i/{i}.png", "price": 10 + i} for i in range(3)]))
    feed = create_feed(FeedCreate(name="Klaviyo feed", slug="main", format="klaviyo_xml", source_ids=[run.source_id]))
    assert build_now(feed).status == "succeeded"
    return feed


def test_feed_stale_fires_when_the_platform_stops_fetching(app, client, db, make_channel, receiver):
    app.config.update(FEED_STALE_HOURS=6.0, ALERT_QUIET_MINUTES=0.0)
    make_channel(receiver.url, events=["feed_stale"])
    feed = _published_feed()
    url = feed_json(feed)["url"]
    kinds = ["feed_stale"]
    evaluate(kinds=kinds)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Incident)) == 0  # never fetched: not stale

    platform = {"User-Agent": "Klaviyo/1.0 (+https://www.klaviyo.com)"}
    assert client.get(url, headers=platform).status_code == 200
    evaluate(kinds=kinds)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Incident)) == 0  # just fetched

    # The platform stops fetching: its last fetch ages past the threshold.
    db.session.execute(sa.update(FeedFetch).values(fetched_at=utcnow() - timedelta(hours=7)))
    db.session.commit()
    assert client.get(url.replace(feed.token, "not-the-token"), headers=platform).status_code == 404  # not its feed
    evaluate(kinds=kinds)
    send_all_due()
    assert receiver.titles() == ["[shoprelay] Klaviyo feed is no longer fetched by its platform"]
    text = receiver.messages[0]["message"]
    assert "The last fetch was 7 h ago (expected within 6 h)" in text
    assert f"Check the feed URL in the platform's catalog settings → /feeds/{feed.id}" in text
    assert receiver.messages[0]["type"] == "warning"

    evaluate(kinds=kinds)  # still stale: nothing new
    assert client.get(url, headers=platform).status_code == 200  # the platform is back
    evaluate(kinds=kinds)
    send_all_due()
    assert receiver.titles()[1:] == ["[shoprelay] Resolved: Klaviyo feed is no longer fetched by its platform"]


def test_no_worker_is_told_from_the_scheduler_process(app, redis, make_channel, receiver):
    """The scheduler's watchdog: no worker for two minutes opens worker_down and sends it itself."""
    app.config["ALERT_QUIET_MINUTES"] = 0.0
    make_channel(receiver.url, events=["worker_down"])
    watch = WorkerWatch()
    now = utcnow()
    assert watch.tick(now) is None  # first seen missing: a restart is not an incident
    assert watch.tick(now + timedelta(minutes=1)) is None
    result = watch.tick(now + timedelta(minutes=3))
    assert result is not None and len(result.opened) == 1
    assert receiver.titles() == ["[shoprelay] No worker is running"]  # sent inline: no worker ran anything
    assert "Start a worker" in receiver.messages[0]["message"]
    watch.tick(now + timedelta(minutes=4))
    assert len(receiver.messages) == 1

    connection = connect(app.config["REDIS_URL"])
    worker = Worker([get_queue("alerts", connection)], connection=connection, name="test-worker")
    worker.register_birth()
    try:
        assert watch.tick() is None and watch.missing_since is None
        evaluate(kinds=KINDS[:-1])  # the cron's evaluation on a worker (the scheduler is not judged here)
        send_all_due()
        assert receiver.titles()[1:] == ["[shoprelay] Resolved: No worker is running"]
    finally:
        worker.register_death()


def test_a_silent_scheduler_is_noticed_by_a_worker(app, redis, make_channel, receiver, work):
    app.config["ALERT_QUIET_MINUTES"] = 0.0
    make_channel(receiver.url, events=["scheduler_down", "worker_down"])
    assert watch_scheduler() is True  # no scheduler has registered: the worker asks for an evaluation
    assert watch_scheduler() is True  # asked twice: one evaluation waits
    assert get_queue("alerts", redis).count == 1
    work(["alerts"])
    assert receiver.titles() == ["[shoprelay] The scheduler is silent"]  # and no worker_down: one ran it
    assert "No scheduler has registered" in receiver.messages[0]["message"]

    scheduler = CronScheduler(connection=redis, name="test-scheduler")
    scheduler.register_birth()
    scheduler.heartbeat()
    assert watch_scheduler() is False
    evaluate(kinds=["scheduler_down"])
    send_all_due()
    assert receiver.titles()[1:] == ["[shoprelay] Resolved: The scheduler is silent"]


def test_liveness_is_not_guessed_without_redis(app, db, make_channel):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    make_channel("json://127.0.0.1:1/hook")
    assert evaluate(kinds=["worker_down", "scheduler_down"]).opened == []
