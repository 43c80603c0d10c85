"""`shoprelay orders import FILE [--historical]` and `shoprelay contacts recompute`."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

orders = AppGroup("orders", help="Orders.")
contacts = AppGroup("contacts", help="Contacts and lifetime value.")
GROUPS = (orders, contacts)


@orders.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--historical/--live", default=False,
              help="Backfill: events keep the original time and do not trigger flows (Klaviyo backfill, "
                   "Sendlane initial_sync).")
@click.option("--batch-size", default=100, show_default=True, help="Orders per transaction.")
def import_command(file: Path, historical: bool, batch_size: int) -> None:
    """Import past orders from JSON Lines or CSV; rerun the same command to resume after an interruption."""
    from webapp.services.orders.imports import run_import, start_or_resume

    run = start_or_resume(file, historical)
    if run.position:
        click.echo(f"Resuming import #{run.id} at record {run.position}.")
    with click.progressbar(length=1, label="Importing orders", show_pos=True) as bar:
        def progress(current) -> None:  # noqa: ANN001
            if current.total and bar.length != current.total:
                bar.length = current.total
            bar.update(current.position - bar.pos)

        run = run_import(run, file, batch_size=batch_size, on_progress=progress)
    if run.status == "failed":
        raise click.ClickException(f"Import #{run.id} failed: {run.error}")
    click.echo(f"Import #{run.id}: {run.imported} imported, {run.failed} invalid (of {run.total}).")
    for problem in run.problems[:20]:
        listed = problem.get("errors") or problem.get("warnings", [])
        errors = "; ".join(f"{e['path'] or '(record)'}: {e['message']}" for e in listed)
        kind = " (imported with warnings)" if "warnings" in problem else ""
        click.echo(f"  record {problem['record']}{kind}: {errors}", err=True)


@contacts.command("recompute")
def recompute_command() -> None:
    """Rebuild every contact's LTV from its orders (gives the same numbers as ingest) and refresh RFM."""
    from webapp.services.contacts.ltv import recompute_all
    from webapp.services.contacts.rfm import refresh_rfm

    count = recompute_all()
    scored = refresh_rfm()
    click.echo(f"Recomputed LTV for {count} contacts; {scored} have RFM scores.")
