"""A destination's catalog as the API and the destination page show it: what the platform confirmed, jobs in
flight, the last reconcile and its progress, entries the platform refused (with the product they concern)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import CatalogReconcile, Destination, Feed, FeedFetch, utcnow
from webapp.services.platform.jsonutil import iso
from webapp.services.platform_catalogs import ledger, runs

KLAVIYO_FEED_FORMATS = ("klaviyo_xml", "klaviyo_json")
FETCHED_WITHIN = timedelta(days=7)


def run_json(run: CatalogReconcile | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"id": run.id, "status": run.status, "trigger": run.trigger, "full": run.full, "phase": run.phase,
            "done": run.done, "total": run.total, "counts": run.counts or {}, "error": run.error,
            "created_at": iso(run.created_at), "started_at": iso(run.started_at),
            "finished_at": iso(run.finished_at)}


def state(destination: Destination, last: CatalogReconcile | None, pending: int, errors: int) -> str:
    """off | not_supported | reconciling | in_step | errors | failed | waiting (switched on, no run yet)."""
    if destination.catalog != "api":
        return "off"
    if not runs.reconciled(destination):
        return "events" if destination.kind != "esputnik" else "not_supported"
    if last is None:
        return "waiting"
    if last.status in runs.ACTIVE or pending:
        return "reconciling"
    if last.status == "failed":
        return "failed"
    return "errors" if errors else "in_step"


def catalog_status(destination: Destination) -> dict[str, Any]:
    summary = ledger.summary(destination.id)
    pending = ledger.pending_jobs(destination.id)
    refused = sum(kind["errors"] for kind in summary.values())
    last = runs.last_run(destination.id)
    succeeded = db.session.scalars(sa.select(CatalogReconcile).where(
        CatalogReconcile.destination_id == destination.id, CatalogReconcile.status == "succeeded")
        .order_by(CatalogReconcile.id.desc()).limit(1)).first()
    return {
        "state": state(destination, last, pending, refused), "catalog": destination.catalog,
        "items": summary["item"]["confirmed"], "variants": summary["variant"]["confirmed"],
        "categories": summary["category"]["confirmed"], "pending_jobs": pending,
        "last_reconciled_at": iso(succeeded.finished_at) if succeeded else None,
        "last_reconcile": run_json(last),
        "errors": [{"kind": entry.kind, "external_id": entry.external_id, "product": entry.product_key,
                    "message": entry.error, "at": iso(entry.updated_at)} for entry in ledger.errors(destination.id)],
        "warnings": catalog_warnings(destination),
    }


def catalog_warnings(destination: Destination) -> list[dict[str, str]]:
    """Klaviyo feeds one custom catalog by a feed or by the API, never both."""
    if destination.kind != "klaviyo" or destination.catalog != "api":
        return []
    fetched = db.session.execute(sa.select(Feed.name).join(FeedFetch, FeedFetch.feed_id == Feed.id).where(
        Feed.format.in_(KLAVIYO_FEED_FORMATS), FeedFetch.fetched_at > utcnow() - FETCHED_WITHIN,
        FeedFetch.status < 400).group_by(Feed.name).limit(5)).scalars().all()
    if not fetched:
        return []
    return [{"path": "catalog", "message": f"the Klaviyo feed {', '.join(repr(n) for n in fetched)} was fetched in the "
             "last 7 days: Klaviyo fills a custom catalog from a feed or from the Catalog API, never both — remove "
             "the feed source in Klaviyo, or switch this catalog off"}]


def klaviyo_catalogs() -> list[dict[str, Any]]:
    """The overview's line per Klaviyo destination: fed by the Catalog API, by a feed, or not at all, and
    whether it is in step."""
    rows = []
    feeds_fetched = bool(db.session.scalar(sa.select(sa.func.count()).select_from(FeedFetch).join(
        Feed, FeedFetch.feed_id == Feed.id).where(Feed.format.in_(KLAVIYO_FEED_FORMATS),
                                                 FeedFetch.fetched_at > utcnow() - FETCHED_WITHIN,
                                                 FeedFetch.status < 400)))
    for destination in db.session.scalars(sa.select(Destination).where(Destination.kind == "klaviyo")
                                          .order_by(Destination.name, Destination.id)).all():
        if destination.catalog == "api":
            last = runs.last_run(destination.id)
            pending = ledger.pending_jobs(destination.id)
            refused = sum(kind["errors"] for kind in ledger.summary(destination.id).values())
            rows.append({"destination": destination, "fed_by": "Catalog API", "both": feeds_fetched,
                         "state": state(destination, last, pending, refused), "last_run": last})
        else:
            rows.append({"destination": destination, "fed_by": "feed" if feeds_fetched else "nothing yet",
                         "both": False, "state": None, "last_run": None})
    return rows
