"""How fresh is the catalog? Each source's latest sync, each feed's latest build, publish and fetch.

Sources and feeds number in the tens, so a few indexed look-ups each (latest row by id, latest fetch by
(feed_id, fetched_at)) stay cheap however many runs and fetches pile up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Feed, FeedBuild, FeedFetch, Source, SyncRun


@dataclass(frozen=True)
class SourceFreshness:
    id: int
    name: str
    kind: str
    enabled: bool
    product_count: int
    last_run: SyncRun | None

    @property
    def last_run_at(self) -> datetime | None:
        run = self.last_run
        return (run.finished_at or run.started_at or run.created_at) if run else None

    @property
    def failed(self) -> bool:
        return self.last_run is not None and self.last_run.status in ("failed", "held")


@dataclass(frozen=True)
class FeedFreshness:
    id: int
    name: str
    format: str
    last_build: FeedBuild | None
    published_at: datetime | None
    last_fetch: FeedFetch | None

    @property
    def build_failed(self) -> bool:
        return self.last_build is not None and self.last_build.status in ("failed", "held")

    @property
    def fetched_since_published(self) -> bool:
        return (self.published_at is not None and self.last_fetch is not None
                and self.last_fetch.fetched_at >= self.published_at)


def _latest_ids(column: sa.ColumnElement, group: sa.ColumnElement) -> list[int]:
    return list(db.session.scalars(sa.select(sa.func.max(column)).group_by(group)))


def source_freshness() -> list[SourceFreshness]:
    sources = db.session.scalars(sa.select(Source).order_by(Source.name, Source.id)).all()
    runs = {run.source_id: run for run in db.session.scalars(
        sa.select(SyncRun).where(SyncRun.id.in_(_latest_ids(SyncRun.id, SyncRun.source_id))))}
    return [SourceFreshness(id=s.id, name=s.name, kind=s.kind, enabled=s.enabled, product_count=s.product_count,
                            last_run=runs.get(s.id)) for s in sources]


def feed_freshness() -> list[FeedFreshness]:
    feeds = db.session.scalars(sa.select(Feed).order_by(Feed.name, Feed.id)).all()
    builds = {build.feed_id: build for build in db.session.scalars(
        sa.select(FeedBuild).where(FeedBuild.id.in_(_latest_ids(FeedBuild.id, FeedBuild.feed_id))))}
    published_ids = [f.published_build_id for f in feeds if f.published_build_id]
    published = {b.id: b for b in db.session.scalars(sa.select(FeedBuild).where(FeedBuild.id.in_(published_ids)))}
    result = []
    for feed in feeds:
        build = published.get(feed.published_build_id or 0)
        result.append(FeedFreshness(
            id=feed.id, name=feed.name, format=feed.format, last_build=builds.get(feed.id),
            published_at=(build.finished_at or build.updated_at) if build else None, last_fetch=_last_fetch(feed.id)))
    return result


def _last_fetch(feed_id: int) -> FeedFetch | None:
    """Latest served fetch (not a refused one) through the (feed_id, fetched_at) index."""
    return db.session.scalar(sa.select(FeedFetch).where(FeedFetch.feed_id == feed_id, FeedFetch.status < 400)
                             .order_by(FeedFetch.fetched_at.desc()).limit(1))
