"""Pages show a role only the controls it may use: every form that posts and every `hx-post` on every dashboard
page points to an endpoint the logged-in role may POST (webapp.security.roles), so no button answers 403.

Walked from the app's URL map like tests/webapp/test_roles.py, with a source, feed, destination, order and event,
alert channel, contact, import and failed job in place so the pages show their controls.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from werkzeug.exceptions import HTTPException

from tests.factories import make_order
from tests.webapp.test_roles import NOT_DASHBOARD, _client_for
from webapp.models import Destination, Event, FeedBuild, ImportRun, Source, SyncRun
from webapp.models.base import utcnow
from webapp.models.orders import Contact
from webapp.security import role_allows
from workers.queue import enqueue, get_queue

FORM = re.compile(r"<form\b[^>]*>", re.IGNORECASE)
ATTRIBUTE = r'\b{}\s*=\s*"([^"]*)"'
ALWAYS_ALLOWED = {"auth.logout", "auth.login"}


def _attribute(tag: str, name: str) -> str | None:
    match = re.search(ATTRIBUTE.format(name), tag, re.IGNORECASE)
    return html.unescape(match.group(1)) if match else None


def _posted_urls(page: str, page_url: str) -> list[tuple[str, str]]:
    """(what, url) for every place the page would POST to: forms with method=post (no action: the page itself),
    hx-post attributes and formaction buttons."""
    posts = []
    for tag in FORM.findall(page):
        if (_attribute(tag, "method") or "get").lower() == "post":
            posts.append(("form", _attribute(tag, "action") or page_url))
    posts += [("hx-post", html.unescape(url)) for url in re.findall(ATTRIBUTE.format("hx-post"), page, re.I)]
    posts += [("formaction", html.unescape(url)) for url in re.findall(ATTRIBUTE.format("formaction"), page, re.I)]
    return posts


@pytest.fixture()
def data(app, api, db, redis, worker, tmp_path) -> dict[str, object]:  # noqa: ANN001
    """One of everything a dashboard page has controls for, made through the API where it can be."""
    failed_job = enqueue(redis, "default", "builtins.int", "not-a-number")
    worker(["default"])
    assert get_queue("default", redis).failed_job_registry.count == 1

    created = api.post("/api/v1/destinations", json={"name": "hook", "kind": "webhook", "credentials": {
        "url": "http://127.0.0.1:9/h", "secret": "plain-secret"}})
    assert created.status_code == 201, created.get_json()
    destination_id = created.get_json()["id"]
    paused = api.post("/api/v1/destinations", json={"name": "paused hook", "kind": "webhook", "credentials": {
        "url": "http://127.0.0.1:9/p", "secret": "plain-secret"}})
    assert paused.status_code == 201, paused.get_json()
    assert api.post("/api/v1/orders", json=make_order()).status_code in (200, 201, 202)
    pushed = api.post("/api/v1/products", json={"upserts": [{"external_id": "A", "title": "Mug"}]}).get_json()
    feed = api.post("/api/v1/feeds", json={"name": "F", "slug": "f", "format": "klaviyo_json",
                                           "source_ids": [pushed["source_id"]]})
    assert feed.status_code == 201, feed.get_json()
    feed_id = feed.get_json()["id"]
    channel = api.post("/api/v1/alerts", json={"name": "ops", "url": "json://127.0.0.1:9/notify"})
    assert channel.status_code == 201, channel.get_json()

    csv_file = tmp_path / "products.csv"
    csv_file.write_text("id,title,price\nA,Mug,9.99\n")
    source = Source(name="CSV file", kind="csv", upload_path=str(csv_file), options={})
    db.session.add(source)
    db.session.flush()
    now = utcnow()
    run = SyncRun(source_id=source.id, status="held", error="it would remove every product",
                  started_at=now - timedelta(minutes=1), finished_at=now)
    build = FeedBuild(feed_id=feed_id, status="held", error="no items; held back", finished_at=now)
    import_run = ImportRun(filename="orders.jsonl", file_digest="0" * 64, status="failed", position=3)
    db.session.add_all([run, build, import_run])
    db.session.get(Destination, paused.get_json()["id"]).paused_at = now
    event = db.session.scalars(sa.select(Event).where(Event.destination_id == destination_id)).first()
    assert event is not None, "the order made no event for the destination"
    event.state, event.attempts, event.last_error = "dead", 1, "gave up"
    db.session.commit()
    product_id = db.session.execute(sa.text("SELECT min(id) FROM products")).scalar_one()
    return {
        "source_id": source.id, "feed_id": feed_id, "destination_id": destination_id,
        "channel_id": channel.get_json()["id"], "contact_id": db.session.scalars(sa.select(Contact.id)).first(),
        "external_id": "1234", "build_id": build.id, "product_id": product_id, "job_id": failed_job.id,
        "run_id": run.id, "import_run_id": import_run.id, "paused_destination_id": paused.get_json()["id"],
    }


def _pages(app, ids: dict[str, object]) -> list[str]:  # noqa: ANN001
    """Every GET page of the dashboard whose URL arguments we can fill, plus forms reached with a query."""
    adapter = app.url_map.bind("localhost")
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in NOT_DASHBOARD or "GET" not in rule.methods:
            continue
        # run_id is a sync run under /sources/ and an import run under /imports/
        filled = ids | {"run_id": ids["import_run_id"]} if rule.endpoint.startswith("imports.") else ids
        if set(rule.arguments) <= set(filled):
            urls.append(adapter.build(rule.endpoint, {name: filled[name] for name in rule.arguments}))
    return urls + ["/destinations/new?kind=webhook", "/sources/new?via=url", "/sources/new?kind=push",
                   f"/sources/products?source={ids['source_id']}", f"/destinations/{ids['paused_destination_id']}"]


@pytest.mark.parametrize("role", ["viewer", "member", "admin"])
def test_pages_show_only_the_controls_the_role_may_use(app, data, role: str) -> None:  # noqa: ANN001
    client, _ = _client_for(app, role)
    adapter = app.url_map.bind("localhost")
    pages = _pages(app, data)
    assert {f"/sources/{data['source_id']}/mapping", f"/feeds/{data['feed_id']}/edit", "/orders/1234",
            f"/destinations/{data['destination_id']}", "/jobs/"} <= {url.split("?")[0] for url in pages}
    wrong, seen = [], set()
    for url in pages:
        response = client.get(url)
        assert response.status_code in (200, 302), (url, response.status_code)  # 302: a fragment's own page
        page_url = url.split("?")[0]
        for what, target in _posted_urls(response.get_data(as_text=True), page_url):
            path = target.split("?")[0].removeprefix("http://localhost")
            try:
                endpoint, _ = adapter.match(path, method="POST")
            except HTTPException as exc:
                wrong.append((url, what, target, f"no POST route ({exc.code})"))
                continue
            seen.add(endpoint)
            if endpoint not in ALWAYS_ALLOWED and not role_allows(role, endpoint, "POST"):
                wrong.append((url, what, target, endpoint))
    assert wrong == [], f"{role} is shown controls it may not use: {wrong}"
    # the walk reached the controls (an admin sees them all)
    if role == "admin":
        assert {"sources.sync", "sources.save_mapping", "feeds.build", "feeds.publish", "orders.retry",
                "orders.replay", "destinations.test", "destinations.pause", "destinations.resume",
                "destinations.retry_event", "destinations.replay_window", "alerts.test", "jobs.requeue",
                "jobs.delete", "imports.resume", "contacts.erase", "settings.create_user_view"} <= seen
    if role == "member":
        assert {"sources.sync", "feeds.build", "orders.retry", "destinations.retry_event", "jobs.requeue",
                "imports.upload"} <= seen


def test_a_viewer_is_told_why_there_is_nothing_to_press(app, data) -> None:  # noqa: ANN001
    client, _ = _client_for(app, "viewer")
    note = "Your role (viewer) can read this page; changes need a member or admin."
    for url in (f"/sources/{data['source_id']}/edit", f"/sources/{data['source_id']}/mapping", "/imports/",
                f"/feeds/{data['feed_id']}/delete"):
        assert note in client.get(url).get_data(as_text=True), url
    page = client.get(f"/destinations/{data['destination_id']}/delete").get_data(as_text=True)
    assert "Your role (viewer) can read this page; changes need an admin." in page
    shown = client.get(f"/sources/{data['source_id']}/mapping").get_data(as_text=True)
    assert "What was detected" in shown and "Save mapping" not in shown  # the mapping is still readable
