"""A sync's changes on their way into `products`: staged in short transactions, applied in short transactions.

SQLite has one write lock for the whole database, so no write transaction of a sync may last longer than a
fraction of a second, or order ingest waits behind it. The read (phase 1) writes only the changed rows here,
a chunk per commit; nothing visible changes and a failed or killed read is thrown away (`discard`). After the
run's commit point (phase "applying"), `apply_chunk` moves one chunk into `products` with the chunk's product
events, and deletes the staged rows it applied, in one short transaction: a worker that dies mid-apply leaves
exactly the rows still to apply, and whoever resumes the run applies them (rolled forward, never doubled).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import CatalogStage, Product, SyncRun
from webapp.services.platform.statements import dialect_name

STAGE = CatalogStage.__table__
PRODUCTS = Product.__table__
APPLY_CHUNK = 500
DISCARD_CHUNK = 5000
# The product columns a change carries (source_id, created_at and the id are the insert's own).
CONTENT = [c.name for c in PRODUCTS.c if c.name not in ("id", "source_id", "external_id", "created_at")]


def stage(run_id: int, inserts: list[dict[str, Any]], updates: list[dict[str, Any]],
          deletes: list[str]) -> None:
    """Write one chunk of changes and commit (one short write transaction)."""
    rows = [_stage_row(run_id, "i", values) for values in inserts]
    if rows:
        db.session.execute(sa.insert(STAGE), rows)
    rows = [_stage_row(run_id, "u", values) for values in updates]
    if rows:
        db.session.execute(sa.insert(STAGE), rows)
    if deletes:
        db.session.execute(sa.insert(STAGE), [{"run_id": run_id, "op": "d", "external_id": key}
                                              for key in deletes])
    db.session.commit()


def _stage_row(run_id: int, op: str, values: dict[str, Any]) -> dict[str, Any]:
    row = {name: values.get(name) for name in CONTENT}
    row.update(run_id=run_id, op=op, external_id=values["external_id"], product_id=values.get("id"),
               created_at=values.get("created_at"))
    return row


def discard(run_id: int) -> None:
    """Drop a run's staged changes (its read failed, was held or was killed), a chunk per commit."""
    db.session.rollback()
    while True:
        batch = sa.select(STAGE.c.id).where(STAGE.c.run_id == run_id).limit(DISCARD_CHUNK).scalar_subquery()
        deleted = db.session.execute(sa.delete(STAGE).where(STAGE.c.id.in_(batch))).rowcount
        db.session.commit()
        if not deleted:
            return


def discard_leftovers(source_id: int) -> None:
    """Staged rows of the source's finished runs (a read killed before the sweeper saw it)."""
    runs = db.session.scalars(sa.select(STAGE.c.run_id).distinct().join(SyncRun, SyncRun.id == STAGE.c.run_id)
                              .where(SyncRun.source_id == source_id,
                                     SyncRun.status.not_in(("queued", "running")))).all()
    for run_id in runs:
        discard(run_id)


def staged_count(run_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(STAGE).where(STAGE.c.run_id == run_id)) or 0


def apply_chunk(run_id: int, source_id: int, with_events: bool) -> tuple[int, set[int]]:
    """Apply the run's oldest staged chunk to `products` (+ its product events) and delete it, in one short
    transaction; the chunk is read and its events built before, outside it. Returns (staged rows applied,
    destinations that got events); (0, ∅) when nothing is left."""
    from webapp.services.catalog.changes import product_events, product_targets
    from webapp.services.orders.outbox import write_events

    db.session.rollback()
    rows = db.session.execute(sa.select(STAGE).where(STAGE.c.run_id == run_id).order_by(STAGE.c.id)
                              .limit(APPLY_CHUNK)).all()
    db.session.rollback()  # no snapshot kept into the write transaction
    if not rows:
        return 0, set()
    targets = product_targets() if with_events else []
    events = product_events(source_id, rows, str(run_id)) if targets else []
    chunk = (STAGE.c.run_id == run_id) & (STAGE.c.id <= rows[-1].id)
    if dialect_name() == "postgresql":  # two workers resuming the same run apply one after the other
        db.session.execute(sa.select(SyncRun.id).where(SyncRun.id == run_id).with_for_update())
    else:
        db.session.connection().exec_driver_sql("BEGIN IMMEDIATE")
    if db.session.scalar(sa.select(sa.func.count()).select_from(STAGE).where(chunk)) != len(rows):
        db.session.rollback()  # another worker applied (part of) it meanwhile: read again
        return apply_chunk(run_id, source_id, with_events)
    columns = ["external_id", *CONTENT, "created_at"]
    db.session.execute(sa.insert(PRODUCTS).from_select(
        ["source_id", *columns], sa.select(sa.literal(source_id, sa.Integer), *[STAGE.c[name] for name in columns])
        .where(chunk, STAGE.c.op == "i")))
    db.session.execute(sa.update(PRODUCTS).where(
        PRODUCTS.c.id == STAGE.c.product_id, PRODUCTS.c.source_id == source_id, chunk, STAGE.c.op == "u")
        .values({name: STAGE.c[name] for name in CONTENT}))
    db.session.execute(sa.delete(PRODUCTS).where(PRODUCTS.c.source_id == source_id, PRODUCTS.c.external_id.in_(
        sa.select(STAGE.c.external_id).where(chunk, STAGE.c.op == "d"))))
    touched = write_events(events, targets) if events else set()
    db.session.execute(sa.delete(STAGE).where(chunk))
    db.session.commit()
    return len(rows), touched
