"""Feed builds: stream products from the database into a new build directory, validate, gate, publish.

Publishing is an atomic directory rename plus one database update, so a platform fetching during a
build always gets the previous complete file; a build that looks wrong (empty, or lost too many items,
first build included: see feed_gate) is held back for a person to look at instead of being published.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from feeds.rules import compile_rules
from feeds.writers import FEED_FORMATS, write_feed
from webapp.extensions import db
from webapp.models import Feed, FeedBuild, Product, utcnow
from webapp.services.catalog import sync as catalog_sync
from webapp.services.platform.progress import set_progress
from webapp.services.platform.statements import dialect_name
from webapp.services.publishing.gate import publish_gate
from workers import shutdown

log = logging.getLogger(__name__)
ACTIVE = ("queued", "running")
KEEP_BUILDS = 3
APPLY_WAIT_SECONDS = 3600
APPLY_POLL_SECONDS = 0.5
PRODUCT_COLUMNS = [c for c in Product.__table__.c if c.name not in ("content_hash", "created_at", "updated_at")]


class BuildInterrupted(ValueError):
    """The worker building the feed was asked to stop (warm shutdown): the build ends unpublished (the last
    published file is still served) and the same build is queued again for another worker."""


class CatalogMoved(ValueError):
    """A sync of one of the feed's sources applied its changes while the build read them: the file may mix the
    old and the new catalog, so it is not published (the sync's end asks for a new build)."""


class BuildAlreadyRunning(Exception):
    def __init__(self, build: FeedBuild) -> None:
        super().__init__(f"feed {build.feed_id} already has build #{build.id} {build.status}")
        self.build = build


def active_build(feed_id: int) -> FeedBuild | None:
    return db.session.scalar(sa.select(FeedBuild).where(FeedBuild.feed_id == feed_id,
                                                        FeedBuild.status.in_(ACTIVE)))


def request_build(feed: Feed, *, trigger: str = "manual", enqueue: bool = True) -> FeedBuild:
    if dialect_name() == "postgresql":
        db.session.execute(sa.select(Feed.id).where(Feed.id == feed.id).with_for_update())
    current = active_build(feed.id)
    if current is not None:
        db.session.rollback()
        raise BuildAlreadyRunning(current)
    build = FeedBuild(feed_id=feed.id, status="queued", trigger=trigger, parts=[], report={})
    db.session.add(build)
    db.session.commit()
    if enqueue:
        _enqueue(build)
    return build


def _redis():  # noqa: ANN202
    from workers.queue import connect

    url = current_app.config.get("REDIS_URL")
    return connect(url) if url else None


def _enqueue(build: FeedBuild) -> None:
    from workers.queue import JOB_BUILD_FEED, enqueue

    redis = _redis()
    if redis is None:
        return
    try:
        job = enqueue(redis, "feeds", JOB_BUILD_FEED, build.id, job_id=f"feed-build-{build.id}", job_timeout=4 * 3600)
    except RedisError as exc:
        log.warning("could not enqueue feed build %s: %s", build.id, exc)
        return
    build.job_id = job.id
    db.session.commit()


def mark_rebuild_wanted(feed: Feed) -> None:
    """A change arrived while a build runs: build again when it finishes."""
    redis = _redis()
    if redis is not None:
        with contextlib.suppress(RedisError):
            redis.set(f"shoprelay:feed-rebuild:{feed.id}", "1", ex=86400)


def _take_rebuild_wanted(feed_id: int) -> bool:
    redis = _redis()
    try:
        return bool(redis and redis.getdel(f"shoprelay:feed-rebuild:{feed_id}"))
    except RedisError:
        return False


def feed_products(feed: Feed) -> Iterator[dict[str, Any]]:
    """Core rows as dicts, streamed (constant memory), filtered by the feed's rules."""
    source_ids = [source.id for source in feed.sources]
    if not source_ids:
        return
    keep = compile_rules(feed.rules or [])
    query = (sa.select(*PRODUCT_COLUMNS).where(Product.source_id.in_(source_ids))
             .order_by(Product.id).execution_options(yield_per=5000, stream_results=True))
    with db.engine.connect() as connection:
        result = connection.execute(query)
        keys = tuple(result.keys())
        for row in result:
            item = dict(zip(keys, row, strict=True))  # ~4x cheaper than dict(row._mapping) (key by key)
            if keep(item):
                yield item


def feed_dir(feed_id: int) -> Path:
    return Path(current_app.config["FEEDS_DIR"]) / str(feed_id)


def run_build(build_id: int) -> FeedBuild:
    claimed = db.session.execute(sa.update(FeedBuild).where(FeedBuild.id == build_id, FeedBuild.status == "queued")
                                 .values(status="running", started_at=utcnow())).rowcount
    db.session.commit()
    build = db.session.get(FeedBuild, build_id)
    if not claimed:
        return build
    feed = build.feed
    fmt = FEED_FORMATS[feed.format]
    workdir = feed_dir(feed.id) / "builds" / f"{build.id}.tmp"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    try:
        source_ids = [source.id for source in feed.sources]
        read_from = _wait_for_applies(source_ids, build.id)
        split = current_app.config["FEED_SPLIT_BYTES"] if fmt.max_file_bytes else None
        result = write_feed(feed.format, feed_products(feed), workdir, basename=feed.slug,
                            overrides=feed.field_overrides or None, channel=_channel(feed), split_bytes=split,
                            on_progress=_progress(build.id),
                            ids_unique=len(feed.sources) == 1 and "external_id" not in (feed.field_overrides or {}))
        if catalog_sync.applied_since(source_ids, read_from):  # the sync's end requests the next build
            raise CatalogMoved("a sync applied its changes while this build read the catalog; not published, "
                               "the feed is built again when the sync has finished")
        parts = [{"name": p.name, "bytes": p.bytes, "items": p.items, "sha256": p.sha256} for p in result.parts]
        if feed.gzip:
            for part in result.parts:
                _gzip(part.path)
        build.items_written, build.items_skipped = result.items_written, result.items_skipped
        build.items_total = result.items_written + result.items_skipped
        build.bytes, build.parts, build.report = sum(p["bytes"] for p in parts), parts, result.report
        build.etag = parts[0]["sha256"][:32] if parts else None
        final = workdir.with_suffix("")
        shutil.rmtree(final, ignore_errors=True)
        workdir.rename(final)  # atomic: the build's files appear complete or not at all
        build.directory = str(final)
        held = publish_gate(feed, build)
        if held:
            build.status, build.error = "held", held
        else:
            _publish(feed, build)
        build.finished_at = utcnow()
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        shutil.rmtree(workdir, ignore_errors=True)
        build = db.session.get(FeedBuild, build_id)
        error = str(exc) if isinstance(exc, BuildInterrupted) else f"{type(exc).__name__}: {exc}"
        build.status, build.error, build.finished_at = "failed", error, utcnow()
        db.session.commit()
        if isinstance(exc, BuildInterrupted):
            with contextlib.suppress(BuildAlreadyRunning):
                request_build(build.feed, trigger=build.trigger)
        elif not isinstance(exc, ValueError):
            raise
    _prune_old_builds(feed)
    if _take_rebuild_wanted(feed.id):
        with contextlib.suppress(BuildAlreadyRunning):
            request_build(feed, trigger="sync")
    return build


def _wait_for_applies(source_ids: list[int], build_id: int) -> datetime:
    """Wait while a sync applies its changes to one of the feed's sources (a half-applied catalog is never
    published); returns the time the read may start from."""
    deadline = time.monotonic() + APPLY_WAIT_SECONDS
    while catalog_sync.applying(source_ids):
        db.session.rollback()  # no snapshot held while waiting
        if shutdown.requested():
            raise BuildInterrupted("stopped while waiting for a sync to finish applying because its worker was "
                                   "shutting down; the last published file is still served and the build was "
                                   "queued again")
        if time.monotonic() > deadline:
            raise CatalogMoved(f"a sync has been applying changes to this feed's products for over "
                               f"{APPLY_WAIT_SECONDS // 60} minutes; not built")
        set_progress("feed", build_id, 0, note="waiting for a sync to finish applying")
        time.sleep(APPLY_POLL_SECONDS)
    return utcnow()


def _progress(build_id: int) -> Callable[[int], None]:
    """Reports items written (the dashboard's progress bar) and stops the build when its worker is stopping."""

    def report(written: int) -> None:
        set_progress("feed", build_id, written)
        if shutdown.requested():
            raise BuildInterrupted(f"stopped after {written:,} items because its worker was shutting down; the "
                                   "last published file is still served and the build was queued again")

    return report


def publish_held(build: FeedBuild) -> None:
    """A person looked at a held build and publishes it anyway."""
    if build.status != "held":
        raise ValueError(f"build #{build.id} is {build.status}, not held")
    _publish(build.feed, build)
    db.session.commit()


def _publish(feed: Feed, build: FeedBuild) -> None:
    build.status, build.error = "succeeded", None
    feed.published_build_id = build.id


def _gzip(path: Path) -> None:
    """Compress once per build (never per request); level 6 is the usual size/speed balance."""
    tmp = path.with_name(path.name + ".gz.part")
    with path.open("rb") as source, gzip.open(tmp, "wb", compresslevel=6) as target:
        shutil.copyfileobj(source, target, 1 << 20)
    tmp.replace(path.with_name(path.name + ".gz"))


def _channel(feed: Feed) -> dict[str, Any]:
    base = (current_app.config.get("BASE_URL") or "").rstrip("/")
    return {"title": feed.name, "link": base or "https://example.invalid", "description": f"{feed.name} products",
            "store_name": feed.name}


def _prune_old_builds(feed: Feed) -> None:
    """Keep the published build and the newest few; an open file survives its unlink on POSIX."""
    builds = db.session.scalars(sa.select(FeedBuild).where(
        FeedBuild.feed_id == feed.id, FeedBuild.directory.is_not(None)).order_by(FeedBuild.id.desc())).all()
    for old in builds[KEEP_BUILDS:]:
        if old.id != feed.published_build_id and old.directory:
            shutil.rmtree(old.directory, ignore_errors=True)
            old.directory = None
    db.session.commit()
