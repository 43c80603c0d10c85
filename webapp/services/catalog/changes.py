"""What follows a catalog change: rebuild the feeds that draw on the source, send the changes to platforms.

Destinations whose `catalog` is "api" get them: Klaviyo (Catalog API) and Sendlane (product-added,
category-added) through a reconcile (platform_catalogs), webhooks as product events through the outbox. A
webhook whose event list names product_upsert / product_delete gets them too.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Destination, Feed, Product, Source, SyncRun, feed_sources, utcnow
from webapp.services.catalog.diff import Diff
from webapp.services.orders.outbox import NewEvent, Target, write_events

log = logging.getLogger(__name__)
PRODUCT_EVENTS = ("product_upsert", "product_delete")


def product_targets() -> list[Target]:
    from workers.destinations import get_adapter_class

    targets = []
    for destination in db.session.scalars(sa.select(Destination).where(Destination.enabled)).all():
        supported = get_adapter_class(destination.kind).supported_events
        wanted = set(PRODUCT_EVENTS) if destination.catalog == "api" else set(destination.events or [])
        accepts = wanted & set(PRODUCT_EVENTS) & supported
        if accepts:
            targets.append(Target(destination.id, destination.mode, frozenset(accepts)))
    return targets


def product_json(row: Any) -> dict[str, Any]:
    """A product row as events carry it (money as JSON numbers)."""
    def number(value: Decimal | None) -> float | None:
        return None if value is None else float(value)

    return {"external_id": row.external_id, "item_group_id": row.item_group_id, "title": row.title,
            "description": row.description, "link": row.link, "image_link": row.image_link,
            "price": number(row.price), "compare_at_price": number(row.compare_at_price),
            "currency": row.currency, "brand": row.brand, "categories": row.categories or [],
            "inventory_quantity": row.inventory_quantity, "inventory_policy": row.inventory_policy,
            "sku": row.sku, "gtin": row.gtin, "mpn": row.mpn, "condition": row.condition,
            "extras": row.extras or {}}


def queue_product_events(source_id: int, changed_ids: list[int], removed_keys: list[str], added: set[int],
                         run_key: str) -> set[int]:
    """Outbox rows for changed and removed products (same transaction as the caller's commit)."""
    targets = product_targets()
    if not targets or not (changed_ids or removed_keys):
        return set()
    now = utcnow()
    touched: set[int] = set()
    for start in range(0, len(changed_ids), 1000):
        rows = db.session.scalars(sa.select(Product).where(Product.id.in_(changed_ids[start:start + 1000]))).all()
        events = [NewEvent("product_upsert", f"{source_id}:{row.external_id}:{row.content_hash}",
                           {"product": product_json(row), "change": "added" if row.id in added else "updated"},
                           now) for row in rows]
        touched |= write_events(events, targets)
    deletes = [NewEvent("product_delete", f"{source_id}:{key}:deleted:{run_key}",
                        {"product": {"external_id": key}}, now) for key in removed_keys]
    touched |= write_events(deletes, targets)
    return touched


def product_events(source_id: int, staged: list[Any], run_key: str) -> list[NewEvent]:
    """The events of staged changes (catalog_stage rows), with the same unique ids `queue_product_events`
    gives: a change applied twice (an apply resumed after its worker died) is still one event."""
    now = utcnow()
    events = []
    for row in staged:
        if row.op == "d":
            events.append(NewEvent("product_delete", f"{source_id}:{row.external_id}:deleted:{run_key}",
                                   {"product": {"external_id": row.external_id}}, now))
        else:
            events.append(NewEvent("product_upsert", f"{source_id}:{row.external_id}:{row.content_hash}",
                                   {"product": product_json(row), "change": "added" if row.op == "i" else "updated"},
                                   now))
    return events


def dependent_feeds(source_id: int) -> list[Feed]:
    return list(db.session.scalars(sa.select(Feed).join(feed_sources).where(
        feed_sources.c.source_id == source_id)).all())


def after_sync(source: Source, run: SyncRun, diff: Diff) -> None:
    """Hook after a successful sync commit: product events (a file sync wrote them with each applied chunk,
    `diff.touched`), then feed rebuilds (best effort)."""
    from webapp.services.orders.ingest import signal_destinations
    from webapp.services.platform_catalogs import back_in_stock
    from webapp.services.platform_catalogs import runs as catalog_runs

    changed = diff.added or diff.updated or diff.removed
    if not changed:
        return
    catalog_runs.after_sync()
    back_in_stock.check_restocks()
    touched = queue_product_events(source.id, diff.added_ids + diff.updated_ids, diff.removed_keys,
                                   set(diff.added_ids), str(run.id)) | diff.touched
    db.session.commit()
    signal_destinations(touched, product_targets())
    rebuild_feeds_for(source.id, trigger="sync")


def rebuild_feeds_for(source_id: int, trigger: str) -> None:
    from webapp.services.publishing import builds as feed_builds

    for feed in dependent_feeds(source_id):
        try:
            feed_builds.request_build(feed, trigger=trigger)
        except feed_builds.BuildAlreadyRunning:
            feed_builds.mark_rebuild_wanted(feed)
