"""Feed builds and the public feed URL: publish gate, atomic publish, ETag/304/HEAD/gzip, auth, fetch log."""

import gzip
import threading

import pytest
import sqlalchemy as sa
from lxml import etree

from tests.webapp.publishing.feed_helpers import buffered_clients, build_now  # noqa: F401 - autouse
from webapp.models import FeedBuild, FeedFetch, Product
from webapp.schemas.canonical.products import ProductPush
from webapp.schemas.feeds import FeedCreate
from webapp.services.catalog.product_push import apply_push
from webapp.services.publishing.builds import run_build
from webapp.services.publishing.feeds import create_feed, feed_json


def _push(count, start=0, **extra):
    upserts = [{"external_id": f"P{i}", "title": f"Product {i}", "description": f"About {i}",
                "link": f"https://s.example/p/{i}", "image_link": f"https://s.example/i/{i}.png",
                "price": 10 + i, "categories": ["Mugs"], "inventory_quantity": 3} | extra
               for i in range(start, start + count)]
    run, _ = apply_push(ProductPush(upserts=upserts))
    return run.source_id


def _feed(source_id, fmt="klaviyo_xml", **extra):
    return create_feed(FeedCreate(name="Main", slug="main", format=fmt, source_ids=[source_id], **extra))




def test_build_publishes_and_serves_with_conditional_get(app, client, db):
    feed = _feed(_push(5))
    build = build_now(feed)
    assert build.status == "succeeded" and build.items_written == 5
    url = feed_json(feed)["url"]
    assert url == f"/feeds/{feed.token}/main.xml"
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/xml")
    root = etree.fromstring(response.data)
    assert [p.findtext("id") for p in root.findall("Product")] == [f"P{i}" for i in range(5)]
    etag = response.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith('W/')
    assert int(response.headers["Content-Length"]) == len(response.data)
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(url, headers={"If-Modified-Since": response.headers["Last-Modified"]}).status_code == 304
    head = client.head(url)
    assert head.status_code == 200 and head.data == b"" and head.headers["Content-Length"] == str(len(response.data))
    zipped = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip" and zipped.headers["ETag"] != etag
    assert gzip.decompress(zipped.data) == response.data
    fetches = db.session.scalars(sa.select(FeedFetch).order_by(FeedFetch.id)).all()
    assert [f.status for f in fetches] == [200, 304, 304, 200, 200]
    assert fetches[0].bytes == len(response.data) and fetches[3].method == "HEAD"


def test_unknown_token_and_never_built_are_404(app, client):
    feed = _feed(_push(2))
    assert client.get("/feeds/nope/main.xml").status_code == 404
    response = client.get(f"/feeds/{feed.token}/main.xml")
    assert response.status_code == 404
    assert "not been published" in response.get_json()["errors"][0]["message"]


def test_basic_auth(app, client):
    feed = _feed(_push(2), basic_auth={"username": "klaviyo", "password": "s3cret-pass"})
    build_now(feed)
    url = f"/feeds/{feed.token}/main.xml"
    assert client.get(url).status_code == 401
    assert client.get(url, auth=("klaviyo", "wrong-pass")).status_code == 401
    assert client.get(url, auth=("klaviyo", "s3cret-pass")).status_code == 200


def test_token_rotation_moves_the_url(app, client, api):
    feed = _feed(_push(2))
    build_now(feed)
    old = f"/feeds/{feed.token}/main.xml"
    assert client.get(old).status_code == 200
    rotated = api.post(f"/api/v1/feeds/{feed.id}/rotate-token").get_json()
    assert client.get(old).status_code == 404
    assert client.get(rotated["url"].replace("http://localhost", "")).status_code == 200


def test_publish_gate_holds_a_build_that_lost_most_items(app, client, db):
    source_id = _push(10)
    feed = _feed(source_id, rules=[{"action": "exclude", "field": "title", "op": "contains", "value": "zzz"}])
    first = build_now(feed)
    feed.rules = [{"action": "include", "field": "external_id", "op": "in", "value": ["P1", "P2"]}]
    db.session.commit()
    held = build_now(feed)
    assert held.status == "held" and "fewer than the published" in held.error
    body = client.get(f"/feeds/{feed.token}/main.xml").data
    assert body.count(b"<Product>") == 10  # still the previous good build
    assert feed.published_build_id == first.id


def test_split_parts_are_each_complete_documents(app, client):
    app.config["FEED_SPLIT_BYTES"] = 2000
    feed = _feed(_push(30))
    build = build_now(feed)
    assert len(build.parts) > 2
    total = 0
    for part in build.parts:
        response = client.get(f"/feeds/{feed.token}/{part['name']}")
        total += len(etree.fromstring(response.data).findall("Product"))
    assert total == 30


def test_reader_during_a_build_gets_the_old_complete_file(app, client, db):
    source_id = _push(50)
    feed = _feed(source_id)
    build_now(feed)
    before = client.get(f"/feeds/{feed.token}/main.xml").data
    _push(50, start=50)
    seen = []
    stop = threading.Event()

    url = f"/feeds/{feed.token}/main.xml"

    def read_all_the_time():
        with app.app_context():
            reader = app.test_client()
            while not stop.is_set():
                seen.append(reader.get(url).data)

    thread = threading.Thread(target=read_all_the_time)
    thread.start()
    try:
        build_now(feed)
    finally:
        stop.set()
        thread.join()
    for body in seen:
        assert body in (before,) or body.count(b"<Product>") == 100
        etree.fromstring(body)  # never half a document
    assert client.get(f"/feeds/{feed.token}/main.xml").data.count(b"<Product>") == 100


def test_build_via_api_and_worker_and_sync_triggers_rebuild(app, api, db, worker):
    source_id = _push(3)
    feed = _feed(source_id, fmt="google_rss")
    response = api.post(f"/api/v1/feeds/{feed.id}/build")
    assert response.status_code == 202
    assert api.post(f"/api/v1/feeds/{feed.id}/build").status_code == 409
    worker(["feeds"])
    body = api.get(f"/api/v1/feeds/{feed.id}").get_json()
    assert body["published_build"]["counts"]["written"] == 3
    _push(1, start=3)  # a catalog change queues a rebuild of the feeds that draw on the source
    worker(["feeds"])
    assert db.session.scalars(sa.select(FeedBuild).order_by(FeedBuild.id.desc())).first().items_written == 4
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Product)) == 4


def test_a_stopping_worker_interrupts_a_build_and_the_published_file_stays(app, client, db):
    """Warm shutdown: the build stops at its next progress report, publishes nothing and is queued again."""
    from workers import shutdown

    feed = _feed(_push(3))
    assert build_now(feed).status == "succeeded"
    url = feed_json(feed)["url"]
    published = client.get(url).data
    _push(2, start=3)  # the catalog changes; the next build would publish 5 items
    shutdown.request()
    try:
        build = build_now(feed)
    finally:
        shutdown.reset()
    assert build.status == "failed" and "worker was shutting down" in build.error and "queued again" in build.error
    assert client.get(url).data == published
    again = db.session.scalars(sa.select(FeedBuild).where(FeedBuild.feed_id == feed.id)
                               .order_by(FeedBuild.id.desc())).first()
    assert again.status == "queued" and again.id != build.id
    assert run_build(again.id).status == "succeeded"
    assert len(etree.fromstring(client.get(url).data).findall("Product")) == 5


@pytest.mark.parametrize(("accept", "encoding"), [
    ("gzip", "gzip"),
    ("gzip;q=0", None),  # refused: the plain file
    ("GZIP;Q=0", None),
    ("gzip;q=0, *;q=1", None),  # an explicit entry wins over the wildcard
    ("*;q=0, identity", None),
    ("gzip;q=0.5, identity;q=1", None),  # identity preferred: RFC 9110 q-values are the client's order
    ("gzip;q=1, identity;q=0.5", "gzip"),
    ("gzip;q=0.5", "gzip"),  # an unlisted identity is acceptable, but the last choice
    ("*", "gzip"),
    ("x-gzip", "gzip"),
    ("br, deflate", None),
    ("gzip;q=0.5, identity;q=0.5", "gzip"),  # a tie: the smaller one
    ("", None),
])
def test_accept_encoding_q_values_pick_the_representation(app, client, accept, encoding):
    feed = _feed(_push(3))
    build_now(feed)
    url = feed_json(feed)["url"]
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    response = client.get(url, headers={"Accept-Encoding": accept})
    assert response.status_code == 200
    assert response.headers.get("Content-Encoding") == encoding
    assert "Accept-Encoding" in response.headers["Vary"]
    body = gzip.decompress(response.data) if encoding == "gzip" else response.data
    assert body == plain.data
    same = response.headers["ETag"] == plain.headers["ETag"]
    assert same == (encoding is None)  # each representation keeps its own strong ETag
    assert client.get(url, headers={"Accept-Encoding": accept, "If-None-Match": response.headers["ETag"]}
                      ).status_code == 304


@pytest.mark.parametrize("accept", ["identity;q=0", "*;q=0", "gzip;q=0, identity;q=0", "br, identity;q=0"])
def test_accept_encoding_refusing_everything_on_offer_is_406(app, client, accept):
    """identity refused and gzip not listed (a present header lists what is acceptable): nothing to send."""
    feed = _feed(_push(3))
    build_now(feed)
    response = client.get(feed_json(feed)["url"], headers={"Accept-Encoding": accept})
    assert response.status_code == 406 and "Accept-Encoding" in response.headers["Vary"]
    ok = client.get(feed_json(feed)["url"], headers={"Accept-Encoding": "gzip, identity;q=0"})
    assert ok.status_code == 200 and ok.headers["Content-Encoding"] == "gzip"
