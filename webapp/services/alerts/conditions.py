"""What is wrong right now, read from the state shoprelay already keeps: paused destinations, dead-lettered
events, the latest finished sync of each source and build of each feed, feed fetches, long work that ended failed
(erasures, replays, catalog reconciles), and the liveness of workers and the scheduler in RQ's registries.

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
from webapp.models import (
    CatalogReconcile,
    Destination,
    Erasure,
    Event,
    Feed,
    FeedBuild,
    FeedFetch,
    Replay,
    Source,
    SyncRun,
)
from webapp.schemas.alerts import ALERT_EVENTS
from webapp.services.contacts.erasure import error_without_person
from webapp.services.overview.runtime_status import RuntimeStatus, runtime_status

KINDS = ALERT_EVENTS  # the contract's event names, one kind of incident each
KIND_LABELS = {
    "destination_paused": "Destination paused", "dead_letters": "Dead letters appeared",
    "sync_failed": "Sync failed", "sync_held": "Sync held back", "feed_held": "Feed build held back or failed",
    "feed_stale": "Feed no longer fetched", "worker_down": "No worker running", "scheduler_down": "Scheduler silent",
    "job_failed": "Erasure, replay or catalog reconcile failed",
}
LIVENESS_KINDS = frozenset({"worker_down", "scheduler_down"})
_FINISHED = ("succeeded", "failed", "held")
_JOB_FINISHED = ("succeeded", "failed")  # replays and reconciles: queued | running | succeeded | failed
ERASURES_SHOWN = 200  # failed erasures still holding personal data: a handful at any time, the newest first


@dataclass(frozen=True)
class Condition:
    """One problem as seen now: what, since when, the likely cause, what it means, where it is fixed."""

    kind: str
    subject: str  # "destination:3", "source:2", "feed:5", "erasure:<id>", "replay:destination:3", "instance"
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


def jobs_failed(now: datetime) -> list[Condition]:
    """job_failed: long work that ended failed with no one watching it: an erasure that still holds personal data,
    the newest finished replay or catalog reconcile of a destination (a run in progress does not end the
    problem: its outcome does)."""
    return failed_erasures() + failed_replays() + failed_reconciles()


def failed_erasures() -> list[Condition]:
    """Failed erasures whose `pending_values` remain: the person's data from where they stopped is still stored
    (ix_erasures_status_created; a retry makes them queued, their end clears the values)."""
    rows = db.session.execute(sa.select(Erasure.id, Erasure.error, Erasure.contact_ids, Erasure.pending_values,
                                        Erasure.phase, Erasure.finished_at, Erasure.created_at)
                              .where(Erasure.status == "failed", Erasure.pending_values.is_not(None))
                              .order_by(Erasure.created_at.desc()).limit(ERASURES_SHOWN)).all()
    found = []
    for row in rows:
        # The contact page shows the erasure with its Retry button; one that found no contact has only its fragment.
        path = (f"/contacts/{row.contact_ids[0]}?erasure={row.id}" if row.contact_ids
                else f"/contacts/erasures/{row.id}")
        found.append(Condition(
            "job_failed", f"erasure:{row.id}", "An erasure failed: personal data is still stored",
            error_without_person(row.error or f"erasure {row.id} failed", row.pending_values),
            f"The person's personal data from the {row.phase} phase on stays stored here, and the deletion requests "
            "to the platforms keep naming the person, until the erasure is finished.",
            path, "Find the cause, then Retry the erasure", since=row.finished_at or row.created_at))
    return found


def _newest_finished(model: type[Replay] | type[CatalogReconcile], *order: sa.ColumnElement) -> sa.ScalarSelect:
    """The id of the destination's newest finished row, newest first through its (destination_id, ...) index."""
    return (sa.select(model.id).where(model.destination_id == Destination.id, model.status.in_(_JOB_FINISHED))
            .order_by(*order).limit(1).correlate(Destination).scalar_subquery())


def _failed_newest(model: type[Replay] | type[CatalogReconcile], newest: sa.ScalarSelect,
                   *where: sa.ColumnElement) -> list[tuple[str, Replay | CatalogReconcile]]:
    """(destination name, row) for each enabled destination whose newest finished row failed: one read of the
    destinations with a LIMIT 1 lookup each, then those rows by primary key."""
    names = {row_id: name for name, row_id in db.session.execute(
        sa.select(Destination.name, newest).where(Destination.enabled.is_(True), *where)) if row_id is not None}
    if not names:
        return []
    rows = db.session.scalars(sa.select(model).where(model.id.in_(list(names)), model.status == "failed")
                              .order_by(model.destination_id)).all()
    return [(names[row.id], row) for row in rows]


def failed_replays() -> list[Condition]:
    """The newest finished replay of an enabled destination failed (ix_replays_dest_created)."""
    newest = _newest_finished(Replay, Replay.created_at.desc(), Replay.id.desc())
    found = []
    for name, replay in _failed_newest(Replay, newest):
        found.append(Condition(
            "job_failed", f"replay:destination:{replay.destination_id}", f"A replay to {name} failed",
            replay.error or f"replay {replay.id} failed",
            f"The events of its window after the point where it stopped ({replay.done:,} of {replay.total:,} "
            "queued again) were not sent again: the platform may still be missing them.",
            f"/destinations/{replay.destination_id}#replay-panel", "Find the cause, then replay the window again",
            since=replay.finished_at or replay.created_at))
    return found


def failed_reconciles() -> list[Condition]:
    """The newest finished catalog reconcile of an enabled destination whose catalog is kept by the API failed
    (ix_catalog_reconciles_dest). Switching the catalog off ends the problem."""
    newest = _newest_finished(CatalogReconcile, CatalogReconcile.id.desc())
    found = []
    for name, run in _failed_newest(CatalogReconcile, newest, Destination.catalog == "api"):
        found.append(Condition(
            "job_failed", f"catalog:destination:{run.destination_id}", f"The catalog reconcile of {name} failed",
            run.error or f"catalog reconcile {run.id} failed",
            "The platform's catalog may differ from the store's (products, prices, stock) until a reconcile "
            "succeeds: what earlier jobs sent stays there.",
            f"/destinations/{run.destination_id}#catalog-panel", "Find the cause, then reconcile the catalog again",
            since=run.finished_at or run.created_at))
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
    "job_failed": jobs_failed,
}
