"""`shoprelay alerts list`, `shoprelay alerts test ID` and `shoprelay alerts check` (run now, in this process)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from webapp.extensions import db

alerts = AppGroup("alerts", help="Alert channels (Apprise URLs) and the incidents they are told about.")
GROUPS = (alerts,)


@alerts.command("list")
def list_command() -> None:
    """Channels (URLs shown as scheme and host only) and the incidents open now."""
    from webapp.services.alerts import channels, incidents
    from webapp.services.alerts.sending import pending_counts

    pending = pending_counts()
    rows = channels.list_channels()
    if not rows:
        click.echo("No alert channels. Add one on the Alerts page or with POST /api/v1/alerts.")
    for channel in rows:
        state = "enabled" if channel.enabled else "disabled"
        if channel.failing_since is not None:
            state += f", FAILING since {channel.failing_since:%Y-%m-%d %H:%M} UTC: {channel.last_error}"
        waiting = pending.get(channel.id, 0)
        click.echo(f"#{channel.id} {channel.name} — {channel.service} {channel.url_hint} ({state})"
                   + (f", {waiting} notice(s) waiting" if waiting else ""))
        click.echo(f"    events: {', '.join(channel.events)}")
    open_now = incidents.list_incidents("open")
    click.echo(f"{len(open_now)} open incident(s)" + (":" if open_now else "."))
    for incident in open_now:
        state = " (resolving)" if incident.state == "resolving" else ""
        click.echo(f"  [{incident.kind}] {incident.title}{state}, since {incident.since:%Y-%m-%d %H:%M} UTC"
                   f" — {incident.action}: {incident.path}")


@alerts.command("test")
@click.argument("channel_id", type=int)
def test_command(channel_id: int) -> None:
    """Send a test message through a channel now and print the service's answer."""
    from webapp.models import AlertChannel
    from webapp.services.alerts.sending import send_test

    channel = db.session.get(AlertChannel, channel_id)
    if channel is None:
        raise click.ClickException(f"no alert channel #{channel_id}")
    name = channel.name
    result = send_test(channel)
    if not result["ok"]:
        raise click.ClickException(f"{name}: the test failed after {result['duration_ms']} ms: {result['message']}")
    click.echo(f"{name}: test sent in {result['duration_ms']} ms; check that it arrived.")


@alerts.command("check")
def check_command() -> None:
    """Evaluate the conditions now and send the notices due from this process (what the cron job does)."""
    from webapp.services.alerts.incidents import evaluate
    from webapp.services.alerts.sending import send_all_due

    result = evaluate(signal=False)
    sent = send_all_due()
    click.echo(f"opened {len(result.opened)}, resolving {len(result.resolving)}, resolved {len(result.resolved)}; "
               f"{sum(r['sent'] for r in sent.values())} notice(s) sent, "
               f"{sum(r['failed'] for r in sent.values())} failed")
