"""job_failed: long work that ended failed with no one watching it — an erasure still holding personal data, a
destination's newest replay, its newest catalog reconcile — opens one incident, told to the channels that take
job_failed over a real json:// receiver (and not to an SMTP channel that does not take it); the retry or a later
success resolves it with one "resolved" notice. No notice carries a personal value."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import USER_PASSWORD, both_databases, csrf_token
from tests.workers.test_erasure import CANARIES, CANARY_EMAIL, _canary_order
from webapp.models import CatalogReconcile, Destination, Erasure, Incident, Replay, utcnow
from webapp.schemas import alerts as out
from webapp.services.alerts.conditions import KIND_LABELS, current
from webapp.services.contacts import erasure as erasures
from webapp.services.contacts import erasure_steps
from webapp.services.delivery import replays
from webapp.services.delivery.replay_windows import ReplayWindow
from webapp.services.platform.crypto import encrypt_json

ERASURE_TITLE = "[shoprelay] An erasure failed: personal data is still stored"


def _incidents(api, state: str) -> list[out.IncidentOut]:  # noqa: ANN001
    body = api.get(f"/api/v1/alerts/incidents?state={state}").get_json()
    return out.IncidentList.model_validate(body).incidents


def _no_canary(*texts: str) -> None:
    for text in texts:
        assert not [canary for canary in CANARIES if canary.lower() in text.lower()], text


def _destination(db, name: str, kind: str = "webhook", **values) -> Destination:  # noqa: ANN001, ANN003
    destination = Destination(name=name, kind=kind, credentials_encrypted=encrypt_json(
        {"url": "http://127.0.0.1:9/hook", "secret": "abcdefgh", "api_key": "pk_abcdefgh"}), events=[],
        rate_limits={}, **values)
    db.session.add(destination)
    db.session.commit()
    return destination


@both_databases
def test_a_failed_erasure_alerts_and_the_retry_that_finishes_it_resolves(app, api, db, user, monkeypatch,
                                                                        make_channel, receiver, smtp, tick, work):
    app.config.update(ALERT_QUIET_MINUTES=0.0, BASE_URL="https://relay.example")
    make_channel(receiver.url, events=["job_failed"])
    make_channel(smtp.url, name="ops email", events=["destination_paused", "sync_failed"])
    assert api.post("/api/v1/orders", json=_canary_order("j-1")).status_code == 202

    def boom(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - an exception that quotes what it was given
        raise RuntimeError(f"disk I/O error while cleaning {CANARY_EMAIL} (Zebedee Quagmire)")

    monkeypatch.setattr(erasure_steps, "run_chunk", boom)
    with pytest.raises(RuntimeError):
        erasures.start_erasure(CANARY_EMAIL, run_here=True)
    record = db.session.scalar(sa.select(Erasure))
    assert record.status == "failed" and record.pending_values is not None and record.local_done_at is None
    contact_id = record.contact_ids[0]

    tick()
    tick()  # still failed: nothing more
    assert receiver.titles() == [ERASURE_TITLE]
    assert smtp.messages == []  # that channel does not take job_failed
    text = receiver.messages[0]["message"]
    assert receiver.messages[0]["type"] == "failure"
    assert "Likely cause: RuntimeError: disk I/O error while cleaning [REDACTED] ([REDACTED] [REDACTED])" in text
    assert "personal data from the orders phase on stays stored here" in text
    path = f"/contacts/{contact_id}?erasure={record.id}"
    assert f"Fix it: Find the cause, then Retry the erasure → https://relay.example{path}" in text
    [incident] = _incidents(api, "open")
    assert (incident.kind, incident.subject) == ("job_failed", f"erasure:{record.id}")
    assert incident.since is not None and incident.kind_label == KIND_LABELS["job_failed"]
    assert [(n.channel, n.event, n.state) for n in incident.notices] == [("ops", "opened", "sent")]
    _no_canary(str(receiver.messages), api.get("/api/v1/alerts/incidents?state=open").get_data(as_text=True))

    # The link leads to the erasure with its Retry button.
    page = app.test_client()
    assert page.post("/login", data={"email": user.email, "password": USER_PASSWORD,
                                     "csrf_token": csrf_token(page, "/login")}).status_code == 302
    html = page.get(path).get_data(as_text=True)
    assert f"Erasure <span class=\"mono\">{record.id}</span>" in html and "Retry erasure" in html

    monkeypatch.undo()
    retried = api.post(f"/api/v1/erasures/{record.id}/retry")
    assert retried.status_code == 202, retried.get_json()
    work()
    done = erasures.get_erasure(record.id)
    assert done.status == "succeeded" and done.pending_values is None
    tick()
    tick()
    assert receiver.titles() == [ERASURE_TITLE, f"[shoprelay] Resolved: {ERASURE_TITLE.removeprefix('[shoprelay] ')}"]
    assert smtp.messages == []
    assert _incidents(api, "open") == []
    _no_canary(str(receiver.messages), api.get("/api/v1/alerts/incidents?state=closed").get_data(as_text=True))


@both_databases
def test_only_an_unfinished_failed_erasure_holds(app, db):
    """Failed after its local part was done (`pending_values` cleared): nothing is stored here any more, no
    incident. One that found no contact links to its own fragment (it has the Retry button)."""
    now = utcnow()
    db.session.add_all([
        Erasure(id="settled0", email_hash="a" * 64, status="failed", error="Klaviyo: HTTP 500", pending_values=None,
                contact_ids=[7], finished_at=now),
        Erasure(id="running0", email_hash="b" * 64, status="running", pending_values=encrypt_json({}),
                contact_ids=[8]),
        Erasure(id="nocontact", email_hash="c" * 64, status="failed", error="OperationalError: locked\n"
                "[SQL: UPDATE orders SET email=?]\n[parameters: ('someone@example.org',)]",
                pending_values=encrypt_json({"email": "someone@example.org", "values": [], "customer_ids": []}),
                contact_ids=[], finished_at=now - timedelta(minutes=3)),
    ])
    db.session.commit()
    [condition] = current(now, ["job_failed"])
    assert condition.subject == "erasure:nocontact" and condition.path == "/contacts/erasures/nocontact"
    assert condition.detail == "OperationalError: locked"  # the statement and its parameters stay out
    assert condition.since.replace(tzinfo=UTC) == (now - timedelta(minutes=3)).replace(tzinfo=UTC)


@both_databases
def test_a_failed_replay_alerts_until_a_later_one_succeeds(app, api, db, monkeypatch, make_channel, receiver,
                                                          smtp, tick):
    app.config.update(ALERT_QUIET_MINUTES=0.0)
    make_channel(receiver.url, events=["job_failed"])
    make_channel(smtp.url, name="ops email", events=["dead_letters"])
    destination = _destination(db, "Shop webhook")
    now = utcnow().replace(tzinfo=UTC)
    window = ReplayWindow(since=now - timedelta(hours=2), until=now)

    def boom(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("the database went away")

    monkeypatch.setattr(replays, "_replay_chunk", boom)
    with pytest.raises(RuntimeError):
        replays.start_replay(destination, window, run_here=True)
    monkeypatch.undo()
    tick()
    title = "[shoprelay] A replay to Shop webhook failed"
    assert receiver.titles() == [title] and smtp.messages == []
    text = receiver.messages[0]["message"]
    assert "Likely cause: RuntimeError: the database went away" in text
    assert f"Fix it: Find the cause, then replay the window again → /destinations/{destination.id}#replay-panel" in text
    [incident] = _incidents(api, "open")
    assert (incident.kind, incident.subject) == ("job_failed", f"replay:destination:{destination.id}")

    # A newer replay waiting or running does not end it: its outcome does.
    newer = Replay(id="newerreplay0", destination_id=destination.id, status="queued", since=window.since,
                   until=window.until, states=["delivered"], breakdown=[], created_at=utcnow() + timedelta(seconds=1))
    db.session.add(newer)
    db.session.commit()
    tick()
    assert receiver.titles() == [title] and len(_incidents(api, "open")) == 1
    assert replays.run_replay("newerreplay0").status == "succeeded"
    tick()
    tick()
    assert receiver.titles() == [title, "[shoprelay] Resolved: A replay to Shop webhook failed"]
    assert _incidents(api, "open") == []


@both_databases
def test_a_failed_reconcile_alerts_until_a_later_one_succeeds_or_the_catalog_is_off(app, api, db, make_channel,
                                                                                   receiver, tick):
    app.config.update(ALERT_QUIET_MINUTES=0.0)
    make_channel(receiver.url, events=["job_failed"])
    destination = _destination(db, "Klaviyo EU", kind="klaviyo", catalog="api")
    other = _destination(db, "Klaviyo US", kind="klaviyo", catalog="off")

    def run(target: Destination, status: str, error: str | None = None) -> CatalogReconcile:
        row = CatalogReconcile(destination_id=target.id, status=status, trigger="nightly", counts={}, error=error,
                               finished_at=utcnow() if status in ("succeeded", "failed") else None)
        db.session.add(row)
        db.session.commit()
        return row

    run(destination, "failed", "Klaviyo answered HTTP 500 to the catalog items bulk job")
    run(other, "failed", "off since: no alert")  # its catalog is not kept by the API
    tick()
    title = "[shoprelay] The catalog reconcile of Klaviyo EU failed"
    assert receiver.titles() == [title]
    text = receiver.messages[0]["message"]
    assert "Likely cause: Klaviyo answered HTTP 500 to the catalog items bulk job" in text
    assert f"→ /destinations/{destination.id}#catalog-panel" in text
    [incident] = _incidents(api, "open")
    assert (incident.kind, incident.subject) == ("job_failed", f"catalog:destination:{destination.id}")

    running = run(destination, "running")
    tick()
    assert receiver.titles() == [title]  # in progress: still open
    running.status, running.finished_at = "succeeded", utcnow()
    db.session.commit()
    tick()
    tick()
    assert receiver.titles() == [title, "[shoprelay] Resolved: The catalog reconcile of Klaviyo EU failed"]

    run(destination, "failed", "Klaviyo answered HTTP 429 for an hour")
    tick()
    assert receiver.titles()[-1] == title
    db.session.execute(sa.update(Destination).where(Destination.id == destination.id).values(catalog="off"))
    db.session.commit()
    tick()
    tick()
    assert receiver.titles()[-1] == "[shoprelay] Resolved: The catalog reconcile of Klaviyo EU failed"
    assert len(receiver.messages) == 4 and _incidents(api, "open") == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Incident)) == 2


def test_the_form_and_the_contract_list_job_failed(api, logged_in):
    assert "job_failed" in out.ALERT_EVENTS and out.ALERT_EVENTS[:8] == (
        "destination_paused", "dead_letters", "sync_failed", "sync_held", "feed_held", "feed_stale", "worker_down",
        "scheduler_down")
    html = logged_in.get("/alerts/new").get_data(as_text=True)
    assert 'value="job_failed" checked' in html and "Erasure, replay or catalog reconcile failed" in html
    doc = api.get("/api/v1/openapi.json").get_json()
    assert "job_failed" in str(doc["components"]["schemas"]["ChannelCreate"])
