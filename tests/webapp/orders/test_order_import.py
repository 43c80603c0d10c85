"""Historical import from JSON Lines and CSV: progress, per-record problems, resumable without duplicates."""

import contextlib
import json

import sqlalchemy as sa

from tests.factories import make_order
from webapp.models import Event, ImportRun, Order


def _webhook(api):
    api.post("/api/v1/destinations", json={"name": "hook", "kind": "webhook", "credentials": {
        "url": "http://127.0.0.1:9/h", "secret": "abcdefgh"}})


def test_jsonl_import_marks_events_historical_and_reports_bad_records(api, runner, db, tmp_path):
    _webhook(api)
    path = tmp_path / "orders.jsonl"
    bad = make_order(id="bad", total="12")
    path.write_text("\n".join(json.dumps(o) for o in [make_order(id="1"), bad, make_order(id="2")]) + "\n{oops\n")
    result = runner.invoke(args=["orders", "import", str(path), "--historical"])
    assert result.exit_code == 0, result.output
    assert "2 imported, 2 invalid (of 4)" in result.output
    assert "total: must be a number" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 2
    events = db.session.scalars(sa.select(Event)).all()
    assert events and all(e.historical for e in events)
    placed = next(e for e in events if e.name == "placed_order")
    assert placed.occurred_at.isoformat().startswith("2026-11-20T10:15:00")


def test_csv_import_groups_rows_into_orders(runner, db, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "id,status,placed_at,currency,total,email,first_name,item_sku,item_name,item_quantity,item_price\n"
        "A1,placed,2025-01-02T10:00:00Z,USD,30,a@example.com,Ann,SKU1,Mug,1,10\n"
        "A1,placed,2025-01-02T10:00:00Z,USD,30,a@example.com,Ann,SKU2,Tee,1,20\n"
        "B2,fulfilled,2025-01-03T10:00:00+02:00,EUR,5.5,b@example.com,Bob,SKU3,Pen,1,5.5\n")
    result = runner.invoke(args=["orders", "import", str(path)])
    assert result.exit_code == 0, result.output
    orders = {o.external_id: o for o in db.session.scalars(sa.select(Order))}
    assert len(orders["A1"].lines) == 2 and orders["B2"].status == "fulfilled"
    assert not orders["A1"].historical


def test_interrupted_import_resumes_without_duplicates(api, app, db, tmp_path):
    from webapp.services.orders.imports import run_import, start_or_resume

    _webhook(api)
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(json.dumps(make_order(id=str(i))) for i in range(10)) + "\n")
    run = start_or_resume(path)

    class Interrupt(Exception):
        pass

    def stop_after_first_batch(current):
        if current.position >= 4:
            raise Interrupt

    with contextlib.suppress(Interrupt):
        run_import(run, path, batch_size=4, on_progress=stop_after_first_batch)
    db.session.rollback()
    run = start_or_resume(path)
    assert run.position == 4 and run.status == "failed"  # resumable: same run picked up again
    run_import(run, path, batch_size=4)
    assert run.status == "succeeded" and run.imported == 10
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportRun)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 10
    placed = db.session.scalars(sa.select(Event.unique_id).where(Event.name == "placed_order")).all()
    assert sorted(placed) == sorted(str(i) for i in range(10))


def test_imported_records_get_the_same_link_and_phone_cleaning_as_the_api(runner, db, tmp_path):
    """An import is another way in: a javascript: link is dropped and a phone written in E.164, the record is
    imported, and the run lists the warning naming the field."""
    order = make_order(id="W1")
    order["items"][0]["url"] = "javascript:alert(5)"
    order["customer"]["phone"] = "+1 (415) 555-0123"
    path = tmp_path / "orders.jsonl"
    path.write_text(json.dumps(order) + "\n")
    result = runner.invoke(args=["orders", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "record 1 (imported with warnings): items.0.url" in result.output
    stored = db.session.scalar(sa.select(Order).where(Order.external_id == "W1"))
    assert stored.data["items"][0]["url"] is None
    assert stored.data["customer"]["phone"] == "+14155550123"
    run = db.session.scalar(sa.select(ImportRun))
    assert run.failed == 0 and [w["path"] for w in run.problems[0]["warnings"]][0] == "items.0.url"


def test_a_refused_file_fails_the_command_with_its_reason(runner, db, tmp_path):
    """A file refused as a whole (here: compressed, which imports do not take) ends the run failed, and the
    command says why and exits non-zero rather than reporting an empty success."""
    import gzip

    path = tmp_path / "orders.jsonl"
    path.write_bytes(gzip.compress((json.dumps(make_order(id="1")) + "\n").encode()))
    result = runner.invoke(args=["orders", "import", str(path)])
    assert result.exit_code != 0, result.output
    assert "failed" in result.output and ("gzip" in result.output or "compressed" in result.output), result.output
    run = db.session.scalars(sa.select(ImportRun)).one()
    assert run.status == "failed" and run.error
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0
