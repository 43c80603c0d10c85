"""The ledger of what a platform's catalog holds: read by the reconcile's diff, written as jobs complete.

Every write is its own short transaction (a page of entries at a time), so a reconcile of a large catalog
never holds the database's write lock for long, and a run killed anywhere leaves a ledger the next run can
trust: entries whose job outcome was never read are marked unknown ("?") and sent again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import CatalogEntry, utcnow
from webapp.services.platform.statements import dialect_name
from workers.destinations.klaviyo_catalog import Entity

UNKNOWN = "?"  # the platform has it, with content shoprelay cannot vouch for
LOOKUP_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Known:
    confirmed_digest: str | None
    action: str | None


def lookup(destination_id: int, kind: str, ids: list[str]) -> dict[str, Known]:
    found: dict[str, Known] = {}
    table = CatalogEntry.__table__
    for start in range(0, len(ids), LOOKUP_CHUNK):
        rows = db.session.execute(sa.select(table.c.external_id, table.c.confirmed_digest, table.c.action).where(
            table.c.destination_id == destination_id, table.c.kind == kind,
            table.c.external_id.in_(ids[start:start + LOOKUP_CHUNK]))).all()
        found.update((row.external_id, Known(row.confirmed_digest, row.action)) for row in rows)
    return found


def mark_sending(destination_id: int, kind: str, action: str, entities: list[Entity]) -> int:
    """Before a job is posted: its entries exist in the ledger with the action in flight. Returns how many
    entries are new to the ledger."""
    table = CatalogEntry.__table__
    now = utcnow()
    ids = [entity.external_id for entity in entities]
    existing = set(lookup(destination_id, kind, ids))
    new = [{"destination_id": destination_id, "kind": kind, "external_id": entity.external_id,
            "product_key": entity.product_key, "sent_digest": entity.digest, "action": action, "updated_at": now}
           for entity in entities if entity.external_id not in existing]
    if new:
        db.session.execute(sa.insert(table), new)
    for entity in entities:
        if entity.external_id in existing:
            db.session.execute(sa.update(table).where(
                table.c.destination_id == destination_id, table.c.kind == kind,
                table.c.external_id == entity.external_id).values(
                sent_digest=entity.digest, action=action, job_path=None, updated_at=now,
                product_key=entity.product_key or table.c.product_key))
    db.session.commit()
    return len(new)


def analyze() -> None:
    """Fresh planner statistics for the ledger (PostgreSQL): its id look-ups use the unique index only once
    the planner knows how many entries a (destination, kind) holds."""
    if dialect_name() == "postgresql":
        db.session.execute(sa.text("ANALYZE catalog_entries"))
        db.session.commit()


def mark_job(destination_id: int, kind: str, ids: list[str], path: str) -> None:
    """The job was accepted: its status path, so a later run can read its outcome."""
    table = CatalogEntry.__table__
    for start in range(0, len(ids), LOOKUP_CHUNK):
        db.session.execute(sa.update(table).where(
            table.c.destination_id == destination_id, table.c.kind == kind,
            table.c.external_id.in_(ids[start:start + LOOKUP_CHUNK])).values(job_path=path))
    db.session.commit()


def settle(destination_id: int, kind: str, action: str, confirmed: list[Entity],
           refused: dict[str, str]) -> None:
    """A job's outcome: confirmed entries take their sent digest (deleted ones leave the ledger); refused ones
    keep what was confirmed before and say why."""
    table = CatalogEntry.__table__
    now = utcnow()
    where = (table.c.destination_id == destination_id, table.c.kind == kind)
    ids = [entity.external_id for entity in confirmed]
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = table.c.external_id.in_(ids[start:start + LOOKUP_CHUNK])
        if action == "delete":
            db.session.execute(sa.delete(table).where(*where, chunk))
        else:
            db.session.execute(sa.update(table).where(*where, chunk).values(
                confirmed_digest=table.c.sent_digest, action=None, job_path=None, error=None,
                confirmed_at=now, updated_at=now))
    for external_id, why in refused.items():
        db.session.execute(sa.update(table).where(*where, table.c.external_id == external_id).values(
            action=None, job_path=None, error=why[:2000], updated_at=now))
    db.session.commit()


def in_flight(destination_id: int) -> list[tuple[str | None, str, str, list[str]]]:
    """Jobs a run left behind: (job status path or None when never accepted, kind, action, external ids)."""
    table = CatalogEntry.__table__
    rows = db.session.execute(sa.select(table.c.job_path, table.c.kind, table.c.action, table.c.external_id)
                              .where(table.c.destination_id == destination_id, table.c.action.is_not(None))).all()
    jobs: dict[tuple[str | None, str, str], list[str]] = {}
    for row in rows:
        jobs.setdefault((row.job_path, row.kind, row.action), []).append(row.external_id)
    return [(path, kind, action, ids) for (path, kind, action), ids in jobs.items()]


def forget_outcome(destination_id: int, kind: str, ids: list[str], action: str) -> None:
    """A job whose outcome cannot be read: the platform may or may not have applied it. Created or updated
    entries become unknown (the next diff updates them, a failed update becomes a create); deletions are
    sent again."""
    table = CatalogEntry.__table__
    values = {"action": None, "job_path": None, "updated_at": utcnow()}
    if action != "delete":
        values["confirmed_digest"] = UNKNOWN
    for start in range(0, len(ids), LOOKUP_CHUNK):
        db.session.execute(sa.update(table).where(
            table.c.destination_id == destination_id, table.c.kind == kind,
            table.c.external_id.in_(ids[start:start + LOOKUP_CHUNK])).values(**values))
    db.session.commit()


def unmark(destination_id: int, kind: str, ids: list[str]) -> None:
    """A call the platform refused whole (its credentials): nothing was applied, the entries are as before."""
    table = CatalogEntry.__table__
    for start in range(0, len(ids), LOOKUP_CHUNK):
        db.session.execute(sa.update(table).where(
            table.c.destination_id == destination_id, table.c.kind == kind,
            table.c.external_id.in_(ids[start:start + LOOKUP_CHUNK])).values(action=None, job_path=None))
    db.session.commit()


def held(destination_id: int, kind: str, page: int = 1000, *,
         confirmed: bool = True) -> Iterator[list[tuple[str, str | None]]]:
    """Pages of (external id, product key) the platform holds or may hold, by id (with `confirmed=False`:
    the entries it does not hold, e.g. refused creates)."""
    table = CatalogEntry.__table__
    last = 0
    while True:
        rows = db.session.execute(sa.select(table.c.id, table.c.external_id, table.c.product_key).where(
            table.c.destination_id == destination_id, table.c.kind == kind, table.c.id > last,
            table.c.confirmed_digest.is_not(None) if confirmed else table.c.confirmed_digest.is_(None))
            .order_by(table.c.id).limit(page)).all()
        if not rows:
            return
        last = rows[-1].id
        yield [(row.external_id, row.product_key) for row in rows]


def align_with_platform(destination_id: int, kind: str, present: set[str]) -> dict[str, int]:
    """What the platform's own listing says: entries it lost are no longer confirmed (they are created again),
    entries it has that the ledger does not know are added as unknown (updated, or deleted if unwanted)."""
    table = CatalogEntry.__table__
    lost: list[str] = []
    known: set[str] = set()
    for page in held(destination_id, kind):
        for external_id, _ in page:
            known.add(external_id)
            if external_id not in present:
                lost.append(external_id)
    for start in range(0, len(lost), LOOKUP_CHUNK):
        db.session.execute(sa.update(table).where(
            table.c.destination_id == destination_id, table.c.kind == kind,
            table.c.external_id.in_(lost[start:start + LOOKUP_CHUNK])).values(confirmed_digest=None,
                                                                              updated_at=utcnow()))
    strangers = sorted(present - known)
    existing = set(lookup(destination_id, kind, strangers))
    now = utcnow()
    rows = [{"destination_id": destination_id, "kind": kind, "external_id": external_id,
             "confirmed_digest": UNKNOWN, "updated_at": now} for external_id in strangers if external_id not in existing]
    for start in range(0, len(rows), LOOKUP_CHUNK):
        db.session.execute(sa.insert(table), rows[start:start + LOOKUP_CHUNK])
    for start in range(0, len(strangers), LOOKUP_CHUNK):
        chunk = [external_id for external_id in strangers[start:start + LOOKUP_CHUNK] if external_id in existing]
        if chunk:
            db.session.execute(sa.update(table).where(
                table.c.destination_id == destination_id, table.c.kind == kind,
                table.c.external_id.in_(chunk)).values(confirmed_digest=UNKNOWN, updated_at=now))
    db.session.commit()
    return {"lost": len(lost), "unknown": len(strangers)}


def summary(destination_id: int) -> dict[str, dict[str, int]]:
    """Per kind: entries confirmed, in flight and refused."""
    table = CatalogEntry.__table__
    rows = db.session.execute(sa.select(
        table.c.kind,
        sa.func.count().filter(table.c.confirmed_digest.is_not(None)).label("confirmed"),
        sa.func.count().filter(table.c.action.is_not(None)).label("pending"),
        sa.func.count().filter(table.c.error.is_not(None)).label("errors"),
    ).where(table.c.destination_id == destination_id).group_by(table.c.kind)).all()
    found = {row.kind: {"confirmed": row.confirmed, "pending": row.pending, "errors": row.errors} for row in rows}
    return {kind: found.get(kind, {"confirmed": 0, "pending": 0, "errors": 0}) for kind in
            ("category", "item", "variant")}


def pending_jobs(destination_id: int) -> int:
    table = CatalogEntry.__table__
    return db.session.scalar(sa.select(sa.func.count(sa.distinct(table.c.job_path))).where(
        table.c.destination_id == destination_id, table.c.job_path.is_not(None))) or 0


def errors(destination_id: int, limit: int = 50) -> list[CatalogEntry]:
    return list(db.session.scalars(sa.select(CatalogEntry).where(
        CatalogEntry.destination_id == destination_id, CatalogEntry.error.is_not(None))
        .order_by(CatalogEntry.updated_at.desc(), CatalogEntry.id.desc()).limit(limit)).all())


def drop(destination_id: int, kind: str, ids: Iterable[str], *, confirmed: bool = False) -> None:
    """Entries the platform does not hold and the catalog no longer wants (their errors no longer matter);
    with `confirmed`, also ones it holds but cannot be asked to remove (Sendlane keeps them)."""
    table = CatalogEntry.__table__
    chunk = list(ids)
    for start in range(0, len(chunk), LOOKUP_CHUNK):
        where = [table.c.destination_id == destination_id, table.c.kind == kind,
                 table.c.external_id.in_(chunk[start:start + LOOKUP_CHUNK])]
        if not confirmed:
            where.append(table.c.confirmed_digest.is_(None))
        db.session.execute(sa.delete(table).where(*where))
    db.session.commit()


def unconfirm(destination_id: int) -> None:
    """A platform that lists nothing back gets everything again (a full reconcile): what it confirmed is
    unknown from now on, so the diff sends every entry as an update."""
    table = CatalogEntry.__table__
    db.session.execute(sa.update(table).where(table.c.destination_id == destination_id,
                                              table.c.confirmed_digest.is_not(None))
                       .values(confirmed_digest=UNKNOWN, updated_at=utcnow()))
    db.session.commit()
