"""Push sources: the store sends product upserts and deletes; applied incrementally, recorded as a run."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Product, Source, SyncRun, utcnow
from webapp.schemas.canonical.products import ProductPush
from webapp.schemas.canonical.web_links import clean_links
from webapp.schemas.errors import ApiError, problem
from webapp.services.catalog import changes as catalog_changes
from webapp.services.catalog.diff import MAX_STORED_PROBLEMS, Diff


def push_source(source_id: int | None) -> Source:
    """The push source to write to: the one named, the only one, or a new "Pushed products" source."""
    if source_id is not None:
        source = db.session.get(Source, source_id)
        if source is None or source.kind != "push":
            raise ApiError(422, [problem(["source_id"], "must be the id of a source of kind 'push'")])
        return source
    sources = db.session.scalars(sa.select(Source).where(Source.kind == "push").order_by(Source.id)).all()
    if len(sources) > 1:
        raise ApiError(422, [problem(["source_id"], "several push sources exist; say which one")])
    if sources:
        return sources[0]
    source = Source(name="Pushed products", kind="push", options={}, schedule="0 2 * * *", timezone="UTC")
    db.session.add(source)
    db.session.flush()
    return source


def apply_push(body: ProductPush) -> tuple[SyncRun, Diff]:
    """Apply the upserts and deletes. Links that are not http(s) are dropped first (the product is kept);
    `diff.problems` (also the run's problems) lists them as `{"path", "message"}` warnings for the answer."""
    warnings = clean_links(body)
    source = push_source(body.source_id)
    now = utcnow()
    diff = Diff(problems=warnings)
    keys = [item.external_id for item in body.upserts]
    existing = {row.external_id: row for row in db.session.scalars(sa.select(Product).where(
        Product.source_id == source.id, Product.external_id.in_(keys))).all()} if keys else {}
    for item in body.upserts:
        product = item.to_product()
        digest = product.content_hash()
        row = existing.get(product.external_id)
        if row is not None and row.content_hash == digest:
            diff.unchanged += 1
            continue
        values = product.as_dict() | {"content_hash": digest, "updated_at": now}
        if row is None:
            row = Product(source_id=source.id, created_at=now, **values)
            db.session.add(row)
            db.session.flush()
            diff.added += 1
            diff.added_ids.append(row.id)
        else:
            for key, value in values.items():
                setattr(row, key, value)
            diff.updated += 1
            diff.updated_ids.append(row.id)
    if body.deletes:
        gone = db.session.scalars(sa.select(Product.external_id).where(
            Product.source_id == source.id, Product.external_id.in_(body.deletes))).all()
        db.session.execute(sa.delete(Product).where(Product.source_id == source.id,
                                                    Product.external_id.in_(gone)))
        diff.removed, diff.removed_keys = len(gone), list(gone)
    db.session.flush()
    source.product_count = db.session.scalar(
        sa.select(sa.func.count()).select_from(Product).where(Product.source_id == source.id)) or 0
    run = SyncRun(source_id=source.id, status="succeeded", trigger="push", started_at=now, finished_at=utcnow(),
                  rows_read=len(body.upserts) + len(body.deletes), rows_total=len(body.upserts) + len(body.deletes),
                  added=diff.added, updated=diff.updated, unchanged=diff.unchanged, removed=diff.removed,
                  problems=[_run_problem(body, warning) for warning in warnings[:MAX_STORED_PROBLEMS]])
    db.session.add(run)
    db.session.commit()
    catalog_changes.after_sync(source, run, diff)
    return run, diff


def _run_problem(body: ProductPush, warning: dict[str, str]) -> dict[str, Any]:
    """A dropped link as the run page lists problems: which upsert (1-based), its id, the field."""
    _, index, field = warning["path"].split(".", 2)
    return {"row": int(index) + 1, "external_id": body.upserts[int(index)].external_id, "field": field,
            "message": warning["message"], "path": warning["path"]}
