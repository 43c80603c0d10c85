"""Uploaded (and downloaded) source files leave nothing behind: a compressed upload is read from a copy unpacked
beside it, and that copy goes with the source, and with the file when a new one is uploaded."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from tests.conftest import csrf_token
from webapp.models import Source
from webapp.schemas.sources import SourceCreate
from webapp.services.catalog.sources import create_source, delete_source, save_upload, source_files
from webapp.services.catalog.sync import request_sync, run_sync

CSV = b"id,title,price,currency,link\n1,Lamp,20,EUR,https://shop.example/1\n2,Desk,150,EUR,https://shop.example/2\n"


def _zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def _source(name: str = "Catalog") -> Source:
    return create_source(SourceCreate(name=name, kind="csv"))


def _sync(source: Source) -> None:
    run = run_sync(request_sync(source, enqueue=False).id)
    assert run.status == "succeeded", run.error


def _names(app: Flask) -> set[str]:
    return {path.name for path in Path(app.config["UPLOADS_DIR"]).iterdir()}


def _unpacked(app: Flask) -> set[str]:
    return {name for name in _names(app) if name.endswith(".unpacked")}


def test_deleting_a_source_deletes_its_upload_and_the_unpacked_copy(app, db) -> None:  # noqa: ANN001
    source = _source()
    save_upload(source, "products.csv.gz", io.BytesIO(gzip.compress(CSV)))
    _sync(source)
    assert source.product_count == 2 and len(_unpacked(app)) == 1
    uploads = Path(app.config["UPLOADS_DIR"])
    # Files of other sources stay, even those whose id starts with the same digits.
    bystanders = {f"source-{source.id}0-upload.csv", f"source-{source.id}0.download",
                  f"source-{source.id}1-upload.gz.12-34.unpacked"}
    for name in bystanders:
        (uploads / name).write_bytes(b"x")
    # A half-written unpacked copy (a reader stopped mid-way) and a preview download are the source's too.
    (uploads / f".source-{source.id}-upload.gz.abc123.part").write_bytes(b"x")
    (uploads / f"source-{source.id}-preview-0123456789ab").write_bytes(b"x")

    delete_source(source)
    assert _names(app) - {"imports"} == bystanders


def test_a_new_upload_replaces_the_old_file_and_its_unpacked_copy(app, db) -> None:  # noqa: ANN001
    source = _source()
    save_upload(source, "products.csv.gz", io.BytesIO(gzip.compress(CSV)))
    _sync(source)
    first = _unpacked(app)
    assert len(first) == 1

    save_upload(source, "products.csv.gz", io.BytesIO(gzip.compress(CSV + b"3,Chair,7,EUR,https://shop.example/3\n")))
    assert _unpacked(app) == set()  # the copy of the replaced content is gone at once
    _sync(source)
    assert source.product_count == 3 and len(_unpacked(app)) == 1 and _unpacked(app) != first

    zipped = save_upload(source, "products.zip", io.BytesIO(_zipped("products.csv", CSV)))  # the .gz goes
    assert _names(app) - {"imports"} == {zipped.name} and zipped.name.startswith(f"source-{source.id}-upload-")
    _sync(source)
    assert source.product_count == 2 and len(_unpacked(app)) == 1

    plain = save_upload(source, "products.csv", io.BytesIO(CSV))  # plain again: nothing unpacked is left
    assert _names(app) - {"imports"} == {plain.name} and plain.suffix == ".csv"
    _sync(source)
    assert _names(app) - {"imports"} == {plain.name}


def test_deleting_a_url_source_deletes_its_download_and_unpacked_copy(app, db, http_server) -> None:  # noqa: ANN001
    url = http_server.route("/products.csv.gz", gzip.compress(CSV))
    source = create_source(SourceCreate(name="By URL", kind="csv", location=url))
    _sync(source)
    assert f"source-{source.id}.download" in _names(app) and len(_unpacked(app)) == 1
    assert len(source_files(source.id)) == 2
    delete_source(source)
    assert _names(app) - {"imports"} == set()


def test_the_dashboard_upload_and_delete_leave_an_empty_uploads_folder(app, logged_in, db) -> None:  # noqa: ANN001
    data = {"csrf_token": csrf_token(logged_in, "/sources/new"), "name": "Zipped", "kind": "csv", "via": "upload",
            "schedule": "0 2 * * *", "timezone": "UTC", "enabled": "1",
            "upload": (io.BytesIO(_zipped("products.csv", CSV)), "products.zip")}
    assert logged_in.post("/sources/new", data=data, content_type="multipart/form-data").status_code == 302
    source = db.session.scalars(sa.select(Source)).one()
    assert logged_in.get(f"/sources/{source.id}/mapping").status_code == 200  # the preview unpacks it
    _sync(source)
    assert len(_unpacked(app)) == 1
    answer = logged_in.post(f"/sources/{source.id}/delete",
                            data={"csrf_token": csrf_token(logged_in, f"/sources/{source.id}/delete")})
    assert answer.status_code == 302
    assert _names(app) - {"imports"} == set()
