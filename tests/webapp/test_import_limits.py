"""Order imports are read with the catalog readers' limits: hostile files end the read (or one record) with the
reason, the run fails cleanly instead of crashing, and memory stays bounded on huge inputs."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from feeds.product import SourceError
from tests.conftest import csrf_token
from tests.factories import make_order
from tests.security import evil
from tests.security.bounded import measure_in_child
from webapp.models import ImportRun, Order
from webapp.services.orders import imports
from webapp.services.orders.imports import read_records, run_import, start_or_resume

ROOT = Path(__file__).resolve().parents[2]
EVIL = ROOT / "tests" / "fixtures" / "evil"
MAX_GROWTH_MB = 200


def _copy(tmp_path: Path, name: str, suffix: str) -> Path:
    target = tmp_path / f"{Path(name).stem}{suffix}"
    shutil.copyfile(EVIL / name, target)
    return target


def _invalid(records: list[Any]) -> list[str]:
    return [record["__invalid__"] for record in records if isinstance(record, dict) and "__invalid__" in record]


@pytest.mark.parametrize(("name", "reason"), [
    ("runaway_quote.csv", "malformed"),
    ("nul_bytes.csv", "NUL bytes"),
    ("login_page.csv", "HTML page"),
    ("wide_header.csv", "columns"),
])
def test_a_hostile_csv_ends_the_read_with_its_reason(tmp_path, name, reason) -> None:  # noqa: ANN001
    with pytest.raises(SourceError, match=reason):
        list(read_records(_copy(tmp_path, name, ".csv")))


@pytest.mark.parametrize(("name", "reason"), [
    ("deep_item.jsonl", "levels deep"),
    ("deep_wrapper.json", "levels deep"),
    ("deep_array.json", "depth limit"),
])
def test_deep_json_is_one_invalid_record(tmp_path, name, reason) -> None:  # noqa: ANN001
    records = list(read_records(_copy(tmp_path, name, ".jsonl")))
    assert any(reason in message for message in _invalid(records)), records[:3]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_every_evil_sample_gives_records_or_a_source_error(tmp_path, suffix) -> None:  # noqa: ANN001
    for sample in sorted(EVIL.glob("*.*")):
        if sample.suffix == ".md":
            continue
        try:
            list(read_records(_copy(tmp_path, sample.name, suffix)))
        except SourceError as exc:
            assert str(exc) and "root:" not in str(exc)


@pytest.mark.parametrize(("content", "reason"), [
    (lambda: gzip.compress(b'{"id": "1"}\n'), "gzip-compressed"),
    (lambda: _zipped(b'{"id": "1"}\n'), "ZIP archive"),
    (lambda: '{"id": "1"}\n'.encode("utf-16"), "UTF-16"),
])
def test_compressed_and_utf16_files_are_refused_with_the_reason(tmp_path, content, reason) -> None:  # noqa: ANN001
    path = tmp_path / "orders.jsonl"
    path.write_bytes(content())
    with pytest.raises(SourceError, match=reason):
        list(read_records(path))


def test_a_file_over_the_size_cap_is_refused(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "orders.jsonl"
    path.write_text(json.dumps(make_order(id="1")) + "\n")
    with pytest.raises(SourceError, match=r"cap \(SHOPRELAY_SOURCE_MAX_BYTES\)"):
        list(read_records(path, max_bytes=10))


def test_an_order_of_too_many_csv_rows_is_one_invalid_record(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(imports, "MAX_ORDER_ITEMS", 3)
    header = "id,status,placed_at,currency,total,item_sku,item_name,item_quantity,item_price\n"
    rows = "".join(f"A1,placed,2025-01-02T10:00:00Z,USD,{i},S{i},Mug,1,1\n" for i in range(5))
    path = tmp_path / "orders.csv"
    path.write_text(header + rows + "B2,placed,2025-01-02T10:00:00Z,USD,1,S9,Pen,1,1\n")
    records = list(read_records(path))
    assert [record["id"] for record in records] == ["A1", "B2"]
    assert "more than 3 rows" in records[0]["__invalid__"] and len(records[1]["items"]) == 1


def test_csv_imports_keep_their_columns(tmp_path) -> None:  # noqa: ANN001
    """The hardened reader gives the rows the old DictReader gave: a missing trailing value is absent (None), an
    extra one is dropped, a cp1252 file is read too."""
    path = tmp_path / "orders.csv"
    path.write_bytes("id,currency,total,item_name,item_quantity,item_price,email\n"
                     "A1,EUR,5,Caf\xe9,1,5\n"
                     "B2,EUR,5,Pen,1,5,b@example.com,surplus\n".encode("cp1252"))
    first, second = read_records(path)
    assert first["items"][0]["name"] == "Café" and first["customer"]["email"] is None
    assert second["customer"]["email"] == "b@example.com"


def test_a_refused_file_fails_its_run_with_the_reason_and_imports_nothing(app, db, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "orders.csv"
    path.write_text("id,currency,total,item_name,item_quantity,item_price\n"
                    "A1,EUR,5,Pen,1,5\n" + (EVIL / "runaway_quote.csv").read_text().split("\n", 1)[1])
    run = run_import(start_or_resume(path), path)  # returns: a bad file is the run's outcome, not a crash
    assert run.status == "failed" and "CSV is malformed at line" in run.error and run.finished_at is not None
    assert not run.error.startswith("SourceError")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0


def test_a_file_over_the_configured_cap_fails_its_run(app, db, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "orders.jsonl"
    path.write_text(json.dumps(make_order(id="1")) + "\n")
    app.config["SOURCE_MAX_BYTES"] = 10
    run = run_import(start_or_resume(path), path)
    assert run.status == "failed" and "SHOPRELAY_SOURCE_MAX_BYTES" in run.error


def test_deep_records_are_listed_and_the_others_imported(app, db, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "orders.jsonl"
    deep = (EVIL / "deep_item.jsonl").read_text().splitlines()[1]
    path.write_text("\n".join([json.dumps(make_order(id="1")), deep, json.dumps(make_order(id="2"))]) + "\n")
    run = run_import(start_or_resume(path), path)
    assert (run.status, run.imported, run.failed) == ("succeeded", 2, 1)
    [refused] = [problem for problem in run.problems if "errors" in problem]
    assert "levels deep" in refused["errors"][0]["message"] and refused["record"] == 2


# --- the dashboard ---------------------------------------------------------------------------------------------

def _zipped(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("orders.jsonl", data)
    return buffer.getvalue()


def _upload(client, content: bytes, name: str):  # noqa: ANN001, ANN202
    data = {"csrf_token": csrf_token(client, "/imports/"), "file": (io.BytesIO(content), name)}
    return client.post("/imports/", data=data, content_type="multipart/form-data")


def test_a_compressed_upload_is_refused_at_once(app, logged_in, db) -> None:  # noqa: ANN001
    answer = _upload(logged_in, gzip.compress(b'{"id": "1"}\n'), "orders.jsonl")
    assert answer.status_code == 422 and "gzip-compressed" in answer.get_data(as_text=True)
    answer = _upload(logged_in, _zipped(b'{"id": "1"}\n'), "orders.csv")
    assert answer.status_code == 422 and "ZIP archive" in answer.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportRun)) == 0
    assert not list((Path(app.config["UPLOADS_DIR"]) / "imports").iterdir())


def test_an_upload_over_the_cap_is_refused(app, logged_in, db) -> None:  # noqa: ANN001
    app.config["SOURCE_MAX_BYTES"] = 64
    answer = _upload(logged_in, (json.dumps(make_order(id="1")) + "\n").encode(), "orders.jsonl")
    # The form itself is over the cap (413); the saving code would refuse the file again (422): both name it.
    assert answer.status_code == 413 and "SHOPRELAY_SOURCE_MAX_BYTES" in answer.get_data(as_text=True)


def test_a_hostile_upload_ends_in_a_failed_run_that_says_why(logged_in, db, worker) -> None:  # noqa: ANN001
    assert _upload(logged_in, (EVIL / "wide_header.csv").read_bytes(), "orders.csv").status_code == 302
    worker(["default"])
    run = db.session.scalars(sa.select(ImportRun)).one()
    db.session.refresh(run)
    assert run.status == "failed" and "columns" in run.error
    assert "columns" in logged_in.get(f"/imports/{run.id}").get_data(as_text=True)


# --- big inputs, in a child process whose peak memory is measured ----------------------------------------------



def _one_big_order(path: Path, rows: int) -> Path:
    with path.open("w") as handle:
        handle.write("id,currency,total,item_sku,item_name,item_quantity,item_price\n")
        handle.writelines(f"A1,EUR,5,S{n},Mug,1,5\n" for n in range(rows))
    return path


@pytest.mark.slow
def test_huge_imports_fail_cleanly_in_bounded_memory(tmp_path) -> None:  # noqa: ANN001
    cases = [
        {"label": "JSON Lines line of 80 MB", "reason": "longer than 64 MB; JSON Lines hold one order",
         "path": str(evil.huge_line(tmp_path / "line.jsonl", 80 * evil.MIB, prefix=b'{"id": "1"}\n{"t": "'))},
        {"label": "CSV line of 40 M characters", "reason": "longer than 16 million characters",
         "path": str(evil.huge_line(tmp_path / "line.csv", 40 * evil.MIB))},
        {"label": "gzip bomb (10 GB) named .jsonl", "reason": "gzip-compressed",
         "path": str(evil.gzip_bomb(tmp_path / "bomb.jsonl"))},
        {"label": "one CSV order of 400,000 rows", "invalid": "more than 10,000 rows",
         "path": str(_one_big_order(tmp_path / "big.csv", 400_000))},
    ]
    results = measure_in_child("tests.security.bounded:read_import", cases, tmp_path)
    for case, result in zip(cases, results, strict=True):
        if "reason" in case:
            assert result["error"] and case["reason"] in result["error"], (case["label"], result)
        else:
            assert result["error"] is None and result["invalid"] and case["invalid"] in result["invalid"][0], result
    assert max(result["growth_mb"] for result in results) < MAX_GROWTH_MB, results
