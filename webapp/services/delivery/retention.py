"""Retention: delivered (and skipped) events lose their payload after RETENTION_BODY_DAYS and their rows,
attempts and requests after RETENTION_ROW_DAYS; retrying, rejected and dead events stay until resolved.
Personal data elsewhere follows the same two periods: checkouts (email, customer, addresses) go after
RETENTION_ROW_DAYS, finished imports lose their uploaded file and their problem list (which quotes the
rows) after RETENTION_BODY_DAYS. Contacts and orders stay while the store uses them (LTV needs them) until
an erasure (webapp/services/contacts/erasure.py).

Every pass works in chunks of CHUNK rows, one short transaction each (a few milliseconds: SQLite's single
write lock is never held long, so ingest goes on between chunks). Deleted events are folded into the
roll-ups (event_rollups.py) in the transaction that deletes them, and /metrics reads counters that
pruning never touches, so no total changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from webapp.extensions import db
from webapp.models import (
    BackInStockSubscription,
    CatalogReconcile,
    Checkout,
    DeliveryAttempt,
    DeliveryRequest,
    Event,
    Feed,
    FeedFetch,
    ImportRun,
    Replay,
    RetentionMark,
    utcnow,
)
from webapp.services.delivery import rollups as event_rollups
from webapp.services.delivery.counters import PRUNED_STATES

CHUNK = 500
# Bound on one pass (a nightly job): it resumes where it stopped the next night.
MAX_SECONDS = 600.0
PRUNED_PAYLOAD: dict = {}
REMOVED_UPLOAD = "removed by retention: "  # an import whose file and problem list retention removed


def prune(now: datetime | None = None, chunk: int = CHUNK) -> dict[str, int]:
    now = now or utcnow()
    body_cutoff = now - timedelta(days=current_app.config["RETENTION_BODY_DAYS"])
    row_cutoff = now - timedelta(days=current_app.config["RETENTION_ROW_DAYS"])
    deadline = time.monotonic() + MAX_SECONDS
    result = dict.fromkeys(("events_deleted", "attempts_deleted", "payloads_pruned", "bodies_pruned",
                            "requests_deleted", "feed_fetches_deleted", "back_in_stock_deleted",
                            "reconciles_deleted", "replays_deleted", "checkouts_deleted", "imports_pruned",
                            "chunks"), 0)
    for state in PRUNED_STATES:
        _delete_events(state, row_cutoff, chunk, deadline, result)
    _prune_payloads(body_cutoff, chunk, deadline, result)
    _prune_request_bodies(body_cutoff, chunk, deadline, result)
    _delete_requests(row_cutoff, chunk, deadline, result)
    _delete_feed_fetches(row_cutoff, chunk, deadline, result)
    _delete_back_in_stock(body_cutoff, row_cutoff, chunk, deadline, result)
    _delete_checkouts(row_cutoff, chunk, deadline, result)
    _prune_imports(body_cutoff, result)
    db.session.commit()  # end the last read's transaction too (no lock left behind on PostgreSQL)
    return result


def _delete_events(state: str, cutoff: datetime, chunk: int, deadline: float, result: dict[str, int]) -> None:
    """Oldest first on the (state, created_at) index; the state is checked again by the DELETE itself (a
    replay may have sent the event again meanwhile), and only what was deleted is folded."""
    events = Event.__table__
    while time.monotonic() < deadline:
        rows = db.session.execute(
            sa.select(events.c.id, events.c.destination_id, events.c.contact_id, events.c.state,
                      events.c.created_at, events.c.delivered_at)
            .where(events.c.state == state, events.c.created_at < cutoff)
            .order_by(events.c.created_at).limit(chunk).with_for_update(skip_locked=True)).all()
        if not rows:
            return
        ids = [row.id for row in rows]
        result["attempts_deleted"] += db.session.execute(sa.delete(DeliveryAttempt.__table__).where(
            DeliveryAttempt.event_id.in_(sa.select(events.c.id).where(events.c.id.in_(ids),
                                                                      events.c.state == state)))).rowcount
        deleted = set(db.session.scalars(sa.delete(events).where(events.c.id.in_(ids), events.c.state == state)
                                         .returning(events.c.id)).all())
        event_rollups.fold(row for row in rows if row.id in deleted)
        _commit(result)
        result["events_deleted"] += len(deleted)
        if len(rows) < chunk:
            return


def _prune_payloads(cutoff: datetime, chunk: int, deadline: float, result: dict[str, int]) -> None:
    """Payloads of settled events created before `cutoff`: keyset pages on (state, created_at) from where the
    last pass stopped (its mark, saved with each page), so a pass never walks the same days twice."""
    events = Event.__table__
    for state in PRUNED_STATES:
        _pages(f"payloads:{state}", events.c.created_at, cutoff, chunk, deadline, result,
               sa.select(events.c.id, events.c.created_at).where(events.c.state == state),
               lambda ids, state=state: sa.update(events).where(events.c.id.in_(ids), events.c.state == state)
               .values(payload=PRUNED_PAYLOAD), "payloads_pruned")


def _prune_request_bodies(cutoff: datetime, chunk: int, deadline: float, result: dict[str, int]) -> None:
    requests = DeliveryRequest.__table__
    _pages("request_bodies", requests.c.started_at, cutoff, chunk, deadline, result,
           sa.select(requests.c.id, requests.c.started_at),
           lambda ids: sa.update(requests).where(requests.c.id.in_(ids), requests.c.outcome == "delivered",
                                                 requests.c.request_body.is_not(None))
           .values(request_body=None, response_body=None), "bodies_pruned")


def _pages(mark: str, column: sa.Column, cutoff: datetime, chunk: int, deadline: float, result: dict[str, int],
           query: sa.Select, change: Callable[[list[int]], sa.Update], key: str) -> None:
    """Rows with mark <= column < cutoff, a page per transaction; the page's last time becomes the mark in
    the same transaction (rows sharing it are seen again: changing them twice is a no-op)."""
    after = _mark(mark)
    while time.monotonic() < deadline:
        rows = db.session.execute(query.where(column >= after, column < cutoff).order_by(column)
                                  .limit(chunk)).all()
        if rows:
            result[key] += db.session.execute(change([row[0] for row in rows])).rowcount
        full = len(rows) == chunk
        if full and rows[-1][1] == after:  # a whole page at one instant: step over it
            after += timedelta(microseconds=1)
        else:
            after = rows[-1][1] if full else cutoff
        _set_mark(mark, after)
        _commit(result)
        if not full:
            return


def _delete_requests(cutoff: datetime, chunk: int, deadline: float, result: dict[str, int]) -> None:
    """Old requests no attempt refers to any more (a kept failure keeps the requests of its attempts)."""
    requests, attempts = DeliveryRequest.__table__, DeliveryAttempt.__table__
    last = (datetime.min.replace(tzinfo=cutoff.tzinfo), 0)
    while time.monotonic() < deadline:
        rows = db.session.execute(
            sa.select(requests.c.id, requests.c.started_at)
            .where(requests.c.started_at < cutoff,
                   sa.or_(requests.c.started_at > last[0],
                          sa.and_(requests.c.started_at == last[0], requests.c.id > last[1])))
            .order_by(requests.c.started_at, requests.c.id).limit(chunk)).all()
        if not rows:
            return
        result["requests_deleted"] += db.session.execute(sa.delete(requests).where(
            requests.c.id.in_([row.id for row in rows]),
            ~sa.exists().where(attempts.c.request_id == requests.c.id))).rowcount
        _commit(result)
        last = (rows[-1].started_at, rows[-1].id)
        if len(rows) < chunk:
            return


def _delete_feed_fetches(cutoff: datetime, chunk: int, deadline: float, result: dict[str, int]) -> None:
    """Per feed, on the (feed_id, fetched_at) index."""
    fetches = FeedFetch.__table__
    for feed_id in db.session.scalars(sa.select(Feed.id).order_by(Feed.id)).all():
        while time.monotonic() < deadline:
            ids = db.session.scalars(sa.select(fetches.c.id).where(
                fetches.c.feed_id == feed_id, fetches.c.fetched_at < cutoff)
                .order_by(fetches.c.fetched_at).limit(chunk)).all()
            if not ids:
                break
            result["feed_fetches_deleted"] += db.session.execute(
                sa.delete(fetches).where(fetches.c.id.in_(ids))).rowcount
            _commit(result)
            if len(ids) < chunk:
                break


def _delete_back_in_stock(body_cutoff: datetime, row_cutoff: datetime, chunk: int, deadline: float,
                          result: dict[str, int]) -> None:
    """Back-in-stock subscriptions (an email or phone): RETENTION_BODY_DAYS after their restock, or
    RETENTION_ROW_DAYS after they were made if the product never came back; old reconcile runs and window
    replays too (finished ones: a replay still going keeps its row)."""
    table = BackInStockSubscription.__table__
    conditions = (sa.and_(table.c.restocked_at.is_not(None), table.c.restocked_at < body_cutoff),
                  sa.and_(table.c.restocked_at.is_(None), table.c.created_at < row_cutoff))
    for condition in conditions:
        while time.monotonic() < deadline:
            ids = db.session.scalars(sa.select(table.c.id).where(condition).order_by(table.c.id).limit(chunk)).all()
            if not ids:
                break
            result["back_in_stock_deleted"] += db.session.execute(
                sa.delete(table).where(table.c.id.in_(ids))).rowcount
            _commit(result)
    runs = CatalogReconcile.__table__
    result["reconciles_deleted"] += db.session.execute(sa.delete(runs).where(
        runs.c.finished_at.is_not(None), runs.c.finished_at < row_cutoff)).rowcount
    replays = Replay.__table__
    result["replays_deleted"] += db.session.execute(sa.delete(replays).where(
        replays.c.finished_at.is_not(None), replays.c.finished_at < row_cutoff)).rowcount
    _commit(result)


def _delete_checkouts(cutoff: datetime, chunk: int, deadline: float, result: dict[str, int]) -> None:
    """Checkouts started before `cutoff` (long since completed or abandoned): their email and addresses go."""
    table = Checkout.__table__
    while time.monotonic() < deadline:
        ids = db.session.scalars(sa.select(table.c.id).where(table.c.started_at < cutoff)
                                 .order_by(table.c.id).limit(chunk)).all()
        if not ids:
            return
        result["checkouts_deleted"] += db.session.execute(sa.delete(table).where(table.c.id.in_(ids))).rowcount
        _commit(result)
        if len(ids) < chunk:
            return


def _prune_imports(cutoff: datetime, result: dict[str, int]) -> None:
    """Finished imports: the uploaded file (kept only to resume) and the problem list (it quotes rows) go."""
    table = ImportRun.__table__
    rows = db.session.execute(sa.select(table.c.id, table.c.filename).where(
        table.c.finished_at.is_not(None), table.c.finished_at < cutoff,
        table.c.filename.not_like(f"{REMOVED_UPLOAD}%"))).all()
    for row in rows:
        _remove_upload(row.filename)
    if rows:
        db.session.execute(sa.update(table).where(table.c.id == sa.bindparam("b_id")).values(
            problems=[], filename=sa.bindparam("b_name")),
            [{"b_id": row.id, "b_name": f"{REMOVED_UPLOAD}{Path(row.filename).name}"} for row in rows])
        result["imports_pruned"] += len(rows)
        _commit(result)


def _remove_upload(filename: str | None) -> None:
    """Delete an uploaded import file, only inside the uploads folder (a CLI import names the user's own file)."""
    if not filename:
        return
    uploads = Path(current_app.config["UPLOADS_DIR"]).resolve()
    path = Path(filename).resolve()
    if path.is_relative_to(uploads) and path.is_file():
        path.unlink()


def _mark(name: str) -> datetime:
    found = db.session.get(RetentionMark, name)
    return found.until if found is not None else datetime.min.replace(tzinfo=utcnow().tzinfo)


def _set_mark(name: str, until: datetime) -> None:
    found = db.session.get(RetentionMark, name)
    if found is None:
        db.session.add(RetentionMark(name=name, until=until))
    elif found.until < until:
        found.until = until


def _commit(result: dict[str, int]) -> None:
    db.session.commit()
    result["chunks"] += 1
