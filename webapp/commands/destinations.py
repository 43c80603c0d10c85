"""`shoprelay destinations reconcile-catalog ID` (run now, in this process)."""

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
