"""Dashboard side of the feed gate: the source form warns about a missing Store URL after saving, and a held
first build is shown on the feed page with its reason, a link to the source's settings and "Publish anyway"."""

from __future__ import annotations

import io

import sqlalchemy as sa

from tests.conftest import csrf_token
from tests.fixtures import WOOCOMMERCE_SAMPLE
from webapp.models import FeedBuild, Source, SyncRun
from webapp.schemas.feeds import FeedCreate
from webapp.services.publishing.feeds import create_feed

NOTICE = "No Store URL: a WooCommerce export has no product URLs"


def _create_woo(client, **options: str):  # noqa: ANN001, ANN202
    data = {"name": "Woo", "kind": "woocommerce", "via": "upload", "schedule": "0 2 * * *", "timezone": "UTC",
            "enabled": "1", "upload": (io.BytesIO(WOOCOMMERCE_SAMPLE.read_bytes()), "export.csv"),
            **{f"options.{name}": value for name, value in options.items()},
            "csrf_token": csrf_token(client, "/sources/new")}
    return client.post("/sources/new", data=data, content_type="multipart/form-data", follow_redirects=True)


def _post(client, path: str, data: dict | None = None):  # noqa: ANN001, ANN202
    return client.post(path, data={"csrf_token": csrf_token(client, "/feeds/"), **(data or {})})


def test_source_form_says_after_saving_that_the_store_url_is_missing(logged_in, db) -> None:  # noqa: ANN001
    page = _create_woo(logged_in).get_data(as_text=True)
    assert "flash-warning" in page and NOTICE in page
    source = db.session.scalars(sa.select(Source)).one()
    form = logged_in.get(f"/sources/{source.id}/edit").get_data(as_text=True)
    assert 'id="opt-store_url"' in form and '<details class="card not-push advanced" open>' in form
    edit = {"name": "Woo", "kind": "woocommerce", "via": "upload", "schedule": "0 2 * * *", "timezone": "UTC",
            "enabled": "1", "options.store_url": "https://shop.example", "csrf_token": csrf_token(logged_in, "/")}
    saved = logged_in.post(f"/sources/{source.id}/edit", data=edit, content_type="multipart/form-data",
                           follow_redirects=True).get_data(as_text=True)
    assert "Saved." in saved and NOTICE not in saved
    db.session.expire_all()
    assert db.session.get(Source, source.id).options["store_url"] == "https://shop.example"


def test_held_first_build_shows_the_reason_the_fix_and_publish_anyway(logged_in, db, worker) -> None:  # noqa: ANN001
    _create_woo(logged_in)
    source = db.session.scalars(sa.select(Source)).one()
    _post(logged_in, f"/sources/{source.id}/sync")
    worker()
    feed = create_feed(FeedCreate(name="Klaviyo", slug="klaviyo", format="klaviyo_xml", source_ids=[source.id]))
    _post(logged_in, f"/feeds/{feed.id}/build")
    worker()
    db.session.expire_all()
    held = db.session.scalars(sa.select(FeedBuild).where(FeedBuild.feed_id == feed.id)).one()
    assert held.status == "held"
    html = logged_in.get(f"/feeds/{feed.id}").get_data(as_text=True)
    assert f"Build #{held.id} is held back" in html
    assert "The build has no items (all 22 products skipped). 22 products have no product URL: set the " \
           "source&#39;s Store URL." in html
    assert "the feed URL answers 404 rather than an empty file" in html
    assert f'href="/sources/{source.id}/edit">Woo</a>' in html
    assert "Publish anyway (0 items)" in html
    run = db.session.scalars(sa.select(SyncRun)).one()
    run_page = logged_in.get(f"/sources/{source.id}/runs/{run.id}").get_data(as_text=True)
    assert "22 products have no product URL: set the source&#39;s Store URL" in run_page
    assert logged_in.get(f"/feeds/{feed.token}/klaviyo.xml").status_code == 404
    assert _post(logged_in, f"/feeds/{feed.id}/builds/{held.id}/publish").status_code == 302
    db.session.expire_all()
    assert db.session.get(type(feed), feed.id).published_build_id == held.id
