"""`shoprelay sources sync ID` and `shoprelay feeds build ID` (run now, in this process)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from webapp.extensions import db

sources = AppGroup("sources", help="Catalog sources.")
feeds = AppGroup("feeds", help="Published feeds.")
GROUPS = (sources, feeds)


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
    build = run_build(build.id)
    if build.status != "succeeded":
        raise click.ClickException(f"build #{build.id} {build.status}: {build.error}")
    click.echo(f"build #{build.id} published: {build.items_written} items, {build.items_skipped} skipped, "
               f"{len(build.parts)} file(s)")
