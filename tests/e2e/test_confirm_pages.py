"""Browser: every destructive action asks first on a page of one shape (what goes, what to do instead, a
danger button and a way back), and the button does what it says."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.e2e.conftest import screenshot
from webapp.models import AlertChannel, Destination, Feed, Source
from webapp.schemas.alerts import ChannelCreate
from webapp.schemas.feeds import FeedCreate
from webapp.schemas.sources import SourceCreate
from webapp.services.alerts.channels import create_channel
from webapp.services.catalog.sources import create_source
from webapp.services.publishing.feeds import create_feed


@pytest.fixture()
def things(api, db):  # noqa: ANN001, ANN201
    source = create_source(SourceCreate(name="Mugs", kind="csv"))
    feed = create_feed(FeedCreate(name="Klaviyo feed", slug="klaviyo", format="klaviyo_xml", source_ids=[source.id]))
    channel = create_channel(ChannelCreate(name="Ops mail", url="mailto://ops:secret@mail.example.com"))
    response = api.post("/api/v1/destinations", json={"name": "Hook", "kind": "webhook", "credentials": {
        "url": "http://127.0.0.1:9/h", "secret": "abcdefgh"}})
    assert response.status_code == 201, response.get_json()
    return {"source": source.id, "feed": feed.id, "channel": channel.id, "destination": response.get_json()["id"]}


def _gone(db, model, row_id: int) -> bool:  # noqa: ANN001
    db.session.rollback()
    return db.session.scalar(sa.select(model.id).where(model.id == row_id)) is None


@pytest.mark.parametrize(("kind", "path", "button", "back", "model"), [
    ("source", "/sources/{source}/delete", "Delete Mugs", "Mugs", Source),
    ("destination", "/destinations/{destination}/delete", "Delete Hook", "Hook", Destination),
    ("feed", "/feeds/{feed}/delete", "Delete Klaviyo feed", "Klaviyo feed", Feed),
    ("channel", "/alerts/{channel}/delete", "Delete Ops mail", "Alerts", AlertChannel),
])
def test_delete_pages_ask_then_delete(logged_in_page, things, db, kind, path, button, back, model) -> None:  # noqa: ANN001
    page = logged_in_page
    page.goto(path.format(**things))
    page.get_by_role("heading", name=f"{button}?").wait_for()
    assert page.get_by_role("link", name=f"← {back}").is_visible()
    assert page.get_by_text("instead").count() + page.get_by_text("cannot be undone").count() >= 1
    screenshot(page, f"confirm-delete-{kind}")
    page.get_by_role("link", name="Keep it").click()  # the way back changes nothing
    page.wait_for_load_state()
    assert not _gone(db, model, things[kind])
    page.goto(path.format(**things))
    page.get_by_role("button", name=button).click()
    page.wait_for_load_state()
    assert _gone(db, model, things[kind])


def test_rotating_a_feed_url_asks_first(logged_in_page, logged_in, things, db) -> None:  # noqa: ANN001
    """In the browser the button asks in a dialog; without JavaScript the form lands on the confirm page."""
    from tests.conftest import csrf_token

    page = logged_in_page
    token = db.session.get(Feed, things["feed"]).token
    page.goto(f"/feeds/{things['feed']}")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Rotate token").click()
    page.wait_for_timeout(300)
    db.session.rollback()
    assert db.session.get(Feed, things["feed"]).token == token  # "no" changed nothing
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Rotate token").click()
    page.get_by_text("the old URL stops working now").wait_for()
    db.session.rollback()
    rotated = db.session.get(Feed, things["feed"]).token
    assert rotated != token

    fallback = logged_in.post(f"/feeds/{things['feed']}/rotate-token",
                              data={"csrf_token": csrf_token(logged_in, f"/feeds/{things['feed']}")})
    body = fallback.get_data(as_text=True)
    assert fallback.status_code == 200 and "Give Klaviyo feed a new URL?" in body and "Rotate the token" in body
    db.session.rollback()
    assert db.session.get(Feed, things["feed"]).token == rotated
