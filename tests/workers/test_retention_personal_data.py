"""Retention of personal data beyond delivery logs: old checkouts go, finished imports lose their uploaded
file and their problem list; a running import and a recent one keep theirs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import both_databases
from webapp.models import Checkout, ImportRun, utcnow
from webapp.services.delivery.retention import REMOVED_UPLOAD, prune


@both_databases
def test_old_checkouts_and_finished_import_files_go(app, db) -> None:
    now = utcnow()
    old, recent = now - timedelta(days=400), now - timedelta(days=1)
    db.session.add_all([
        Checkout(external_id="old", email="a@example.com", started_at=old, data={"customer": {"email": "a"}}),
        Checkout(external_id="new", email="b@example.com", started_at=recent, data={}),
    ])
    uploads = Path(app.config["UPLOADS_DIR"]) / "imports"
    uploads.mkdir(parents=True, exist_ok=True)
    files = {name: uploads / f"{name}.csv" for name in ("done", "fresh", "running")}
    for path in files.values():
        path.write_text("id,email\n1,a@example.com\n")
    problems = [{"record": 1, "path": "customer.email", "message": "not an email: a@@example"}]
    db.session.add_all([
        ImportRun(filename=str(files["done"]), file_digest="d", status="succeeded", finished_at=old,
                  problems=problems),
        ImportRun(filename=str(files["fresh"]), file_digest="f", status="succeeded", finished_at=recent,
                  problems=problems),
        ImportRun(filename=str(files["running"]), file_digest="r", status="running", problems=problems),
    ])
    db.session.commit()

    result = prune()
    assert result["checkouts_deleted"] == 1 and result["imports_pruned"] == 1
    assert db.session.scalars(sa.select(Checkout.external_id)).all() == ["new"]
    assert not files["done"].exists() and files["fresh"].exists() and files["running"].exists()
    runs = {run.file_digest: run for run in db.session.scalars(sa.select(ImportRun))}
    assert runs["d"].problems == [] and runs["d"].filename == f"{REMOVED_UPLOAD}done.csv"
    assert runs["f"].problems == problems and runs["r"].problems == problems
    assert prune()["imports_pruned"] == 0  # a second night finds nothing more
