"""What is wrong right now, read from the state shoprelay already keeps: paused destinations, dead-lettered
events, the latest finished sync of each source and build of each feed, feed fetches, and the liveness of
workers and the scheduler in RQ's registries.

Each problem is a Condition keyed by (kind, subject); incidents.py opens and closes incidents from them. All
of it is a handful of indexed queries (destinations, sources and feeds number in the tens).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from webapp.extensions import db
from webapp.models import Destination, Event, Feed, FeedBuild, FeedFetch, Source, SyncRun
from webapp.schemas.alerts import ALERT_EVENTS
from webapp.services.overview.runtime_status import RuntimeStatus, runtime_status

KINDS = ALERT_EVENTS  # the contract's event names, one kind of incident each
KIND_LABELS = {
    "destination_paused": "Destination paused", "dead_letters": "Dead letters appeared",
    "sync_failed": "Sync failed", "sync_held": "Sync held back", "feed_held": "Feed build held back or failed",
    "feed_stale": "Feed no longer fetched", "worker_down": "No worker running", "scheduler_down": "Scheduler silent",
}
LIVENESS_KINDS = frozenset({"worker_down", "scheduler_down"})
_FINISHED = ("succeeded", "failed", "held")


@dataclass(frozen=True)
class Condition:
    """One problem as seen now: what, since when, the likely cause, what it means, where it is fixed."""

    kind: str
    subject: str  # "destination:3", "source:2", "feed:5", "instance"
    title: str
    detail: str  # the likely cause, in the words of the part that failed
    impact: str  # what it means while it lasts
    path: str  # the dashboard page that fixes it
    action: str  # what to do there
    since: datetime | None = None  # when it started, when the state says (None: when first seen)
    severity: str = "error"  # error | warning

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.subject


def current(now: datetime, kinds: Iterable[str] = KINDS, runtime: RuntimeStatus | None = None) -> list[Condition]:
    """Every problem of the given kinds that holds now."""
    wanted = set(kinds)
    found: list[Condition] = []
    for detect in dict.fromkeys(detect for kind, detect in _DETECTORS.items() if kind in wanted):
        found += detect(now)  # one detector may answer two kinds (sync_failed and sync_held)
    if wanted & LIVENESS_KINDS:
        found += liveness(runtime or runtime_status(now))
    return [condition for condition in found if condition.kind in wanted]


def destination_paused(now: datetime) -> list[Condition]:
    rows = db.session.execute(sa.select(Destination.id, Destination.name, Destination.paused_at,
                                        Destination.pause_reason)
                              .where(Destination.enabled.is_(True), Destination.paused_at.is_not(None))
                              .order_by(Destination.id))
    found = []
    for row in rows:
        reason = row.pause_reason or "paused by a user"
        credentials = "credentials" in reason
        found.append(Condition(
            "destination_paused", f"destination:{row.id}", f"{row.name} is paused", reason,
            "Events for it keep queueing and nothing is dropped, but none reaches the platform until it resumes: "
            "flows there (abandoned cart, post-purchase) do not fire.",
            f"/destinations/{row.id}/edit" if credentials else f"/destinations/{row.id}",
            "Rotate the credentials, then resume" if credentials else "Review and resume", since=row.paused_at))
    return found


def dead_letters(now: datetime) -> list[Condition]:
    """Destinations holding dead-lettered events: one index-only count per destination."""
    dead = (sa.select(sa.func.count()).select_from(Event)
            .where(Event.destination_id == Destination.id, Event.state == "dead").scalar_subquery())
    found = []
    for destination_id, name, count in db.session.execute(
            sa.select(Destination.id, Destination.name, dead).order_by(Destination.id)):
        if not count:
            continue
        last = db.session.execute(sa.select(Event.name, Event.last_error).where(
            Event.destination_id == destination_id, Event.state == "dead").order_by(Event.id.desc()).limit(1)).one()
        noun = "event" if count == 1 else "events"
        found.append(Condition(
            "dead_letters", f"destination:{destination_id}", f"{name} has dead-lettered events",
            f"{count:,} {noun} could not be delivered after every retry; the latest ({last.name}): "
            f"{(last.last_error or 'no answer recorded')[:300]}",
            "They stay stored until someone retries them; the platform is missing them until then.",
            f"/destinations/{destination_id}", "Fix the cause, then retry the failed events"))
    return found


def syncs(now: datetime) -> list[Condition]:
    """sync_failed / sync_held: the latest finished run of each enabled source (a run in progress does not end
    the problem: its outcome does)."""
    latest = sa.select(sa.func.max(SyncRun.id)).where(SyncRun.status.in_(_FINISHED)).group_by(SyncRun.source_id)
    rows = db.session.execute(sa.select(SyncRun.id, SyncRun.status, SyncRun.error, SyncRun.finished_at,
                                        SyncRun.updated_at, Source.id.label("source_id"), Source.name)
                              .join(Source, Source.id == SyncRun.source_id)
                              .where(SyncRun.id.in_(latest), SyncRun.status.in_(("failed", "held")),
                                     Source.enabled.is_(True)).order_by(Source.id))
    found = []
    for row in rows:
        error = row.error or "see the sync run for its problems"
        since = row.finished_at or row.updated_at
        if row.status == "held":
            found.append(Condition(
                "sync_held", f"source:{row.source_id}", f"The last sync of {row.name} was held back", error,
                "The previous catalog stays in place: feeds and platforms keep the products as they were.",
                f"/sources/{row.source_id}", "Check the file, then confirm the removals", since=since,
                severity="warning"))
            continue
        credentials = any(code in error for code in ("HTTP 401", "HTTP 403"))
        found.append(Condition(
            "sync_failed", f"source:{row.source_id}", f"The last sync of {row.name} failed", error,
            "The previous catalog stays in place; product changes since then are not in the feeds.",
            f"/sources/{row.source_id}/edit" if credentials else f"/sources/{row.source_id}/runs/{row.id}",
            "Update the source's credentials" if credentials else "Open the sync run", since=since))
    return found


def feed_builds(now: datetime) -> list[Condition]:
    """feed_held: the latest finished build of each feed was held back by the publish gate, or failed."""
    from webapp.services.catalog.sync_notes import needs_store_url

    latest = sa.select(sa.func.max(FeedBuild.id)).where(FeedBuild.status.in_(_FINISHED)).group_by(FeedBuild.feed_id)
    builds = db.session.scalars(sa.select(FeedBuild).where(FeedBuild.id.in_(latest),
                                                          FeedBuild.status.in_(("failed", "held")))
                                .order_by(FeedBuild.feed_id)).all()
    found = []
    for build in builds:
        feed = build.feed
        error = build.error or "see the build report"
        path, action = f"/feeds/{feed.id}", "Open the feed"
        if "Store URL" in error and (source := next(
                (s for s in feed.sources if needs_store_url(s.kind, s.options)), None)) is not None:
            path, action = f"/sources/{source.id}/edit", f"Set the store URL of {source.name}"
        elif build.status == "held":
            action = "Review the build, then fix the source or publish it anyway"
        verb = "was held back" if build.status == "held" else "failed"
        found.append(Condition(
            "feed_held", f"feed:{feed.id}", f"The last build of {feed.name} {verb}", error,
            "Its URL keeps serving the last published build (or nothing, if none was published).",
            path, action, since=build.finished_at or build.updated_at,
            severity="warning" if build.status == "held" else "error"))
    return found


def feed_stale(now: datetime) -> list[Condition]:
    """A published feed that its platform fetched before, not fetched for SHOPRELAY_FEED_STALE_HOURS.

    A feed never fetched is the overview's business (the platform may not be set up yet); one that was and
    stopped means the platform lost it: a rotated token, changed basic auth, a removed catalog source.
    """
    threshold = timedelta(hours=current_app.config["FEED_STALE_HOURS"])
    last = (sa.select(FeedFetch.feed_id, sa.func.max(FeedFetch.fetched_at).label("at"))
            .where(FeedFetch.status < 400).group_by(FeedFetch.feed_id).subquery())
    rows = db.session.execute(sa.select(Feed.id, Feed.name, last.c.at).join(last, last.c.feed_id == Feed.id)
                              .where(Feed.published_build_id.is_not(None), last.c.at < now - threshold)
                              .order_by(Feed.id))
    found = []
    for feed_id, name, fetched_at in rows:
        hours = int((now - fetched_at).total_seconds() // 3600)
        found.append(Condition(
            "feed_stale", f"feed:{feed_id}", f"{name} is no longer fetched by its platform",
            f"The last fetch was {hours} h ago (expected within {threshold.total_seconds() / 3600:g} h). Likely "
            "the platform lost the URL: a rotated token, changed basic auth, or the feed removed from its "
            "catalog settings.",
            "The platform's catalog stops following the store's products (prices, stock, new products).",
            f"/feeds/{feed_id}", "Check the feed URL in the platform's catalog settings", since=fetched_at,
            severity="warning"))
    return found


def liveness(runtime: RuntimeStatus) -> list[Condition]:
    """worker_down / scheduler_down from RQ's registries. With Redis unreachable neither can be told (and
    nothing runs): no condition rather than a guess."""
    if not runtime.redis_ok:
        return []
    found = []
    if not runtime.workers:
        found.append(Condition(
            "worker_down", "instance", "No worker is running",
            "No RQ worker is registered: none was started (shoprelay worker, or shoprelay up), or all stopped.",
            "Deliveries, syncs and feed builds wait in their queues; nothing is lost, but nothing is sent.",
            "/jobs/", "Start a worker, then check the Jobs page"))
    if not runtime.scheduler_alive:
        beat = runtime.last_scheduler_heartbeat
        found.append(Condition(
            "scheduler_down", "instance", "The scheduler is silent",
            (f"Its last heartbeat was {int((runtime.now - beat).total_seconds() // 60)} min ago" if beat
             else "No scheduler has registered") + " (shoprelay scheduler, or shoprelay up).",
            "Nightly syncs, retry sweeps, batch deliveries and these alerts' own checks do not start.",
            "/jobs/", "Start the scheduler, then check the Jobs page", since=beat, severity="warning"))
    return found


_DETECTORS: dict[str, Callable[[datetime], list[Condition]]] = {
    "destination_paused": destination_paused,
    "dead_letters": dead_letters,
    "sync_failed": syncs,
    "sync_held": syncs,
    "feed_held": feed_builds,
    "feed_stale": feed_stale,
}
