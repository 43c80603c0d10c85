"""`shoprelay sources sync ID` and `shoprelay feeds build ID` (run now, in this process)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import click
from flask import current_app
from flask.cli import AppGroup

from webapp.extensions import db

sources = AppGroup("sources", help="Catalog sources.")
feeds = AppGroup("feeds", help="Published feeds.")
GROUPS = (sources, feeds)


@contextlib.contextmanager
def judged_like_a_worker(record) -> Iterator[None]:  # noqa: ANN001 - a SyncRun or a FeedBuild
    """Beat a heartbeat under a job id of this process's own while it runs a sync or a build, so the sweeper
    judges it like a worker's job: a command killed mid-sync has its run failed (or its apply rolled forward
    by a worker) instead of holding "one run per source" forever. Without a reachable Redis there is no
    sweeper to judge it either, and the run keeps no job id."""
    from redis.exceptions import RedisError

    from workers.queue import connect
    from workers.runner import heartbeat

    url = current_app.config.get("REDIS_URL")
    try:
        connection = connect(url) if url else None
        if connection is not None:
            connection.ping()
    except RedisError:
        connection = None
    if connection is None:
        yield
        return
    record.job_id = f"cli-{record.__tablename__}-{record.id}-{uuid.uuid4().hex[:8]}"
    db.session.commit()
    with heartbeat(connection, record.job_id):
        yield


@sources.command("sync")
@click.argument("source_id", type=int)
@click.option("--confirm-removals", is_flag=True, help="Allow removing more products than the guard allows.")
def sync_command(source_id: int, confirm_removals: bool) -> None:
    """Sync a source now and print the counts (the same run a worker would do)."""
    from webapp.models import Source
    from webapp.services.catalog.sync import SyncAlreadyRunning, request_sync, run_sync

    source = db.session.get(Source, source_id)
    if source is None:
        raise click.ClickException(f"no source #{source_id}")
    try:
        run = request_sync(source, trigger="cli", confirm_removals=confirm_removals, enqueue=False)
    except SyncAlreadyRunning as exc:
        raise click.ClickException(str(exc)) from None
    with judged_like_a_worker(run):
        run = run_sync(run.id)
    if run.status != "succeeded":
        raise click.ClickException(f"sync #{run.id} {run.status}: {run.error}")
    note = " (source not modified)" if run.not_modified else ""
    click.echo(f"sync #{run.id} succeeded{note}: {run.added} added, {run.updated} updated, "
               f"{run.unchanged} unchanged, {run.removed} removed, {run.skipped} problems")


@feeds.command("build")
@click.argument("feed_id", type=int)
def build_command(feed_id: int) -> None:
    """Build a feed now and print the validation summary."""
    from webapp.models import Feed
    from webapp.services.publishing.builds import BuildAlreadyRunning, request_build, run_build

    feed = db.session.get(Feed, feed_id)
    if feed is None:
        raise click.ClickException(f"no feed #{feed_id}")
    try:
        build = request_build(feed, trigger="cli", enqueue=False)
    except BuildAlreadyRunning as exc:
        raise click.ClickException(str(exc)) from None
    with judged_like_a_worker(build):
        build = run_build(build.id)
    if build.status != "succeeded":
        raise click.ClickException(f"build #{build.id} {build.status}: {build.error}")
    click.echo(f"build #{build.id} published: {build.items_written} items, {build.items_skipped} skipped, "
               f"{len(build.parts)} file(s)")
