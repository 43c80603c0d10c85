"""`shoprelay contacts erase EMAIL`: forget a person here and ask every destination to delete them;
`shoprelay contacts erase --retry ID`: finish a failed erasure from where it stopped."""

from __future__ import annotations

import click

from webapp.commands.orders import contacts  # the `contacts` group lives with `contacts recompute`

GROUPS = ()  # registered there; importing this module adds `erase` to it


@contacts.command("erase")
@click.argument("email", required=False)
@click.option("--retry", "retry_id", metavar="ID",
              help="Finish the failed erasure ID (its local cleaning from where it stopped) instead of a new one.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_command(email: str | None, retry_id: str | None, yes: bool) -> None:
    """Remove EMAIL's personal data now, in this process (amounts and aggregates stay), and queue the deletion
    requests to every destination; prints the erasure id to follow with GET /api/v1/erasures/<id>.

    With --retry ID, a failed erasure whose local part is unfinished goes on here from its phase and cursor
    (its contacts no longer hold the email, so erasing the address again would find nothing), and the
    destinations that refused its deletion request are asked again."""
    from webapp.services.contacts import erasure, erasure_recovery

    if bool(email) == bool(retry_id):
        raise click.UsageError("give an EMAIL to erase, or --retry ID to finish a failed erasure (not both)")

    def progress(record) -> None:  # noqa: ANN001
        click.echo(f"  {record.phase:<12} {record.done:>8} of {record.total} rows", err=True)

    if retry_id:
        try:
            record = erasure_recovery.retry_erasure(retry_id, run_here=True, on_chunk=progress)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        except erasure_recovery.NotRetryable as exc:
            raise click.ClickException(str(exc)) from None
    else:
        if not yes:
            click.confirm(f"Erase {email} here and at every destination? This cannot be undone.", abort=True)
        try:
            record = erasure.start_erasure(email, requested_by="cli", run_here=True, on_chunk=progress)
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
