"""Historical order import from JSON Lines or CSV: validated per order, ingested in batches, resumable.

An ImportRun remembers how many records were done (`position`); running the same file again continues
from there. Re-ingesting a record is harmless anyway (upsert by id, events keyed by unique id), so a
crash between a batch's commit and the position update duplicates nothing.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from flask import current_app

from feeds.decompress import MAX_UNPACKED_BYTES, compression_of
from feeds.product import SourceError
from feeds.readers import csv_reader, json_reader
from webapp.extensions import db
from webapp.models import ImportRun, utcnow
from webapp.schemas.canonical.input_warnings import clean_canonical
from webapp.schemas.canonical.orders import parse_orders_payload
from webapp.schemas.errors import ApiError
from webapp.services.orders.ingest import ingest_orders

MAX_PROBLEMS = 200
CSV_ORDER_FIELDS = ("status", "placed_at", "currency", "total", "subtotal", "tax", "shipping",
                    "fulfilled_at", "cancelled_at", "refunded_at", "refunded_amount", "reason")
MAX_ORDER_ITEMS = 10_000  # CSV rows (line items) of one order; more is a file whose rows are not grouped by order
MONEY = {"total", "subtotal", "tax", "shipping", "refunded_amount", "discount_value", "item_price",
         "item_total"}


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def start_or_resume(path: Path, historical: bool = True) -> ImportRun:
    """The unfinished run for this exact file (same content), or a new one."""
    digest = file_digest(path)
    run = db.session.scalar(sa.select(ImportRun).where(
        ImportRun.file_digest == digest, ImportRun.historical == historical,
        ImportRun.status.in_(("queued", "running", "failed"))).order_by(ImportRun.id.desc()))
    if run is None:
        run = ImportRun(filename=str(path), file_digest=digest, historical=historical, status="queued",
                        problems=[])
        db.session.add(run)
    run.filename = str(path)
    db.session.commit()
    return run


def read_records(path: Path, *, max_bytes: int = MAX_UNPACKED_BYTES) -> Iterator[Any]:
    """Canonical order dicts from .jsonl/.ndjson/.json (one object per line) or .csv (one row per line item).

    Read with the catalog readers' limits (feeds/readers), in bounded memory: a file over `max_bytes`
    (SHOPRELAY_SOURCE_MAX_BYTES), a compressed file, a JSON line over 64 MB, a CSV line over 16 million characters,
    a field over 8 MB, a header over 5,000 columns or broken CSV quoting end the read with a SourceError that
    names the problem; a line that is not JSON, or nests deeper than 32 levels, is one invalid record.
    """
    _check_import_file(path, max_bytes)
    if path.suffix.lower() == ".csv":
        yield from _csv_orders(path)
        return
    with path.open("rb") as handle:
        for number, raw in enumerate(json_reader.bounded_lines(handle, holds="one order"), start=1):
            line = (raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw).strip()
            if not line:
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield {"__invalid__": f"line {number}: not valid JSON ({exc.msg})"}
                continue
            if isinstance(record, dict | list) and json_reader.too_deep(record):
                yield {"__invalid__": f"line {number}: nests objects or arrays more than {json_reader.MAX_DEPTH} "
                                      f"levels deep; an order is never that deep"}
                continue
            yield record


def _check_import_file(path: Path, max_bytes: int) -> None:
    """Refuse, with the reason, a file the readers would not read: too large, compressed, UTF-16."""
    if not path.is_file():
        raise SourceError(f"the import file {path.name} does not exist (deleted after the upload?)")
    size = path.stat().st_size
    if size > max_bytes:
        raise SourceError(f"the file is {size / (1024 * 1024):.1f} MB, more than the {max_bytes / (1024 * 1024):g} MB "
                          f"cap (SHOPRELAY_SOURCE_MAX_BYTES)")
    compression = compression_of(path)
    if compression is not None:
        raise SourceError(f"the file is {'a ZIP archive' if compression == 'zip' else 'gzip-compressed'}; imports "
                          f"read plain JSON Lines or CSV: unpack it and import the file inside")
    with path.open("rb") as handle:
        head = handle.read(2)
    if head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) and path.suffix.lower() != ".csv":
        raise SourceError("the file is UTF-16 text; JSON Lines must be UTF-8: save it as UTF-8")


def _csv_orders(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of one order are consecutive and share `id`; order fields come from its first row. An order of more
    than MAX_ORDER_ITEMS rows is one invalid record (its rows are not kept: memory stays bounded)."""
    options = csv_reader.detect_options(path, {"delimiter": ","})  # encoding; NUL bytes, ZIP, HTML refused
    current: dict[str, Any] | None = None
    for line, header, values in csv_reader.iter_records(path, options):
        row = {name.strip(): value.strip() for name, value in zip(header, values, strict=False)}
        if current is None or row.get("id") != current["id"]:
            if current is not None:
                yield current
            current = _csv_order(row)
        if "__invalid__" in current:
            continue
        if len(current["items"]) >= MAX_ORDER_ITEMS:
            current = {"id": current["id"], "__invalid__": (
                f"line {line}: order {current['id']!r} has more than {MAX_ORDER_ITEMS:,} rows (line items); "
                f"the rows of one order must follow one another, and no order is that large")}
            continue
        current["items"].append(_csv_item(row))
    if current is not None:
        yield current


def _number(value: str | None) -> Any:
    if value in (None, ""):
        return None
    try:
        return float(value) if any(c in value for c in ".eE") else int(value)
    except ValueError:
        return value  # left as text: validation names the field


def _csv_order(row: dict[str, str]) -> dict[str, Any]:
    order: dict[str, Any] = {"id": row.get("id"), "items": []}
    for name in CSV_ORDER_FIELDS:
        if row.get(name):
            order[name] = _number(row[name]) if name in MONEY else row[name]
    if row.get("discount_code") or row.get("discount_value"):
        order["discount"] = {"code": row.get("discount_code") or None, "value": _number(row.get("discount_value"))}
    order["customer"] = {"id": row.get("customer_id") or None, "email": row.get("email") or None,
                         "phone": row.get("phone") or None, "first_name": row.get("first_name") or None,
                         "last_name": row.get("last_name") or None,
                         "accepts_marketing": _yes_no(row.get("accepts_marketing")),
                         "accepts_sms_marketing": _yes_no(row.get("accepts_sms_marketing"))}
    return order


def _yes_no(value: str | None) -> bool | None:
    """A consent column: yes/no in the usual spellings, anything else (empty included) unknown."""
    return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(
        (value or "").strip().lower())


def _csv_item(row: dict[str, str]) -> dict[str, Any]:
    item = {"product_id": row.get("item_product_id") or None, "sku": row.get("item_sku") or None,
            "name": row.get("item_name"), "quantity": _number(row.get("item_quantity")),
            "price": _number(row.get("item_price")), "url": row.get("item_url") or None,
            "image_url": row.get("item_image_url") or None, "brand": row.get("item_brand") or None,
            "categories": [c.strip() for c in (row.get("item_categories") or "").split("|") if c.strip()]}
    if row.get("item_total"):
        item["total"] = _number(row["item_total"])
    return item


def count_records(path: Path, *, max_bytes: int = MAX_UNPACKED_BYTES) -> int:
    return sum(1 for _ in read_records(path, max_bytes=max_bytes))


# Orders per write transaction: ingest writes ~1,200 orders/s in batches, so 100 hold SQLite's write lock for
# well under 200 ms and live orders posted beside an import never wait long.
BATCH_SIZE = 100


def run_import(run: ImportRun, path: Path, *, batch_size: int = BATCH_SIZE,
               on_progress: Callable[[ImportRun], None] | None = None) -> ImportRun:
    """Import from `run.position` on; every batch commits with its progress.

    A file the readers refuse (too large, a line over the limits, broken CSV) ends the run "failed" with the
    reason in `run.error` and is returned, as a sync's SourceError is; the counting pass finds it before any
    order is written. Any other exception fails the run and propagates.
    """
    max_bytes = int(current_app.config["SOURCE_MAX_BYTES"])
    run.status, run.error, run.finished_at = "running", None, None  # a refused file's earlier run had finished
    db.session.commit()
    batch: list[Any] = []
    try:
        run.total = run.total or count_records(path, max_bytes=max_bytes)
        db.session.commit()
        for index, record in enumerate(read_records(path, max_bytes=max_bytes)):
            if index < run.position:
                continue
            order = _validate(record, index, run)
            if order is not None:
                batch.append(order)
            if len(batch) >= batch_size or (index + 1 - run.position) >= batch_size:
                _flush(run, batch, index + 1, on_progress)
                batch = []
        _flush(run, batch, run.total, on_progress)
        run.status, run.finished_at = "succeeded", utcnow()
    except SourceError as exc:
        db.session.rollback()
        run.status, run.error, run.finished_at = "failed", str(exc), utcnow()
        db.session.commit()
        return run
    except Exception as exc:
        db.session.rollback()
        run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
        db.session.commit()
        raise
    db.session.commit()
    return run


def _validate(record: Any, index: int, run: ImportRun) -> Any:
    if isinstance(record, dict) and "__invalid__" in record:
        _problem(run, index, [{"path": "", "message": record["__invalid__"]}])
        return None
    try:
        order = parse_orders_payload(record)[0]
    except ApiError as exc:
        _problem(run, index, exc.errors)
        return None
    # As POST /api/v1/orders: non-web links dropped, phones in E.164; the record is imported, its warnings listed.
    warnings = clean_canonical(order, current_app.config.get("DEFAULT_PHONE_REGION"))
    if warnings and len(run.problems) < MAX_PROBLEMS:
        run.problems = [*run.problems, {"record": index + 1, "order_id": order.id, "warnings": warnings[:10]}]
    return order


def _problem(run: ImportRun, index: int, errors: list[dict[str, str]]) -> None:
    run.failed += 1
    if len(run.problems) < MAX_PROBLEMS:
        order_id = None
        run.problems = [*run.problems, {"record": index + 1, "order_id": order_id, "errors": errors[:10]}]


def _flush(run: ImportRun, batch: list[Any], position: int, on_progress) -> None:  # noqa: ANN001
    if batch:
        ingest_orders(batch, historical=run.historical)
        run.imported += len(batch)
    run.position = max(run.position, position)
    db.session.commit()
    if on_progress:
        on_progress(run)
