"""`shoprelay destinations reconcile-catalog ID` and `shoprelay destinations replay ID` (run now, in this process)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from webapp.extensions import db

destinations = AppGroup("destinations", help="Platforms that receive events and catalogs.")
GROUPS = (destinations,)


@destinations.command("reconcile-catalog")
@click.argument("destination_id", type=int)
@click.option("--full", is_flag=True, help="Read the platform's catalog back first (what it lost is created "
                                           "again, what it holds unasked is removed).")
def reconcile_catalog_command(destination_id: int, full: bool) -> None:
    """Make the platform's catalog equal to shoprelay's now and print what was sent."""
    from redis.exceptions import RedisError

    from webapp.commands.catalog import judged_like_a_worker
    from webapp.models import Destination
    from webapp.services.platform_catalogs import runs
    from workers.catalogs.reconcile import run_reconcile
    from workers.queue import connect

    destination = db.session.get(Destination, destination_id)
    if destination is None:
        raise click.ClickException(f"no destination #{destination_id}")
    if not runs.reconciled(destination):
        raise click.ClickException("this destination's catalog is not kept through a Catalog API "
                                   "(set catalog to \"api\" on an enabled Klaviyo destination)")
    if runs.active_run(destination.id) is not None:
        raise click.ClickException("a reconcile of this catalog is already queued or running")
    run = runs.request_reconcile(destination, "manual", full=full, enqueue_job=False)
    url = current_app.config.get("REDIS_URL")
    try:
        redis = connect(url) if url else None
        if redis is not None:
            redis.ping()
    except RedisError:
        redis = None  # the rate limit's window lives in Redis; the platform's own "wait" still holds
    with judged_like_a_worker(run):
        run = run_reconcile(run.id, redis)
    if run.status != "succeeded":
        raise click.ClickException(f"reconcile #{run.id} {run.status}: {run.error}")
    sent = run.counts.get("sent", {})
    parts = [f"{sum(sent.get(action, {}).values())} {label}" for action, label in
             (("create", "created"), ("update", "updated"), ("delete", "deleted"))]
    click.echo(f"reconcile #{run.id} succeeded: {', '.join(parts)} in {run.counts.get('jobs', 0)} jobs, "
               f"{run.counts.get('refused', 0)} refused")


OPTIONS = {"since": "--since", "until": "--until", "events": "--event", "states": "--state"}


@destinations.command("replay")
@click.argument("destination_id", type=int)
@click.option("--since", required=True, help="Start of the window, ISO 8601 with a UTC offset (2026-11-20T10:00Z).")
@click.option("--until", required=True, help="End of the window (exclusive), ISO 8601 with a UTC offset.")
@click.option("--event", "events", multiple=True, help="Only this event name (repeatable; default: all).")
@click.option("--state", "states", multiple=True,
              help="Only events in this state: delivered, rejected, dead, skipped or failed (repeatable; "
                   "default: delivered, rejected and dead).")
@click.option("--new-ids", is_flag=True, help="New unique ids: the platform counts the events again (only after "
                                              "it lost them). Default: the same ids, which it de-duplicates.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def replay_command(destination_id: int, since: str, until: str, events: tuple[str, ...], states: tuple[str, ...],
                   new_ids: bool, yes: bool) -> None:
    """Send again what a destination was sent (or failed to get) in a time window: prints the count first."""
    from webapp.models import Destination
    from webapp.schemas.errors import ApiError
    from webapp.services.delivery import replays

    destination = db.session.get(Destination, destination_id)
    if destination is None:
        raise click.ClickException(f"no destination #{destination_id}")
    try:
        window = replays.parse_window({"since": since, "until": until, "events": list(events) or None,
                                       "states": list(states) or None, "new_ids": new_ids})
    except ApiError as exc:
        raise click.ClickException("; ".join(f"{OPTIONS.get(e['path'].split('.')[0], e['path'])}: {e['message']}"
                                             for e in exc.errors)) from None
    counted = replays.count_window(destination.id, window)
    click.echo(f"{destination.name}: {counted['count']} event{'s' if counted['count'] != 1 else ''} in "
               f"{counted['since']} – {counted['until']} ({', '.join(counted['states'])})"
               + (f", {counted['not_replayable']} more with pruned payloads (cannot be sent again)"
                  if counted["not_replayable"] else ""))
    for entry in counted["breakdown"]:
        click.echo(f"  {entry['event']:<28} {entry['state']:<10} {entry['count']:>8}")
    if not counted["count"]:
        click.echo("Nothing to replay.")
        return
    ids = "new unique ids (counted again)" if new_ids else "the same unique ids (de-duplicated)"
    if not yes:
        click.confirm(f"Send these {counted['count']} events to {destination.name} again, with {ids}?", abort=True)
    replay = replays.start_replay(destination, window, run_here=True, on_chunk=lambda r: click.echo(
        f"  {r.done} of {r.total} queued", err=True))
    click.echo(f"replay {replay.id} {replay.status}: {replay.done} events queued in {replay.chunks} "
               "chunks; the workers send them at the rate limit")
