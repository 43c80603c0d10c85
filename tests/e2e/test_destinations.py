"""Browser: connect a webhook destination through the form, test it, pause it, see it (and a rate-limited one)
in the list; the jobs page."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from rq.cron import CronScheduler

from tests.e2e.conftest import screenshot
from tests.factories import make_order
from webapp.models import Destination, Event, utcnow
from workers.queue import enqueue

SECRET = "whsec-e2e-never-shown-42"


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"received": true}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/webhook/orders"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_connect_a_webhook_and_look_around(logged_in_page, app, api, db, worker, redis, receiver) -> None:  # noqa: ANN001
    page = logged_in_page
    page.goto("/destinations/")
    assert page.get_by_role("heading", name="No destinations yet").is_visible()
    page.get_by_role("link", name="Connect a platform").click()
    screenshot(page, "destinations-choose-kind")
    page.get_by_role("link", name="Signed webhook").click()
    page.fill("#name", "Warehouse hook")
    page.fill("#cred-url", receiver)
    page.fill("#cred-secret", SECRET)
    page.check("input[name=events][value=placed_order]")
    page.check("input[name=events][value=ordered_product]")
    page.get_by_role("button", name="Connect Signed webhook").click()
    page.wait_for_url("**/destinations/1")
    assert page.get_by_role("heading", name="Warehouse hook").is_visible()

    page.get_by_role("button", name="Test connection").click()
    page.get_by_text("Connection works").wait_for()

    # Some traffic for the logs: two orders delivered, then one event made to look dead.
    api.post("/api/v1/orders", json=make_order(id="1001"))
    api.post("/api/v1/orders", json=make_order(id="1002"))
    worker()
    event = db.session.scalars(sa.select(Event).order_by(Event.id.desc())).first()
    event.state, event.attempts, event.last_error = "dead", 8, "HTTP 422: customer email is invalid"
    db.session.commit()

    page.reload()
    page.get_by_role("button", name="Retry now").wait_for()
    page.get_by_role("button", name="Count events").click()
    page.get_by_text("1 event will be retried.").wait_for()
    shot = screenshot(page, "destinations-detail")
    assert SECRET not in page.content()

    page.get_by_role("button", name="Retry now").click()
    page.get_by_text("Retry scheduled").wait_for()
    page.fill("#pause-reason", "Warehouse system maintenance until 14:00")
    page.get_by_role("button", name="Pause", exact=True).click()
    page.locator(".paused-banner", has_text="Warehouse system maintenance").wait_for()
    screenshot(page, "destinations-paused")

    # A second one whose platform answered 429: the list says until when nothing is sent to it.
    loyalty = api.post("/api/v1/destinations", json={
        "name": "Loyalty hook", "kind": "webhook",
        "credentials": {"url": receiver, "secret": "loyalty-secret-7"}}).get_json()
    db.session.get(Destination, loyalty["id"]).rate_limited_until = utcnow() + timedelta(minutes=2)
    db.session.commit()
    page.goto("/destinations/")
    assert page.get_by_role("link", name="Warehouse hook").is_visible()
    assert page.locator(".paused-reason", has_text="Warehouse system maintenance").is_visible()
    assert page.locator(".badge-rate-limited").inner_text() == "rate limited"
    assert page.locator(".rate-limited-note", has_text="Rate limited until").is_visible()
    assert SECRET not in page.content()
    screenshot(page, "destinations-list")

    page.goto("/destinations/1/edit")
    page.fill("#name", "")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("must not be empty").wait_for()
    screenshot(page, "destinations-edit-error")

    enqueue(redis, "default", "builtins.int", "not-a-number")
    worker(["default"])
    CronScheduler(connection=redis, name="scheduler-e2e").register_birth()
    page.goto("/jobs/")
    page.locator(".error-line", has_text="ValueError: invalid literal").wait_for()
    page.locator("summary", has_text="Traceback").click()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "jobs")
    page.get_by_role("button", name="Requeue").click()
    page.get_by_text("is back on the default queue").wait_for()
    assert shot.exists()
