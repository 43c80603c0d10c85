"""The Alerts page: channels (add, edit, delete, test via htmx), open and past incidents, channel failures;
the page and its htmx fragment come from one template."""

import re

import sqlalchemy as sa

from tests.conftest import csrf_token
from webapp.models import AlertChannel, Destination
from webapp.schemas.alerts import ALERT_EVENTS
from webapp.services.alerts.incidents import evaluate
from webapp.services.alerts.sending import send_all_due
from webapp.services.delivery.destinations import pause_destination, resume_destination
from webapp.services.platform.crypto import encrypt_json

HTMX = {"HX-Request": "true"}


def _post(client, path, data=None, headers=None):  # noqa: ANN001, ANN202
    return client.post(path, data={"csrf_token": csrf_token(client, "/alerts/"), **(data or {})},
                       headers=headers or {})


def _destination(db, name="Klaviyo EU"):  # noqa: ANN001, ANN202
    destination = Destination(name=name, kind="webhook", credentials_encrypted=encrypt_json(
        {"url": "http://127.0.0.1:9/hook", "secret": "abcdefgh"}), events=[], rate_limits={})
    db.session.add(destination)
    db.session.commit()
    return destination


def test_page_and_fragment(logged_in):
    page = logged_in.get("/alerts/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<a href="/alerts/" aria-current="page">Alerts</a>' in html
    assert "<h1>Alerts</h1>" in html and "No alert channels yet" in html and "Nothing is wrong right now." in html
    fragment = logged_in.get("/alerts/", headers=HTMX).get_data(as_text=True)
    assert "<html" not in fragment and fragment.strip().startswith('<div id="alerts-live"')
    assert 'hx-trigger="every 30s"' in fragment and "No alert channels yet" in fragment


def test_needs_a_login(client):
    assert client.get("/alerts/").status_code == 302


def test_add_edit_test_and_delete_a_channel(logged_in, db, receiver):
    form = logged_in.get("/alerts/new").get_data(as_text=True)
    assert form.count('type="checkbox" name="events"') == len(ALERT_EVENTS)
    bad = _post(logged_in, "/alerts/new", {"name": "Ops", "url": "nonsense://x", "events": ["destination_paused"],
                                           "enabled": "1"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert re.search(r'name="url".*?<p class="field-error" role="alert">apprise cannot use this nonsense:// URL',
                     html, re.S)
    assert 'value="nonsense://x"' not in html  # a URL is never put back into the page
    none_chosen = _post(logged_in, "/alerts/new", {"name": "Ops", "url": receiver.url, "enabled": "1"})
    assert none_chosen.status_code == 422 and "at least one event" in none_chosen.get_data(as_text=True)

    created = _post(logged_in, "/alerts/new", {"name": "Ops hook", "url": receiver.url,
                                               "events": ["destination_paused", "feed_stale"], "enabled": "1"})
    assert created.status_code == 302 and created.headers["Location"] == "/alerts/"
    channel = db.session.scalars(sa.select(AlertChannel)).one()
    assert channel.events == ["destination_paused", "feed_stale"]
    page = logged_in.get("/alerts/").get_data(as_text=True)
    assert "Ops hook" in page and channel.url_hint in page and "/hook" not in page

    result = _post(logged_in, f"/alerts/{channel.id}/test", headers=HTMX)
    assert result.status_code == 200
    fragment = result.get_data(as_text=True)
    assert "Test sent" in fragment and "<html" not in fragment
    assert receiver.titles() == ["[shoprelay] Test notice"]
    receiver.status = 500
    failed = _post(logged_in, f"/alerts/{channel.id}/test").get_data(as_text=True)  # without htmx: the page
    assert "<h1>Alerts</h1>" in failed and "Test failed" in failed and "500" in failed

    edit = logged_in.get(f"/alerts/{channel.id}/edit").get_data(as_text=True)
    assert "(saved)" in edit and receiver.url not in edit
    saved = _post(logged_in, f"/alerts/{channel.id}/edit", {"name": "Renamed", "url": "", "events": ["worker_down"]})
    assert saved.status_code == 302
    db.session.refresh(channel)
    assert channel.name == "Renamed" and channel.events == ["worker_down"] and not channel.enabled
    assert "Delete Renamed?" in logged_in.get(f"/alerts/{channel.id}/delete").get_data(as_text=True)
    assert _post(logged_in, f"/alerts/{channel.id}/delete").status_code == 302
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AlertChannel)) == 0


def test_incidents_and_channel_failures_are_shown(app, api, logged_in, db, make_channel):
    app.config["ALERT_QUIET_MINUTES"] = 0.0
    make_channel("json://127.0.0.1:1/hook", name="nobody listens")
    destination = _destination(db)
    pause_destination(destination, "the platform refused the credentials: 401 Unauthorized")
    evaluate(kinds=["destination_paused"])
    send_all_due()
    html = logged_in.get("/alerts/", headers=HTMX).get_data(as_text=True)
    assert "Klaviyo EU is paused" in html and "401 Unauthorized" in html
    assert f'href="/destinations/{destination.id}/edit"' in html and "Rotate the credentials, then resume" in html
    assert "Channel failures" in html and "Failing since" in html and "onnection" in html
    assert "nobody listens (pending" in html

    resume_destination(destination)
    evaluate(kinds=["destination_paused"])
    html = logged_in.get("/alerts/").get_data(as_text=True)
    assert "Nothing is wrong right now." in html
    past = html[html.index("Past incidents"):]
    assert "Klaviyo EU is paused" in past
