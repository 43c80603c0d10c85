"""Incidents, not noise: one notice when a problem starts and one when it ends, over a real json:// receiver and
a real SMTP server; flapping stays one incident; several problems starting together make one digest."""

from datetime import timedelta

import sqlalchemy as sa

from tests.conftest import both_databases
from tests.factories import make_order
from webapp.models import AlertNotice, Destination, Event, Feed, FeedBuild, Incident, Source, SyncRun, utcnow
from webapp.schemas import alerts as out
from webapp.schemas.canonical.products import ProductPush
from webapp.schemas.feeds import FeedCreate
from webapp.services.alerts.incidents import evaluate
from webapp.services.alerts.sending import send_all_due
from webapp.services.catalog.product_push import apply_push
from webapp.services.delivery.destinations import pause_destination, resume_destination
from webapp.services.publishing.feeds import create_feed

DATA_KINDS = ["destination_paused", "dead_letters", "sync_failed", "sync_held", "feed_held", "feed_stale"]


def _incidents(api, state):
    body = api.get(f"/api/v1/alerts/incidents?state={state}").get_json()
    return out.IncidentList.model_validate(body).incidents


@both_databases
def test_breaker_pause_opens_one_incident_and_resume_closes_it(app, api, db, fake, make_destination, make_channel,
                                                               receiver, smtp, tick, work):
    app.config.update(BREAKER_MINUTES=0.0, ALERT_QUIET_MINUTES=0.0, BASE_URL="https://relay.example")
    destination = make_destination("webhook", name="Shop webhook")
    make_channel(receiver.url)
    make_channel(smtp.url, name="ops email", events=["destination_paused"])
    fake.fail_for(60, status=502, platform="webhook")
    api.post("/api/v1/orders", json=make_order())
    work(["delivery"])  # the platform keeps failing: the breaker pauses the destination
    assert db.session.get(Destination, destination["id"]).paused_at is not None

    for _ in range(3):  # the cron, minute after minute, while it stays paused
        tick()
    assert receiver.titles() == ["[shoprelay] Shop webhook is paused"]
    assert smtp.subjects() == ["[shoprelay] Shop webhook is paused"]
    text = receiver.messages[0]["message"]
    assert receiver.messages[0]["type"] == "failure"
    assert "Since: " in text and "Likely cause: failing continuously" in text and "502" in text
    assert f"Fix it: Review and resume → https://relay.example/destinations/{destination['id']}" in text
    assert "Events for it keep queueing" in text
    assert "Fix it: Review and resume" in _mail_text(smtp.messages[0])
    [incident] = _incidents(api, "open")
    assert incident.kind == "destination_paused" and incident.subject == f"destination:{destination['id']}"
    assert incident.url == f"https://relay.example/destinations/{destination['id']}"
    assert sorted(n.state for n in incident.notices) == ["sent", "sent"]

    fake.faults.clear()
    assert api.post(f"/api/v1/destinations/{destination['id']}/resume").status_code == 200
    work(["delivery"])
    tick()
    tick()
    assert receiver.titles() == ["[shoprelay] Shop webhook is paused", "[shoprelay] Resolved: Shop webhook is paused"]
    assert smtp.subjects()[1:] == ["[shoprelay] Resolved: Shop webhook is paused"]
    assert receiver.messages[1]["type"] == "success"
    assert _incidents(api, "open") == []
    [closed] = _incidents(api, "closed")
    assert closed.id == incident.id and closed.closed_at is not None
    assert sorted((n.event, n.state) for n in closed.notices) == [("opened", "sent")] * 2 + [("resolved", "sent")] * 2


def _webhook(db, name):
    from webapp.services.platform.crypto import encrypt_json

    destination = Destination(name=name, kind="webhook", credentials_encrypted=encrypt_json(
        {"url": "http://127.0.0.1:9/hook", "secret": "abcdefgh"}), events=[], rate_limits={})
    db.session.add(destination)
    db.session.commit()
    return destination


@both_databases
def test_a_flapping_destination_does_not_flood(app, db, make_channel, receiver):
    app.config["ALERT_QUIET_MINUTES"] = 5.0
    make_channel(receiver.url)
    destination = _webhook(db, "Klaviyo EU")
    start = utcnow() - timedelta(hours=1)
    pause_destination(destination, "failing continuously for 30 min; last answer: HTTP 503")
    evaluate(start, DATA_KINDS)
    send_all_due(start)
    for minute in range(1, 12):  # resumed and paused again every minute, eleven times
        if destination.paused_at is None:
            pause_destination(destination, "failing continuously for 30 min; last answer: HTTP 503")
        else:
            resume_destination(destination)
        evaluate(start + timedelta(minutes=minute), DATA_KINDS)
        send_all_due(start + timedelta(minutes=minute))
    assert destination.paused_at is None  # an odd number of flips: resumed at the end
    assert receiver.titles() == ["[shoprelay] Klaviyo EU is paused"]
    incident = db.session.scalars(sa.select(Incident)).one()
    assert incident.state == "resolving" and incident.flaps == 5
    evaluate(start + timedelta(minutes=14), DATA_KINDS)  # inside the quiet window: still waiting
    assert len(receiver.messages) == 1
    evaluate(start + timedelta(minutes=16), DATA_KINDS)
    send_all_due(start + timedelta(minutes=16))
    assert receiver.titles() == ["[shoprelay] Klaviyo EU is paused", "[shoprelay] Resolved: Klaviyo EU is paused"]
    assert "came back 5 times meanwhile" in receiver.messages[1]["message"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Incident)) == 1
    # Paused again after the window: a new problem, a new notice.
    pause_destination(destination, "paused by a user")
    evaluate(start + timedelta(minutes=30), DATA_KINDS)
    send_all_due(start + timedelta(minutes=30))
    assert len(receiver.messages) == 3 and "Likely cause: paused by a user" in receiver.messages[2]["message"]


def _problems(app, api, db):
    """Four problems that start at once: a paused destination, dead letters, a held sync, a failed build."""
    paused = _webhook(db, "Klaviyo EU")
    pause_destination(paused, "the platform refused the credentials: 401 Unauthorized")
    dead = _webhook(db, "Sendlane")
    api.post("/api/v1/orders", json=make_order())
    db.session.execute(sa.update(Event).where(Event.destination_id == dead.id)
                       .values(state="dead", last_error="HTTP 503 Service Unavailable"))
    source = Source(name="Shop CSV", kind="csv", location="https://shop.example/products.csv")
    db.session.add(source)
    db.session.flush()
    db.session.add(SyncRun(source_id=source.id, status="held", finished_at=utcnow(),
                           error="the sync would remove 80% of the products (limit 50%); held back"))
    run, _ = apply_push(ProductPush(upserts=[{"external_id": "A", "title": "Mug", "link": "https://s.example/a",
                                              "price": 5}]))
    feed = create_feed(FeedCreate(name="Main", slug="main", format="klaviyo_xml", source_ids=[run.source_id]))
    db.session.add(FeedBuild(feed_id=feed.id, status="failed", error="No space left on device",
                             finished_at=utcnow()))
    db.session.commit()
    return paused, dead, source, feed


@both_databases
def test_several_problems_starting_together_make_one_digest(app, api, db, make_channel, receiver, smtp):
    app.config["ALERT_QUIET_MINUTES"] = 0.0
    make_channel(receiver.url)
    make_channel(smtp.url, name="ops email", events=["destination_paused", "sync_held"])
    paused, dead, source, feed = _problems(app, api, db)
    result = evaluate(kinds=DATA_KINDS)
    assert len(result.opened) == 4
    send_all_due()
    assert receiver.titles() == ["[shoprelay] 4 problems started"]
    digest = receiver.messages[0]["message"]
    for title in ("Klaviyo EU is paused", "Sendlane has dead-lettered events", "The last sync of Shop CSV was held back",
                  "The last build of Main failed"):
        assert title in digest
    assert f"Rotate the credentials, then resume → /destinations/{paused.id}/edit" in digest
    assert "2 events could not be delivered" in digest or "events could not be delivered" in digest
    assert f"Check the file, then confirm the removals → /sources/{source.id}" in digest
    assert smtp.subjects() == ["[shoprelay] 2 problems started"]  # its own choice of events, still one message

    evaluate(kinds=DATA_KINDS)  # nothing new
    send_all_due()
    assert len(receiver.messages) == 1 and len(smtp.messages) == 1

    resume_destination(paused)
    db.session.execute(sa.update(Event).where(Event.destination_id == dead.id).values(state="delivered"))
    db.session.add(SyncRun(source_id=source.id, status="succeeded", finished_at=utcnow()))
    db.session.add(FeedBuild(feed_id=feed.id, status="succeeded", finished_at=utcnow()))
    db.session.commit()
    assert len(evaluate(kinds=DATA_KINDS).resolved) == 4
    send_all_due()
    assert receiver.titles()[1] == "[shoprelay] 4 problems resolved"
    assert smtp.subjects()[1] == "[shoprelay] 2 problems resolved"


def test_a_failing_channel_never_delays_delivery(app, api, db, redis, fake, make_destination, make_channel,
                                                 receiver, work):
    from rq.job import Job

    receiver.status = 500
    broken = make_channel(receiver.url, name="broken hook")
    refused = make_channel("json://127.0.0.1:1/hook", name="nobody listens")
    old = make_destination("webhook", name="Old webhook")
    live = make_destination("klaviyo", name="Klaviyo")
    assert api.post(f"/api/v1/destinations/{old['id']}/pause").status_code == 200
    evaluate(kinds=DATA_KINDS)  # opens the incident and signals both channels' sending jobs
    api.post("/api/v1/orders", json=make_order())  # signals delivery
    alert_jobs = [redis.get(f"shoprelay:signal:alerts:{c['id']}").decode() for c in (broken, refused)]
    delivery_job = redis.get(f"shoprelay:signal:deliver:{live['id']}").decode()

    work()  # every queue, alerts included
    events = db.session.scalars(sa.select(Event).where(Event.destination_id == live["id"])).all()
    assert events and {e.state for e in events} <= {"delivered", "skipped"}
    delivered_at = Job.fetch(delivery_job, connection=redis).ended_at
    assert all(Job.fetch(job, connection=redis).started_at >= delivered_at for job in alert_jobs)

    channels = {c["name"]: c for c in api.get("/api/v1/alerts").get_json()["channels"]}
    assert channels["broken hook"]["failing"] and "500" in channels["broken hook"]["last_error"]
    assert channels["nobody listens"]["failing"] and "onnection" in channels["nobody listens"]["last_error"]
    for notice in db.session.scalars(sa.select(AlertNotice)):
        assert notice.state == "pending" and notice.attempts == 1 and notice.next_attempt_at > utcnow()

    # The receiver comes back: the retry (due after a minute) goes out and the channel heals.
    receiver.status = 200
    send_all_due(utcnow() + timedelta(minutes=2))
    assert receiver.titles() == ["[shoprelay] Old webhook is paused"]
    healed = api.get(f"/api/v1/alerts/{broken['id']}").get_json()
    assert not healed["failing"] and healed["last_sent_at"] is not None and "500" in healed["last_error"]


@both_databases
def test_two_evaluations_at_once_open_one_incident(app, db):
    """The cron job and a watchdog may evaluate together: the unique index over live incidents lets one insert win,
    and the guarded state changes let one of them resolve it."""
    from webapp.services.alerts import incidents
    from webapp.services.alerts.conditions import destination_paused

    destination = _webhook(db, "Klaviyo EU")
    pause_destination(destination)
    [condition] = destination_paused(utcnow())
    first = incidents._open(condition, utcnow())
    assert first is not None and incidents._open(condition, utcnow()) is None
    assert incidents._move(first, "open", "resolving", closed_at=utcnow())
    assert not incidents._move(first, "open", "resolving", closed_at=utcnow())  # the other one lost
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Incident)) == 1


def test_a_notice_is_given_up_after_its_attempts(app, db, make_channel):
    channel = make_channel("json://127.0.0.1:1/hook")
    pause_destination(_webhook(db, "Klaviyo EU"))
    evaluate(kinds=DATA_KINDS)
    moment = utcnow()
    for _ in range(6):
        moment += timedelta(hours=4)
        send_all_due(moment)
    notice = db.session.scalars(sa.select(AlertNotice)).one()
    assert notice.state == "failed" and notice.attempts == 6 and "onnection" in notice.last_error
    assert db.session.get(type(notice.channel), channel["id"]).failing_since is not None


def test_a_disabled_channel_is_told_nothing(app, api, db, make_channel, receiver):
    channel = make_channel(receiver.url, enabled=False)
    pause_destination(_webhook(db, "Klaviyo EU"))
    evaluate(kinds=DATA_KINDS)
    send_all_due()
    assert receiver.messages == [] and db.session.scalar(sa.select(sa.func.count()).select_from(AlertNotice)) == 0
    assert api.get(f"/api/v1/alerts/{channel['id']}").get_json()["pending_notices"] == 0


def test_a_channel_is_told_only_the_events_it_chose(app, db, make_channel, receiver):
    make_channel(receiver.url, events=["feed_stale"])
    pause_destination(_webhook(db, "Klaviyo EU"))
    evaluate(kinds=DATA_KINDS)
    send_all_due()
    assert receiver.messages == []
    assert db.session.scalars(sa.select(Incident)).one().notified_open is False


def test_deleted_subject_closes_its_incident(app, db, make_channel, receiver):
    app.config["ALERT_QUIET_MINUTES"] = 0.0
    make_channel(receiver.url)
    destination = _webhook(db, "Klaviyo EU")
    pause_destination(destination)
    evaluate(kinds=DATA_KINDS)
    db.session.delete(destination)
    db.session.commit()
    evaluate(kinds=DATA_KINDS)
    send_all_due()
    assert receiver.titles() == ["[shoprelay] Klaviyo EU is paused", "[shoprelay] Resolved: Klaviyo EU is paused"]


def test_feed_and_destination_fixes_point_at_the_right_page(app, api, db):
    """A held feed build that lacks the store URL links to the source that needs it."""
    source = Source(name="Woo export", kind="woocommerce", location="https://shop.example/export.csv",
                    options={})
    db.session.add(source)
    db.session.commit()
    feed = Feed(name="Meta", slug="meta", format="meta_csv", token="t" * 20, sources=[source])
    db.session.add(feed)
    db.session.flush()
    db.session.add(FeedBuild(feed_id=feed.id, status="held", finished_at=utcnow(),
                             error="the build has no items (all 22 products skipped). 22 products have no product "
                                   "URL: set the source's Store URL; held back"))
    db.session.commit()
    evaluate(kinds=DATA_KINDS)
    [incident] = _incidents(api, "open")
    assert incident.kind == "feed_held" and incident.severity == "warning"
    assert incident.url == f"/sources/{source.id}/edit" and incident.action == "Set the store URL of Woo export"


def _mail_text(message):
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode()
