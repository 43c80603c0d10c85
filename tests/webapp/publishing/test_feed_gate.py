"""Never an empty or gutted feed: the publish gate holds such builds (first build included) and says why.

A real WooCommerce export has no product URL column: without the source's Store URL every product lacks a
link, every feed format skips every product, and an empty feed must not reach Klaviyo, Google or Meta.
"""

import csv
import io
import json

import pytest
import sqlalchemy as sa
from lxml import etree

from tests.conftest import both_databases
from tests.fixtures import WOOCOMMERCE_SAMPLE
from tests.webapp.publishing.feed_helpers import buffered_clients, build_now  # noqa: F401 - autouse
from webapp.models import Source
from webapp.schemas import responses as out
from webapp.schemas.canonical.products import ProductPush
from webapp.services.catalog.product_push import apply_push
from webapp.services.catalog.sources import save_upload

FORMATS = ("klaviyo_xml", "klaviyo_json", "google_rss", "meta_csv")
NO_LINK = "22 products have no product URL: set the source's Store URL"




def _items(fmt: str, body: bytes) -> int:
    """How many products a served feed file holds."""
    if fmt == "klaviyo_json":
        return len(json.loads(body))
    if fmt == "meta_csv":
        return len(list(csv.DictReader(io.StringIO(body.decode()))))
    root = etree.fromstring(body)
    return len(root.findall("Product")) if fmt == "klaviyo_xml" else len(root.findall("channel/item"))


def _build_all(api, worker, feeds: list[dict]) -> list[dict]:
    """Ask for a build of each feed (or take the one the sync already queued), run the worker, read them."""
    ids = []
    for feed in feeds:
        response = api.post(f"/api/v1/feeds/{feed['id']}/build")
        assert response.status_code in (202, 409), response.get_json()
        ids.append((response.get_json().get("build") or response.get_json())["id"])
    worker()
    builds = [api.get(f"/api/v1/feed-builds/{build_id}").get_json() for build_id in ids]
    for build in builds:
        out.FeedBuildOut.model_validate(build)
    return builds


@pytest.mark.usefixtures("redis")
@both_databases
def test_woocommerce_export_without_store_url_is_held_in_every_format_until_the_store_url_is_set(
        app, api, client, db, worker):
    created = api.post("/api/v1/sources", json={"name": "Woo", "kind": "woocommerce"})
    assert created.status_code == 201
    body = created.get_json()
    out.SourceOut.model_validate(body)
    assert [w["path"] for w in body["warnings"]] == ["options.store_url"]
    assert "Store URL" in body["warnings"][0]["message"]
    source = db.session.get(Source, body["id"])
    with WOOCOMMERCE_SAMPLE.open("rb") as handle:
        save_upload(source, "export.csv", handle)
    run = api.post(f"/api/v1/sources/{source.id}/sync").get_json()
    worker()
    run = api.get(f"/api/v1/sync-runs/{run['id']}").get_json()
    assert run["status"] == "succeeded" and run["counts"]["added"] == 22
    assert run["problems"][0]["message"] == NO_LINK

    feeds = []
    for fmt in FORMATS:
        response = api.post("/api/v1/feeds", json={"name": fmt, "slug": fmt.replace("_", "-"), "format": fmt,
                                                   "source_ids": [source.id]})
        assert response.status_code == 201, response.get_json()
        feeds.append(response.get_json())
    for fmt, feed, build in zip(FORMATS, feeds, _build_all(api, worker, feeds), strict=True):
        assert build["status"] == "held", (fmt, build)
        assert build["counts"]["written"] == 0 and build["counts"]["skipped"] == 22
        assert NO_LINK in build["error"], build["error"]
        shown = api.get(f"/api/v1/feeds/{feed['id']}").get_json()
        assert shown["published_build"] is None and shown["last_build"]["status"] == "held"
        served = client.get(feed["url"].replace("http://localhost", ""))
        assert served.status_code == 404, (fmt, served.data[:200])  # not an empty file

    updated = api.patch(f"/api/v1/sources/{source.id}", json={"options": {"store_url": "https://shop.example"}})
    assert updated.status_code == 200 and "warnings" not in updated.get_json()
    run = api.post(f"/api/v1/sources/{source.id}/sync").get_json()
    worker()
    run = api.get(f"/api/v1/sync-runs/{run['id']}").get_json()
    assert run["status"] == "succeeded" and run["counts"]["updated"] == 22
    assert not [p for p in run["problems"] if "product URL" in p["message"]]
    for fmt, feed, build in zip(FORMATS, feeds, _build_all(api, worker, feeds), strict=True):
        assert build["status"] == "succeeded" and build["error"] is None, (fmt, build)
        assert build["counts"]["written"] == 22 and build["counts"]["skipped"] == 0
        served = client.get(feed["url"].replace("http://localhost", ""))
        assert served.status_code == 200 and _items(fmt, served.data) == 22
        assert b"https://shop.example/?post_type=product&amp;p=" in served.data or \
            b"https://shop.example/?post_type=product&p=" in served.data


def _push(count: int, priced: int) -> int:
    upserts = [{"external_id": f"P{i}", "title": f"Product {i}", "description": f"About {i}",
                "link": f"https://s.example/p/{i}", "image_link": f"https://s.example/i/{i}.png",
                **({"price": 10 + i} if i < priced else {})} for i in range(count)]
    run, _ = apply_push(ProductPush(upserts=upserts))
    return run.source_id




def test_a_gutted_first_build_is_held_with_its_causes(app, db, client):
    from webapp.schemas.feeds import FeedCreate
    from webapp.services.publishing.feeds import create_feed

    feed = create_feed(FeedCreate(name="Google", slug="google", format="google_rss", source_ids=[_push(10, 2)]))
    build = build_now(feed)
    assert build.status == "held" and feed.published_build_id is None
    assert (build.items_written, build.items_skipped) == (2, 8)
    assert "skipped 8 of the 10 products" in build.error and "(80%, limit 50%)" in build.error
    assert "8 products have no price: " in build.error
    assert client.get(f"/feeds/{feed.token}/google.xml").status_code == 404


def test_skips_within_the_loss_share_publish(app, db):
    from webapp.schemas.feeds import FeedCreate
    from webapp.services.publishing.feeds import create_feed

    feed = create_feed(FeedCreate(name="Google", slug="google", format="google_rss", source_ids=[_push(10, 6)]))
    build = build_now(feed)
    assert build.status == "succeeded" and build.items_written == 6 and feed.published_build_id == build.id


def test_a_feed_whose_rules_leave_nothing_is_held(app, db):
    from webapp.schemas.feeds import FeedCreate
    from webapp.services.publishing.feeds import create_feed

    feed = create_feed(FeedCreate(name="K", slug="k", format="klaviyo_json", source_ids=[_push(3, 3)],
                                  rules=[{"action": "include", "field": "external_id", "op": "in",
                                          "value": ["nope"]}]))
    build = build_now(feed)
    assert build.status == "held" and "its sources and rules give no product" in build.error


def test_shopify_source_without_store_url_warns_on_create_and_update(api, db):
    created = api.post("/api/v1/sources", json={"name": "Shop", "kind": "shopify",
                                                "location": "https://shop.example/products.json"})
    assert created.status_code == 201
    assert created.get_json()["warnings"][0]["path"] == "options.store_url"
    source_id = created.get_json()["id"]
    renamed = api.patch(f"/api/v1/sources/{source_id}", json={"name": "Shop 2"})
    assert renamed.status_code == 200 and renamed.get_json()["warnings"][0]["path"] == "options.store_url"
    assert "warnings" not in api.get(f"/api/v1/sources/{source_id}").get_json()
    fixed = api.patch(f"/api/v1/sources/{source_id}", json={"options": {"store_url": "https://shop.example"}})
    assert fixed.status_code == 200 and "warnings" not in fixed.get_json()
    csv_source = api.post("/api/v1/sources", json={"name": "CSV", "kind": "csv"})
    assert csv_source.status_code == 201 and "warnings" not in csv_source.get_json()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Source)) == 2


def test_openapi_documents_source_warnings_and_held_builds(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    warnings = schemas["SourceOut"]["properties"]["warnings"]
    assert "store_url" in warnings["description"]
    assert "WarningItem" in json.dumps(warnings)
    assert set(schemas["WarningItem"]["required"]) == {"path", "message"}
    assert "held" in schemas["FeedBuildOut"]["properties"]["status"]["description"]
