"""`shoprelay contacts erase EMAIL`: forget a person here and ask every destination to delete them."""

from __future__ import annotations

import click

from webapp.commands.orders import contacts  # the `contacts` group lives with `contacts recompute`

GROUPS = ()  # registered there; importing this module adds `erase` to it


@contacts.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_command(email: str, yes: bool) -> None:
    """Remove EMAIL's personal data now, in this process (amounts and aggregates stay), and queue the deletion
    requests to every destination; prints the erasure id to follow with GET /api/v1/erasures/<id>."""
    from webapp.services.contacts import erasure

    if not yes:
        click.confirm(f"Erase {email} here and at every destination? This cannot be undone.", abort=True)
    try:
        record = erasure.start_erasure(email, requested_by="cli", run_here=True, on_chunk=lambda r: click.echo(
            f"  {r.phase:<12} {r.done:>8} of {r.total} rows", err=True))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    states = erasure.destination_states(record)
    click.echo(f"erasure {record.id} {record.status}: {len(record.contact_ids)} contact(s), "
               f"{record.counts.get('orders', 0)} orders, {record.counts.get('events', 0)} events, "
               f"{record.counts.get('requests', 0)} logged requests cleaned")
    for state in states:
        click.echo(f"  {state['name']} ({state['kind']}): {state['status']}"
                   + (f" - {state['message']}" if state["message"] else ""))
    if any(state["status"] == "pending" for state in states):
        click.echo("Deletion requests are queued; the workers send them (GET /api/v1/erasures/"
                   f"{record.id} shows their answers).")
