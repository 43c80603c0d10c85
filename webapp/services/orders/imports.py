"""Historical order import from JSON Lines or CSV: validated per order, ingested in batches, resumable.

An ImportRun remembers how many records were done (`position`); running the same file again continues
from there. Re-ingesting a record is harmless anyway (upsert by id, events keyed by unique id), so a
crash between a batch's commit and the position update duplicates nothing.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app

from webapp.extensions import db
from webapp.models import ImportRun, utcnow
from webapp.schemas.canonical.input_warnings import clean_canonical
from webapp.schemas.canonical.orders import parse_orders_payload
from webapp.schemas.errors import ApiError
from webapp.services.orders.ingest import ingest_orders

MAX_PROBLEMS = 200
CSV_ORDER_FIELDS = ("status", "placed_at", "currency", "total", "subtotal", "tax", "shipping",
                    "fulfilled_at", "cancelled_at", "refunded_at", "refunded_amount", "reason")
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


def read_records(path: Path) -> Iterator[Any]:
    """Canonical order dicts from .jsonl/.ndjson/.json (one object per line) or .csv (one row per line item)."""
    if path.suffix.lower() == ".csv":
        yield from _csv_orders(path)
        return
    with path.open("r", encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    yield {"__invalid__": f"line {number}: not valid JSON ({exc.msg})"}


def _csv_orders(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of one order are consecutive and share `id`; order fields come from its first row."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        current: dict[str, Any] | None = None
        for row in csv.DictReader(handle):
            row = {key.strip(): (value.strip() if isinstance(value, str) else value) for key, value in row.items()
                   if key}
            if current is None or row.get("id") != current["id"]:
                if current is not None:
                    yield current
                current = _csv_order(row)
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


def count_records(path: Path) -> int:
    return sum(1 for _ in read_records(path))


# Orders per write transaction: ingest writes ~1,200 orders/s in batches, so 100 hold SQLite's write lock for
# well under 200 ms and live orders posted beside an import never wait long.
BATCH_SIZE = 100


def run_import(run: ImportRun, path: Path, *, batch_size: int = BATCH_SIZE,
               on_progress: Callable[[ImportRun], None] | None = None) -> ImportRun:
    """Import from `run.position` on; every batch commits with its progress."""
    run.status, run.error = "running", None
    run.total = run.total or count_records(path)
    db.session.commit()
    batch: list[Any] = []
    try:
        for index, record in enumerate(read_records(path)):
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
