"""What needs a person now, each with a link to where it gets fixed. The overview lists these first.

Errors (something is stopped or losing ground) come before warnings (something to look at).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Destination, Event
from webapp.services.delivery.destinations import rate_limited_until
from webapp.services.overview.catalog_freshness import FeedFreshness, SourceFreshness
from webapp.services.overview.runtime_status import RuntimeStatus

PENDING_TOO_LONG = timedelta(minutes=15)
UNFETCHED_AFTER_PUBLISH = timedelta(hours=24)


@dataclass(frozen=True)
class AttentionItem:
    severity: str  # "error" | "warning"
    title: str
    detail: str
    url: str
    action: str


def attention_items(runtime: RuntimeStatus, sources: list[SourceFreshness],
                    feeds: list[FeedFreshness]) -> list[AttentionItem]:
    now = runtime.now
    items = (_runtime_items(runtime) + _destination_items(now) + _catalog_items() + _source_items(sources)
             + _feed_items(feeds, now))
    return sorted(items, key=lambda item: item.severity != "error")


def _runtime_items(runtime: RuntimeStatus) -> list[AttentionItem]:
    if not runtime.redis_ok:
        return [AttentionItem("error", "Redis is unreachable",
                              f"Workers get no signals and the scheduler cannot run ({runtime.redis_error}). "
                              "Nothing is lost: work resumes when Redis is back.",
                              "/settings/#instance", "Check instance status")]
    items = []
    if not runtime.workers:
        items.append(AttentionItem("error", "No worker is running",
                                   "Deliveries, syncs and feed builds wait until one starts "
                                   "(shoprelay worker, or shoprelay up).", "/jobs/", "Open jobs"))
    if not runtime.scheduler_alive:
        beat = runtime.last_scheduler_heartbeat
        detail = (f"Its last heartbeat was {int((runtime.now - beat).total_seconds() // 60)} min ago"
                  if beat else "No scheduler has registered")
        items.append(AttentionItem("warning", "The scheduler is not running",
                                   f"{detail}: nightly syncs and retry sweeps do not start "
                                   "(shoprelay scheduler, or shoprelay up).", "/jobs/", "Open jobs"))
    return items


def _destination_items(now: datetime) -> list[AttentionItem]:
    destinations = db.session.scalars(sa.select(Destination).order_by(Destination.name, Destination.id)).all()
    failed = _failed_counts()
    items = []
    for destination in destinations:
        url = f"/destinations/{destination.id}"
        if destination.paused_at is not None:
            items.append(AttentionItem("error", f"{destination.name} is paused",
                                       destination.pause_reason or "Paused; events wait until it resumes.",
                                       url, "Review and resume"))
        if (until := rate_limited_until(destination, now)) is not None:
            items.append(AttentionItem("warning", f"{destination.name} is rate limited",
                                       f"The platform asked to wait: nothing is sent until "
                                       f"{until.strftime('%H:%M:%S')} UTC; events keep queueing.",
                                       url, "Open destination"))
        counts = failed.get(destination.id)
        if counts:
            parts = [f"{counts[state]:,} {state}" for state in ("dead", "rejected") if counts.get(state)]
            items.append(AttentionItem("error" if counts.get("dead") else "warning",
                                       f"{destination.name} has undelivered events",
                                       f"Not delivered: {', '.join(parts)}. Retry them after fixing the cause.",
                                       url, "See failed events"))
        if destination.enabled and destination.paused_at is None:
            overdue = _overdue_since(destination, now)
            if overdue is not None:
                minutes = int((now - overdue).total_seconds() // 60)
                items.append(AttentionItem("warning", f"{destination.name} is falling behind",
                                           f"The oldest pending event has waited {minutes} min.",
                                           url, "Open destination"))
    return items


def _catalog_items() -> list[AttentionItem]:
    """Klaviyo catalogs out of step: a failed reconcile, entries Klaviyo refused, a feed fetched as well."""
    from webapp.services.platform_catalogs import status as catalog_status

    items = []
    for row in catalog_status.klaviyo_catalogs():
        destination, url = row["destination"], f"/destinations/{row['destination'].id}"
        if row["state"] == "failed":
            items.append(AttentionItem("error", f"{destination.name}'s catalog is out of step",
                                       f"The last reconcile failed: {row['last_run'].error}", url, "Open catalog"))
        elif row["state"] == "errors":
            items.append(AttentionItem("warning", f"Klaviyo refused some of {destination.name}'s catalog",
                                       "Some items or variants were refused; each is listed with its product.",
                                       url, "See refused entries"))
        if row["both"]:
            items.append(AttentionItem("warning", f"{destination.name}'s catalog is fed twice",
                                       "A Klaviyo feed is still fetched while the Catalog API is on; Klaviyo "
                                       "takes one or the other: remove the feed source in Klaviyo.", url,
                                       "Open destination"))
    return items


def _failed_counts() -> dict[int, dict[str, int]]:
    """Dead and rejected events per destination: index-only counts on (destination_id, state, ...) per
    destination, instead of visiting every failed event row to learn its destination."""
    def count(state: str) -> sa.ScalarSelect[int]:
        return (sa.select(sa.func.count()).select_from(Event)
                .where(Event.destination_id == Destination.id, Event.state == state).scalar_subquery())

    rows = db.session.execute(sa.select(Destination.id, count("dead"), count("rejected")))
    return {destination_id: {"dead": dead, "rejected": rejected}
            for destination_id, dead, rejected in rows if dead or rejected}


def _overdue_since(destination: Destination, now: datetime) -> datetime | None:
    """When the oldest pending event became due, if longer ago than allowed (batch mode waits its interval).

    One look-up on the (destination_id, state, next_attempt_at) index.
    """
    allowed = PENDING_TOO_LONG
    if destination.mode == "batch":
        allowed += timedelta(minutes=destination.batch_interval_minutes)
    oldest = db.session.scalar(sa.select(sa.func.min(Event.next_attempt_at)).where(
        Event.destination_id == destination.id, Event.state == "pending"))
    return oldest if oldest is not None and now - oldest > allowed else None


def _source_items(sources: list[SourceFreshness]) -> list[AttentionItem]:
    items = []
    for source in sources:
        if source.failed and source.last_run is not None:
            run = source.last_run
            verb = "was held back" if run.status == "held" else "failed"
            items.append(AttentionItem("warning" if run.status == "held" else "error",
                                       f"Last sync of {source.name} {verb}",
                                       run.error or "See the sync run for its problems.",
                                       f"/sources/{source.id}", "Open source"))
    return items


def _feed_items(feeds: list[FeedFreshness], now: datetime) -> list[AttentionItem]:
    items = []
    for feed in feeds:
        url = f"/feeds/{feed.id}"
        build = feed.last_build
        if feed.build_failed and build is not None:
            verb = "was held back" if build.status == "held" else "failed"
            items.append(AttentionItem("warning" if build.status == "held" else "error",
                                       f"Last build of {feed.name} {verb}",
                                       build.error or "See the build report.", url, "Open feed"))
        if (feed.published_at is not None and now - feed.published_at > UNFETCHED_AFTER_PUBLISH
                and not feed.fetched_since_published):
            items.append(AttentionItem("warning", f"No platform has fetched {feed.name}",
                                       "Published over 24 h ago and not fetched since: check the feed URL "
                                       "in the platform's catalog settings.", url, "Open feed"))
    return items
