"""The Alerts page in a browser: an open incident with its fix, a failing channel, the Test button (htmx)."""

from playwright.sync_api import expect

from tests.e2e.conftest import screenshot
from tests.webapp.alerts.conftest import receiver  # noqa: F401 - the local json:// receiver
from webapp.extensions import db
from webapp.models import Destination
from webapp.services.alerts.incidents import evaluate
from webapp.services.alerts.sending import send_all_due
from webapp.services.delivery.destinations import pause_destination
from webapp.services.platform.crypto import encrypt_json


def test_alerts_page_shows_incidents_and_tests_a_channel(app, logged_in_page, api, receiver):  # noqa: F811
    for name, url in (("Ops hook", receiver.url), ("Old Slack", "json://127.0.0.1:1/hook")):
        assert api.post("/api/v1/alerts", json={"name": name, "url": url}).status_code == 201
    destination = Destination(name="Klaviyo EU", kind="webhook", credentials_encrypted=encrypt_json(
        {"url": "http://127.0.0.1:9/hook", "secret": "abcdefgh"}), events=[], rate_limits={})
    db.session.add(destination)
    db.session.commit()
    pause_destination(destination, "the platform refused the credentials: 401 Unauthorized")
    evaluate(kinds=["destination_paused"])
    send_all_due()

    page = logged_in_page
    page.goto("/alerts/")
    incident = page.locator("article.incident")
    expect(incident).to_contain_text("Klaviyo EU is paused")
    expect(incident.get_by_role("link", name="Rotate the credentials, then resume →")).to_have_attribute(
        "href", f"/destinations/{destination.id}/edit")
    expect(page.locator("tr.is-failing")).to_contain_text("Old Slack")
    row = page.locator("tr", has_text="Ops hook")
    row.get_by_role("button", name="Test").click()
    expect(row.locator(".test-result")).to_contain_text("Test sent")
    assert receiver.titles()[-1] == "[shoprelay] Test notice"
    screenshot(page, "alerts")
