"""The words of a notice: what is wrong, since when, the likely cause, what it means, and a link to the dashboard
page that fixes it (absolute from SHOPRELAY_BASE_URL, else the path). Plain text: it reads the same in an
email, a Slack message and a JSON webhook's "message".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from webapp.models import Incident


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    notify_type: str  # apprise's NotifyType value: failure | warning | success | info


def link(path: str) -> str:
    base = (current_app.config.get("BASE_URL") or "").rstrip("/")
    return f"{base}{path}" if base else path


def message(event: str, incidents: list[Incident]) -> Message:
    """One message for a channel: a single incident, or a digest when several started (or ended) together."""
    if event == "resolved":
        return _resolved(incidents)
    return _opened(incidents)


def test_message() -> Message:
    return Message("[shoprelay] Test notice",
                   "This is a test from shoprelay's Alerts page: this channel works.\n"
                   f"Alerts are managed at {link('/alerts/')}", "info")


def _opened(incidents: list[Incident]) -> Message:
    kind = "failure" if any(i.severity == "error" for i in incidents) else "warning"
    if len(incidents) == 1:
        incident = incidents[0]
        return Message(f"[shoprelay] {incident.title}", _opened_body(incident) + _footer(), kind)
    sections = [f"{n}. {_opened_body(incident)}" for n, incident in enumerate(incidents, 1)]
    return Message(f"[shoprelay] {len(incidents)} problems started",
                   f"{len(incidents)} problems started at once:\n\n" + "\n\n".join(sections) + _footer(), kind)


def _resolved(incidents: list[Incident]) -> Message:
    if len(incidents) == 1:
        incident = incidents[0]
        return Message(f"[shoprelay] Resolved: {incident.title}", _resolved_body(incident), "success")
    sections = [f"{n}. {_resolved_body(incident)}" for n, incident in enumerate(incidents, 1)]
    return Message(f"[shoprelay] {len(incidents)} problems resolved",
                   f"{len(incidents)} problems ended:\n\n" + "\n\n".join(sections), "success")


def _opened_body(incident: Incident) -> str:
    lines = [f"{incident.title}.", f"Since: {_when(incident.since)}",
             f"Likely cause: {incident.detail}" if incident.detail else None,
             incident.impact or None,
             f"Fix it: {incident.action} → {link(incident.path)}"]
    return "\n".join(line for line in lines if line)


def _resolved_body(incident: Incident) -> str:
    ended = incident.closed_at or incident.last_seen_at
    lines = [f"Resolved: {incident.title}.",
             f"It started {_when(incident.since)} and ended {_when(ended)} ({_duration(ended - incident.since)})."]
    if incident.flaps:
        lines.append(f"It came back {incident.flaps} time{'s' if incident.flaps != 1 else ''} meanwhile "
                     "(counted as one incident).")
    lines.append(f"Details: {link('/alerts/')}")
    return "\n".join(lines)


def _footer() -> str:
    footer = "\n\nYou will get one more message when it ends. All alerts: " + link("/alerts/")
    if not current_app.config.get("BASE_URL"):
        footer += "\n(Links are paths on your shoprelay dashboard: set SHOPRELAY_BASE_URL to get full links.)"
    return footer


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _duration(delta) -> str:  # noqa: ANN001 - a timedelta
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days {hours % 24} h"
