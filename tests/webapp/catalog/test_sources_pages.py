"""Sources dashboard: list, create/edit with uploads and URLs, mapping preview, sync, progress, failures."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_token
from tests.fixtures import WOOCOMMERCE_SAMPLE
from webapp.models import Product, Source, SyncRun
from webapp.services.catalog.source_queries import schedule_text
from webapp.services.platform.crypto import decrypt_json
from webapp.services.platform.progress import set_progress

HTMX = {"HX-Request": "true"}
WOO_SAMPLE = WOOCOMMERCE_SAMPLE
PASSWORD = "feed-pass-never-shown-93"
TOKEN = "tok-never-shown-5521"
# Column names the detector does not know for the id and price: the user maps them.
SMALL_CSV = ("code;name;cost;picture;group;qty\n"
             "A-1;Blue Mug;12,50;https://shop.example/i/a1.jpg;Kitchen > Mugs;4\n"
             "A-2;Red Mug;9,90;https://shop.example/i/a2.jpg;Kitchen > Mugs;0\n"
             "A-3;;5;;Kitchen;1\n")


class _Store(BaseHTTPRequestHandler):
    """Serves `routes[path] = (status, body)`; /private/* needs basic auth or the header token."""

    routes: dict[str, tuple[int, bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802
        status, body = self.routes.get(self.path, (404, b"not found"))
        if self.path.startswith("/private/"):
            basic = self.headers.get("Authorization", "")
            expected = "Basic " + base64.b64encode(f"feeds:{PASSWORD}".encode()).decode()
            if basic != expected and self.headers.get("X-Feed-Token") != TOKEN:
                status, body = 401, b"who are you?"
        self.send_response(status)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def store() -> Iterator[tuple[str, dict[str, tuple[int, bytes]]]]:
    routes: dict[str, tuple[int, bytes]] = {}
    handler = type("Handler", (_Store,), {"routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", routes
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _form(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {"name": "Catalog", "kind": "csv", "via": "upload", "schedule": "0 2 * * *",
                               "timezone": "UTC", "enabled": "1"}
    data.update(overrides)
    return data


def _create(client, **overrides):  # noqa: ANN001, ANN202
    data = _form(**overrides)
    data["csrf_token"] = csrf_token(client, "/sources/new")
    return client.post("/sources/new", data=data, content_type="multipart/form-data")


def _upload(content: str | bytes, name: str = "products.csv") -> tuple[io.BytesIO, str]:
    return io.BytesIO(content.encode() if isinstance(content, str) else content), name


def _post(client, path: str, data: dict | None = None, **kwargs):  # noqa: ANN001, ANN202
    return client.post(path, data={"csrf_token": csrf_token(client, "/sources/"), **(data or {})}, **kwargs)


def _work(worker, db) -> None:  # noqa: ANN001
    """Drain the queues; the test shares its session with the pages, so forget what it had loaded."""
    worker()
    db.session.expire_all()


def _source(db) -> Source:  # noqa: ANN001
    return db.session.scalars(sa.select(Source).order_by(Source.id.desc())).first()


def test_empty_list_says_what_a_source_is(logged_in) -> None:  # noqa: ANN001
    page = logged_in.get("/sources/").get_data(as_text=True)
    assert "No sources yet" in page and "Upload a file" in page and "Add a URL" in page
    assert 'aria-current="page">Sources' in page
    form = logged_in.get("/sources/new?via=url").get_data(as_text=True)
    assert 'name="via" value="url" checked' in form


def test_a_file_replaced_while_the_preview_reads_it_says_so(logged_in, db, monkeypatch) -> None:  # noqa: ANN001
    """A plain JSON file is opened more than once (its outline, then its items); a new upload between the two
    deletes the file the preview started with. The page says to open the preview again, never a 500."""
    from feeds.readers import json_reader

    export = b'{"products": [{"id": "1", "title": "Mug", "price": "5", "link": "https://shop.example/1"}]}'
    response = _create(logged_in, name="Mugs", kind="json", upload=_upload(export, "products.json"))
    assert response.status_code == 302
    source = _source(db)
    real_shape = json_reader.document_shape

    def shape_then_replaced(path: Path):  # noqa: ANN202
        shape = real_shape(path)
        path.unlink()  # what a new upload does to the file it replaces, once no sync reads it
        return shape

    monkeypatch.setattr(json_reader, "document_shape", shape_then_replaced)
    page = logged_in.get(f"/sources/{source.id}/mapping")
    assert page.status_code == 200
    assert "replaced while the preview read it" in page.get_data(as_text=True)


def test_upload_map_preview_and_save(logged_in, db) -> None:  # noqa: ANN001
    response = _create(logged_in, name="Mugs", upload=_upload(SMALL_CSV), **{"options.currency": "eur"})
    assert response.status_code == 302 and response.location.endswith("/mapping")
    source = _source(db)
    assert Path(source.upload_path).read_text() == SMALL_CSV and source.options == {"currency": "EUR"}

    page = logged_in.get(response.location).get_data(as_text=True)
    assert "semicolon" in page and "Not mapped yet: ID" in page
    assert '<option value="name" selected>' in page and '<option value="picture" selected>' in page

    mapping = {"map.external_id": "code", "map.title": "name", "map.price": "cost", "map.image_link": "picture",
               "map.categories": "group", "map.inventory_quantity": "qty"}
    preview = _post(logged_in, f"/sources/{source.id}/mapping/preview", mapping, headers=HTMX)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "<html" not in html
    assert "Blue Mug" in html and "12.50 EUR" in html and "https://shop.example/i/a1.jpg" in html
    assert "Mugs</span>" in html and "out (0)" in html
    assert "Row problems" in html and "no title" in html  # row A-3 has no name

    refused = _post(logged_in, f"/sources/{source.id}/mapping", {"map.title": "name"})
    assert refused.status_code == 422 and "Choose a column for ID" in refused.get_data(as_text=True)
    saved = _post(logged_in, f"/sources/{source.id}/mapping", mapping)
    assert saved.status_code == 302
    db.session.refresh(source)
    assert source.mapping == {"external_id": "code", "title": "name", "price": "cost", "image_link": "picture",
                              "categories": "group", "inventory_quantity": "qty"}
    again = logged_in.get(f"/sources/{source.id}/mapping").get_data(as_text=True)
    assert '<option value="code" selected>' in again and "Blue Mug" in again


def test_woocommerce_upload_sync_now_and_counts(logged_in, db, redis, worker) -> None:  # noqa: ANN001
    response = _create(logged_in, name="Woo", kind="woocommerce", upload=_upload(WOO_SAMPLE.read_bytes()),
                       **{"options.currency": "USD"})
    source = _source(db)
    page = logged_in.get(response.location).get_data(as_text=True)
    assert "Built-in mapping" in page and "Hoodie with Logo" in page and "45.00 USD" in page

    assert _post(logged_in, f"/sources/{source.id}/sync").status_code == 302
    assert redis.llen("rq:queue:sync") == 1
    detail = logged_in.get(f"/sources/{source.id}").get_data(as_text=True)
    assert "Waiting for a worker" in detail and 'hx-trigger="load delay:1s"' in detail
    polling = logged_in.get("/sources/", headers=HTMX).get_data(as_text=True)
    assert "<html" not in polling and 'hx-trigger="every 3s"' in polling  # the list refreshes while it runs
    twice = _post(logged_in, f"/sources/{source.id}/sync", follow_redirects=True).get_data(as_text=True)
    assert "is already queued" in twice and db.session.scalar(sa.select(sa.func.count()).select_from(SyncRun)) == 1

    _work(worker, db)
    run = db.session.scalars(sa.select(SyncRun)).one()
    assert run.status == "succeeded" and run.added == 22
    detail = logged_in.get(f"/sources/{source.id}").get_data(as_text=True)
    assert "22 products" in detail and "succeeded" in detail and "hx-trigger" not in detail
    assert ">22</td>" in detail  # the added column of the run history
    assert "every 3s" not in logged_in.get("/sources/").get_data(as_text=True)
    listing = logged_in.get("/sources/").get_data(as_text=True)
    assert "Woo" in listing and ">22<" in listing and "daily at 02:00 UTC" in listing and "succeeded" in listing
    history = logged_in.get(f"/sources/{source.id}/runs", headers=HTMX).get_data(as_text=True)
    assert "<html" not in history and f"#{run.id}" in history


def test_source_and_import_files_may_be_larger_than_an_api_body(app, logged_in, db) -> None:  # noqa: ANN001
    app.config["MAX_CONTENT_LENGTH"] = 2000  # the API cap; source and order-import uploads have their own
    rows = "id,title\n" + "".join(f"{i},Product number {i}\n" for i in range(500))
    assert _create(logged_in, upload=_upload(rows)).status_code == 302
    assert Path(_source(db).upload_path).stat().st_size == len(rows)
    token = csrf_token(logged_in, "/imports/")
    orders = "order_id,email,total\n" + "".join(f"o{i},c{i}@example.com,10\n" for i in range(200))
    imported = logged_in.post("/imports/", data={"csrf_token": token, "file": _upload(orders, "orders.csv")},
                              content_type="multipart/form-data")
    assert imported.status_code == 302, imported.get_data(as_text=True)[:300]
    other = logged_in.post(f"/sources/{_source(db).id}/sync", data={"csrf_token": token, "padding": "x" * 5000})
    assert other.status_code == 413  # every other form keeps the API cap


def test_form_errors_are_shown_next_to_fields(logged_in, db) -> None:  # noqa: ANN001
    response = _create(logged_in, name="", schedule="every night", timezone="Mars/Olympus")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "must not be empty" in page and "not a valid cron expression" in page and "choose the file" in page
    bad_url = _create(logged_in, via="url", location=f"https://feeds:{PASSWORD}@shop.example/p.csv")
    assert bad_url.status_code == 422 and "basic auth fields" in bad_url.get_data(as_text=True)
    assert PASSWORD not in bad_url.get_data(as_text=True)
    empty = _create(logged_in, upload=_upload(b""))
    assert empty.status_code == 422 and "the file is empty" in empty.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Source)) == 0


def test_url_source_with_credentials_previews_and_never_shows_them(logged_in, db, store) -> None:  # noqa: ANN001
    base, routes = store
    routes["/private/products.csv"] = (200, b"id,title,price,currency\n1,Lamp,20,EUR\n2,Desk,150,EUR\n")
    response = _create(logged_in, name="Protected", via="url", location=f"{base}/private/products.csv",
                       **{"credentials.username": "feeds", "credentials.password": PASSWORD})
    assert response.status_code == 302
    source = _source(db)
    assert decrypt_json(source.credentials_encrypted) == {"username": "feeds", "password": PASSWORD}
    mapping = logged_in.get(response.location).get_data(as_text=True)
    assert "Lamp" in mapping and "150.00 EUR" in mapping

    edit = {"name": "Protected", "via": "url", "location": f"{base}/private/products.csv", "schedule": "30 */6 * * *",
            "timezone": "Europe/Berlin", "credentials.header_name": "X-Feed-Token", "credentials.header_value": TOKEN}
    assert _post(logged_in, f"/sources/{source.id}/edit", edit).status_code == 302
    db.session.refresh(source)
    assert decrypt_json(source.credentials_encrypted) == {"header_name": "X-Feed-Token", "header_value": TOKEN}
    assert source.enabled is False and source.schedule == "30 */6 * * *"
    pages = [logged_in.get(path).get_data(as_text=True) for path in (
        "/sources/", f"/sources/{source.id}", f"/sources/{source.id}/edit", f"/sources/{source.id}/mapping?refresh=1")]
    assert "every 6 hours at :30 Europe/Berlin" in pages[0] and "header token saved" in pages[1]
    assert "Desk" in pages[3]
    for page in pages:
        assert PASSWORD not in page and TOKEN not in page

    cleared = dict(edit, **{"credentials.clear": "1", "enabled": "1"})
    _post(logged_in, f"/sources/{source.id}/edit", cleared)
    db.session.refresh(source)
    assert source.credentials_encrypted is None and source.enabled is True


def test_failed_sync_keeps_the_catalog_and_says_so(logged_in, db, store, worker) -> None:  # noqa: ANN001
    base, routes = store
    routes["/feed.csv"] = (200, b"id,title,price\n1,Lamp,20\n2,Desk,150\n")
    _create(logged_in, name="Remote", via="url", location=f"{base}/feed.csv")
    source = _source(db)
    _post(logged_in, f"/sources/{source.id}/sync")
    _work(worker, db)
    routes["/feed.csv"] = (500, b"database is down")
    _post(logged_in, f"/sources/{source.id}/sync")
    _work(worker, db)
    run = db.session.scalars(sa.select(SyncRun).order_by(SyncRun.id.desc())).first()
    assert run.status == "failed" and "HTTP 500" in run.error
    page = logged_in.get(f"/sources/{source.id}").get_data(as_text=True)
    assert "The last sync failed" in page and "The previous catalog was kept" in page
    assert "HTTP 500" in page and "2 products" in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Product)) == 2
    assert "HTTP 500" in logged_in.get("/sources/").get_data(as_text=True)


def test_held_sync_asks_for_confirmation(logged_in, db, worker, redis) -> None:  # noqa: ANN001
    rows = "id,title\n" + "".join(f"{i},Item {i}\n" for i in range(10))
    _create(logged_in, name="Shrinking", upload=_upload(rows))
    source = _source(db)
    _post(logged_in, f"/sources/{source.id}/sync")
    _work(worker, db)
    replace = {"name": "Shrinking", "via": "upload", "schedule": "0 2 * * *", "timezone": "UTC", "enabled": "1",
               "upload": _upload("id,title\n1,Item 1\n")}
    assert _post(logged_in, f"/sources/{source.id}/edit", replace, content_type="multipart/form-data").status_code == 302
    _post(logged_in, f"/sources/{source.id}/sync")
    _work(worker, db)
    page = logged_in.get(f"/sources/{source.id}").get_data(as_text=True)
    assert "needs your confirmation" in page and "Sync and allow removals" in page and "10 products" in page
    _post(logged_in, f"/sources/{source.id}/sync", {"confirm_removals": "1"})
    run = db.session.scalars(sa.select(SyncRun).order_by(SyncRun.id.desc())).first()
    assert run.confirm_removals is True and run.status == "queued"
    _work(worker, db)
    db.session.refresh(source)
    assert source.product_count == 1
    assert "Sync and allow removals" not in logged_in.get(f"/sources/{source.id}").get_data(as_text=True)


def test_progress_fragment_polls_while_running_and_stops(logged_in, db) -> None:  # noqa: ANN001
    _create(logged_in, upload=_upload("id,title\n1,A\n"))
    source = _source(db)
    run = SyncRun(source_id=source.id, status="running", trigger="manual", problems=[])
    db.session.add(run)
    db.session.commit()
    set_progress("sync", run.id, 500, 1000)
    url = f"/sources/{source.id}/runs/{run.id}/progress"
    fragment = logged_in.get(url, headers=HTMX).get_data(as_text=True)
    assert "<html" not in fragment and "500</strong> of 1,000 rows read" in fragment and "50.0%" in fragment
    assert f'hx-get="{url}"' in fragment and 'hx-trigger="load delay:1s"' in fragment
    assert "500</strong> of 1,000" in logged_in.get(f"/sources/{source.id}").get_data(as_text=True)

    run.status, run.rows_read, run.added = "succeeded", 1000, 990
    run.finished_at = run.started_at = db.func.now()
    db.session.commit()
    finished = logged_in.get(url, headers=HTMX).get_data(as_text=True)
    assert "hx-trigger" not in finished and "hx-get" not in finished and "1,000 rows read" in finished
    assert "+990" in finished


def test_run_detail_lists_row_problems(logged_in, db, worker) -> None:  # noqa: ANN001
    _create(logged_in, upload=_upload("id,title,price\n1,Good,5\n2,,5\n3,Bad price,abc\n"))
    source = _source(db)
    _post(logged_in, f"/sources/{source.id}/sync")
    _work(worker, db)
    run = db.session.scalars(sa.select(SyncRun)).one()
    page = logged_in.get(f"/sources/{source.id}/runs/{run.id}").get_data(as_text=True)
    assert run.skipped == 2 and "Row problems" in page and "no title" in page and "price" in page
    assert logged_in.get(f"/sources/{source.id}/runs/999").status_code == 404


def test_push_source_shows_the_api_call(logged_in, db) -> None:  # noqa: ANN001
    response = _create(logged_in, name="Pushed", kind="push")
    source = _source(db)
    assert response.location.endswith(f"/sources/{source.id}")
    page = logged_in.get(response.location).get_data(as_text=True)
    assert "/api/v1/products" in page and f'"source_id": {source.id}' in page and "Sync now" not in page
    assert logged_in.get(f"/sources/{source.id}/mapping").status_code == 302
    assert "pushed by your store" in logged_in.get("/sources/").get_data(as_text=True)


def test_delete_asks_first(logged_in, db) -> None:  # noqa: ANN001
    _create(logged_in, name="Old", upload=_upload("id,title\n1,A\n"))
    source = _source(db)
    path = Path(source.upload_path)
    assert "Delete Old?" in logged_in.get(f"/sources/{source.id}/delete").get_data(as_text=True)
    assert _post(logged_in, f"/sources/{source.id}/delete").status_code == 302
    assert db.session.get(Source, source.id) is None and not path.exists()


@pytest.mark.parametrize(("expression", "timezone", "text"), [
    ("0 2 * * *", "UTC", "daily at 02:00 UTC"),
    ("15 6 * * 1", "Europe/Berlin", "every Monday at 06:15 Europe/Berlin"),
    ("0 3 1 * *", "UTC", "monthly on day 1 at 03:00 UTC"),
    ("5 * * * *", "UTC", "hourly at :05"),
    ("*/15 * * * *", "UTC", "every 15 minutes"),
    ("0 2 * 1 *", "UTC", "cron 0 2 * 1 * (UTC)"),
])
def test_schedule_in_words(expression: str, timezone: str, text: str) -> None:
    assert schedule_text(expression, timezone) == text


def test_a_password_inside_an_api_set_url_is_never_shown(logged_in, api, db) -> None:  # noqa: ANN001
    response = api.post("/api/v1/sources", json={
        "name": "Via API", "kind": "csv", "location": f"http://feeds:{PASSWORD}@127.0.0.1:9/p.csv"})
    source_id = response.get_json()["id"]
    for path in ("/sources/", f"/sources/{source_id}", f"/sources/{source_id}/edit", f"/sources/{source_id}/mapping"):
        page = logged_in.get(path).get_data(as_text=True)
        assert PASSWORD not in page, path
    assert "http://127.0.0.1:9/p.csv" in logged_in.get(f"/sources/{source_id}").get_data(as_text=True)
    # The user and password moved from the URL into the encrypted credentials (no column holds them in plain text).
    source = db.session.get(Source, source_id)
    assert source.location == "http://127.0.0.1:9/p.csv"
    assert decrypt_json(source.credentials_encrypted) == {"username": "feeds", "password": PASSWORD}
    # (port 9 refuses: the mapping page shows the fetch error, redacted.) Saving the edit form as shown keeps them.
    edit = {"name": "Via API", "via": "url", "location": "http://127.0.0.1:9/p.csv", "schedule": "0 2 * * *",
            "timezone": "UTC", "enabled": "1"}
    assert _post(logged_in, f"/sources/{source_id}/edit", edit).status_code == 302
    db.session.expire_all()
    source = db.session.get(Source, source_id)
    assert source.location == "http://127.0.0.1:9/p.csv"
    assert decrypt_json(source.credentials_encrypted) == {"username": "feeds", "password": PASSWORD}
