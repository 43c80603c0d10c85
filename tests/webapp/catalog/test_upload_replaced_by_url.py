"""A source fed by an uploaded file that is switched to a URL (API PATCH or the dashboard's edit form) loses the
upload and its unpacked copy once the change is saved: the file is the store's whole product export. A refused
change keeps it, and a sync already reading it finishes with it (the file goes when that sync ends)."""

from __future__ import annotations

import gzip
import io
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import both_databases, csrf_token
from webapp.models import Product, Source, SyncRun, utcnow
from webapp.services.catalog import sync as catalog_sync
from webapp.services.catalog.orphaned_runs import GRACE, fail_orphaned_runs
from webapp.services.catalog.sync import request_sync, run_sync

UPLOADED = (b"id,title,price,currency,link\n1,Lamp,20,EUR,https://shop.example/1\n"
            b"2,Desk,150,EUR,https://shop.example/2\n3,Chair,45,EUR,https://shop.example/3\n")
AT_URL = UPLOADED + b"9,Sofa,900,EUR,https://shop.example/9\n"  # the same export, one product more
EDIT = {"name": "Export", "schedule": "0 2 * * *", "timezone": "UTC", "enabled": "1"}


def _upload_source(client: FlaskClient, db) -> Source:  # noqa: ANN001
    """A CSV source created on the dashboard with a gzipped upload (read from a copy unpacked beside it)."""
    data = {**EDIT, "csrf_token": csrf_token(client, "/sources/new"), "kind": "csv", "via": "upload",
            "upload": (io.BytesIO(gzip.compress(UPLOADED)), "products.csv.gz")}
    assert client.post("/sources/new", data=data, content_type="multipart/form-data").status_code == 302
    return db.session.scalars(sa.select(Source)).one()


def _sync(source: Source):  # noqa: ANN202
    run = run_sync(request_sync(source, enqueue=False).id)
    assert run.status == "succeeded", run.error
    return run


def _files(app: Flask, source: Source) -> set[str]:
    """The source's upload and its unpacked copies."""
    return {path.name for path in Path(app.config["UPLOADS_DIR"]).iterdir()
            if path.name.startswith(f"source-{source.id}-upload")}


def _external_ids(db, source: Source) -> set[str]:  # noqa: ANN001
    return set(db.session.scalars(sa.select(Product.external_id).where(Product.source_id == source.id)))


def _by_api(client: FlaskClient, source: Source, location: str, **extra: object) -> int:
    return client.patch(f"/api/v1/sources/{source.id}", json={"location": location, **extra}).status_code


def _by_form(client: FlaskClient, source: Source, location: str, **extra: object) -> int:
    data = {**EDIT, **extra, "csrf_token": csrf_token(client, f"/sources/{source.id}/edit"), "via": "url",
            "location": location}
    return client.post(f"/sources/{source.id}/edit", data=data, content_type="multipart/form-data").status_code


@contextmanager
def _sync_held_at_its_read(app: Flask, source: Source, monkeypatch) -> Iterator[dict]:  # noqa: ANN001
    """A sync of the source running in a thread, held once it has taken the file's path and before it opens it;
    the body runs then. Yields what the sync reports: `path` at once, `run` (status, error, added) once the
    body is done and the sync finished."""
    run_id = request_sync(source, enqueue=False).id
    holding, resume, outcome = threading.Event(), threading.Event(), {}
    real_read = catalog_sync.read_products

    def read_later(kind: str, path: Path, **kwargs: object):  # noqa: ANN202
        outcome["path"] = path
        holding.set()
        assert resume.wait(60), "the test never let the sync go on"
        return real_read(kind, path, **kwargs)

    def sync_in_worker() -> None:
        with app.app_context():
            try:
                run = run_sync(run_id)
                outcome["run"] = (run.status, run.error, run.added)
            except BaseException as exc:  # noqa: BLE001 - reported below
                outcome["error"] = exc

    monkeypatch.setattr(catalog_sync, "read_products", read_later)
    worker = threading.Thread(target=sync_in_worker, daemon=True)
    worker.start()
    try:
        assert holding.wait(30), "the sync never reached its read"
        yield outcome
    finally:
        resume.set()
        worker.join(60)
        monkeypatch.setattr(catalog_sync, "read_products", real_read)
    assert not worker.is_alive() and "error" not in outcome, outcome.get("error")
    outcome["run_id"] = run_id


SWITCHES: dict[str, tuple[Callable[..., int], int]] = {"api": (_by_api, 200), "form": (_by_form, 302)}


@both_databases
@pytest.mark.parametrize("via", SWITCHES)
def test_switching_to_a_url_deletes_the_upload_and_its_unpacked_copy(app, db, logged_in, api, http_server,  # noqa: ANN001
                                                                     via: str) -> None:
    source = _upload_source(logged_in, db)
    _sync(source)
    upload = Path(source.upload_path)
    assert upload.name in _files(app, source) and len(_files(app, source)) == 2  # the .gz and its unpacked copy
    switch, saved = SWITCHES[via]
    assert "Saving a URL deletes the uploaded file" in logged_in.get(f"/sources/{source.id}/edit").get_data(as_text=True)

    assert switch(logged_in, source, http_server.route("/products.csv", AT_URL)) == saved
    db.session.expire_all()
    assert _files(app, source) == set() and not upload.exists()
    assert "Saving a URL deletes" not in logged_in.get(f"/sources/{source.id}/edit").get_data(as_text=True)
    assert source.upload_path is None and source.location.endswith("/products.csv")
    assert api.get(f"/api/v1/sources/{source.id}").get_json()["uploaded"] is False
    assert _sync(source).added == 1  # now read from the URL
    assert _external_ids(db, source) == {"1", "2", "3", "9"} and _files(app, source) == set()


@both_databases
@pytest.mark.parametrize("via", SWITCHES)
@pytest.mark.parametrize(("location", "extra"), [
    ("ftp://shop.example/products.csv", {}),  # not an http(s) URL: refused by the body's validation
    ("https://shop.example/products.csv", {"timezone": "Mars/Olympus"}),  # refused by the service (time zone)
], ids=["bad-url", "bad-timezone"])
def test_a_refused_switch_keeps_the_upload(app, db, logged_in, api, via: str, location: str,  # noqa: ANN001
                                           extra: dict[str, str]) -> None:
    source = _upload_source(logged_in, db)
    _sync(source)
    before = _files(app, source)
    switch, _ = SWITCHES[via]

    assert switch(logged_in, source, location, **extra) == 422
    db.session.expire_all()
    assert _files(app, source) == before and gzip.decompress(Path(source.upload_path).read_bytes()) == UPLOADED
    assert source.location is None and api.get(f"/api/v1/sources/{source.id}").get_json()["uploaded"] is True
    db.session.expire_all()
    _sync(source)  # the upload still feeds it
    assert _external_ids(db, source) == {"1", "2", "3"}


@both_databases
@pytest.mark.parametrize("via", SWITCHES)
def test_a_sync_reading_the_upload_finishes_with_it_and_the_file_goes_after(app, db, logged_in, api,  # noqa: ANN001
                                                                            http_server, monkeypatch, via: str) -> None:
    source = _upload_source(logged_in, db)
    upload = Path(source.upload_path)
    with _sync_held_at_its_read(app, source, monkeypatch) as outcome:  # the switch happens before the read
        assert outcome["path"] == upload
        switch, saved = SWITCHES[via]
        assert switch(logged_in, source, http_server.route("/products.csv", AT_URL)) == saved
        db.session.expire_all()
        assert source.upload_path is None and source.location.endswith("/products.csv")
        assert upload.is_file(), "the running sync still reads the upload: it must stay until the sync ends"
    assert outcome["run"] == ("succeeded", None, 3)  # the whole upload, read after the switch was saved
    db.session.expire_all()
    assert _external_ids(db, source) == {"1", "2", "3"} and source.product_count == 3
    assert _files(app, source) == set(), "the sync that held the upload deletes it (and its unpacked copy)"
    assert db.session.get(SyncRun, outcome["run_id"]).status == "succeeded"
    assert _sync(source).added == 1  # the next sync reads the URL
    assert _external_ids(db, source) == {"1", "2", "3", "9"}


@both_databases
def test_the_upload_of_a_sync_whose_worker_died_goes_when_the_sweeper_fails_it(app, db, logged_in, api,  # noqa: ANN001
                                                                               redis, http_server) -> None:
    source = _upload_source(logged_in, db)
    upload = Path(source.upload_path)
    db.session.add(SyncRun(source_id=source.id, status="running", phase="reading", trigger="manual",
                           job_id="sync-run-dead", started_at=utcnow() - GRACE * 2, problems=[]))
    db.session.commit()
    assert _by_api(logged_in, source, http_server.route("/products.csv", AT_URL)) == 200
    assert upload.is_file()  # the run still looks like it is reading it

    assert fail_orphaned_runs(redis, wait=lambda _seconds: None) == {"sync_runs": 1}
    assert _files(app, source) == set()


NEWER = UPLOADED + b"7,Rug,80,EUR,https://shop.example/7\n"


def _reupload(client: FlaskClient, source: Source, content: bytes, name: str) -> int:
    data = {**EDIT, "csrf_token": csrf_token(client, f"/sources/{source.id}/edit"), "via": "upload",
            "upload": (io.BytesIO(content), name)}
    return client.post(f"/sources/{source.id}/edit", data=data, content_type="multipart/form-data").status_code


@both_databases
def test_a_new_upload_during_a_sync_never_changes_the_file_that_sync_reads(app, db, logged_in,  # noqa: ANN001
                                                                            monkeypatch) -> None:
    """The sync has taken the old upload's path (a .gz, read from its unpacked copy); a new file is uploaded
    before it opens it. The sync reads the old export whole (not the new file under the old name, not a deleted
    copy), both files stay until it ends, then only the new one is left, and the next sync reads it."""
    source = _upload_source(logged_in, db)
    _sync(source)
    old = Path(source.upload_path)
    with _sync_held_at_its_read(app, source, monkeypatch) as outcome:
        assert _reupload(logged_in, source, gzip.compress(NEWER), "products.csv.gz") == 302
        db.session.expire_all()
        new = Path(source.upload_path)
        assert new != old and new.is_file() and old.is_file() and outcome["path"] == old
    assert outcome["run"] == ("succeeded", None, 0)
    db.session.expire_all()
    assert _external_ids(db, source) == {"1", "2", "3"}  # what the run started with, unchanged
    assert _files(app, source) == {new.name}, "the replaced upload and its unpacked copy go when the sync ends"
    assert _sync(source).added == 1
    assert _external_ids(db, source) == {"1", "2", "3", "7"}
