"""Dashboard imports: upload → queued job → progress → problems; resuming the same file."""

import io
import json

import sqlalchemy as sa

from tests.conftest import csrf_token
from tests.factories import make_order
from webapp.models import ImportRun, Order


def _upload(client, content: bytes, name="orders.jsonl", historical=True):
    data = {"csrf_token": csrf_token(client, "/imports/"), "file": (io.BytesIO(content), name)}
    if historical:
        data["historical"] = "1"
    return client.post("/imports/", data=data, content_type="multipart/form-data")


def test_upload_runs_through_the_worker_and_reports(logged_in, db, worker, redis):
    lines = [json.dumps(make_order(id=str(i))) for i in range(3)] + [json.dumps(make_order(id="x", total="1"))]
    response = _upload(logged_in, "\n".join(lines).encode())
    assert response.status_code == 302
    run = db.session.scalars(sa.select(ImportRun)).one()
    assert redis.llen("rq:queue:default") == 1
    page = logged_in.get(f"/imports/{run.id}").get_data(as_text=True)
    assert "queued" in page and 'hx-trigger="load delay:1s"' in page
    worker(["default"])
    db.session.refresh(run)
    assert (run.status, run.imported, run.failed) == ("succeeded", 3, 1)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 3
    fragment = logged_in.get(f"/imports/{run.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and "hx-trigger" not in fragment and "3 imported" in fragment
    page = logged_in.get(f"/imports/{run.id}").get_data(as_text=True)
    assert "total" in page and "must be a number" in page
    assert "#1" in logged_in.get("/imports/").get_data(as_text=True)


def test_bad_uploads_are_refused_with_a_reason(logged_in):
    response = _upload(logged_in, b"hello", name="orders.txt")
    assert response.status_code == 422 and "JSON Lines (.jsonl) or CSV" in response.get_data(as_text=True)
    empty = _upload(logged_in, b"", name="orders.csv")
    assert empty.status_code == 422
