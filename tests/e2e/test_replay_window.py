"""Browser: replay a time window from the destination page with htmx: count first, confirm, watch it finish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from tests.e2e.conftest import screenshot
from tests.factories import make_order
from webapp.models import Event


def test_replay_a_window_from_the_destination_page(logged_in_page, app, api, db, worker, redis) -> None:  # noqa: ANN001
    created = api.post("/api/v1/destinations", json={
        "name": "Warehouse hook", "kind": "webhook", "events": ["placed_order", "ordered_product"],
        "credentials": {"url": "http://127.0.0.1:9/webhook", "secret": "whsec-e2e-replay-7"}})
    destination = created.get_json()["id"]
    api.post("/api/v1/orders", json=make_order())
    db.session.execute(sa.update(Event).values(state="delivered", attempts=1))  # as if the hook took them
    db.session.commit()
    page = logged_in_page
    page.goto(f"/destinations/{destination}")
    now = datetime.now(UTC)
    page.fill("#replay-since", (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#replay-until", (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Count the window").click()
    page.get_by_text("3 events will be sent again").wait_for()
    assert page.locator(".replay-breakdown tbody tr").count() == 2  # placed order, ordered product
    screenshot(page, "destinations-replay-count")
    db.session.expire_all()
    assert {e.state for e in db.session.scalars(sa.select(Event))} == {"delivered"}  # nothing queued by counting
    page.get_by_role("button", name="Confirm: replay 3").click()
    page.get_by_text("3 of 3").wait_for()
    screenshot(page, "destinations-replay-done")
    db.session.expire_all()
    assert {e.state for e in db.session.scalars(sa.select(Event))} == {"retrying"}
