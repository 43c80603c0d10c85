"""Alert channel bodies (API and dashboard form validate through the same models) and the responses of
/api/v1/alerts (they generate its OpenAPI document; tests validate real answers against them)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from webapp.schemas.json_types import HOST, NOT_BLANK, JsonBool

ALERT_EVENTS = ("destination_paused", "dead_letters", "sync_failed", "sync_held", "feed_held", "feed_stale",
                "worker_down", "scheduler_down", "job_failed")

_URL_HELP = ("An Apprise URL (mailto://user:pass@example.com?to=ops@example.com, slack://TokenA/TokenB/TokenC, "
             "msteams://…, discord://…, tgram://…, json://host/path for a generic JSON webhook, …). Write-only: "
             "stored encrypted and never returned (see url_hint).")


# The schema names the generic webhook services (json://, xml://, form://, with an s for https) whose URL is a host
# and a path; apprise takes many more (slack://, mailto://, ...) and checks each itself.
# The path is visible ASCII and does not end in "?" (apprise refuses an empty query).
APPRISE_URL = rf"^(json|jsons|xml|xmls|form|forms)://{HOST}(/([!-~]*[!->@-~])?)?$"
AlertUrl = Annotated[str, Field(min_length=1, max_length=2000), WithJsonSchema(
    {"type": "string", "pattern": APPRISE_URL, "maxLength": 2000, "description": _URL_HELP})]
AlertEvents = Annotated[list[str], WithJsonSchema({"type": "array", "minItems": 1, "items": {"enum": list(ALERT_EVENTS)}})]


class ChannelUpdate(BaseModel):
    """Every field optional: a PATCH changes what it names (the URL only when given)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NOT_BLANK)
    url: AlertUrl | None = None
    events: AlertEvents | None = Field(default=None, description="Which problems this channel is told about: "
                                                                 + ", ".join(ALERT_EVENTS) + ".")
    enabled: JsonBool | None = None

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = [name for name in value if name not in ALERT_EVENTS]
        if unknown:
            raise ValueError(f"unknown event(s): {', '.join(unknown)}; known: {', '.join(ALERT_EVENTS)}")
        if not value:
            raise ValueError("choose at least one event (to silence a channel, set enabled to false)")
        return list(dict.fromkeys(value))


class ChannelCreate(ChannelUpdate):
    name: str = Field(min_length=1, max_length=200, pattern=NOT_BLANK)
    url: AlertUrl
    events: AlertEvents = Field(default_factory=lambda: list(ALERT_EVENTS),
                              description="Which problems this channel is told about (default: all): "
                                          + ", ".join(ALERT_EVENTS) + ".")
    enabled: JsonBool = True


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class AlertChannelOut(_Out):
    id: int
    name: str
    service: str = Field(description='What apprise made of the URL: "Slack", "E-Mail", "JSON", …')
    url_hint: str = Field(description="The URL's scheme and host only (tokens masked): the URL is write-only.")
    events: list[str]
    enabled: bool
    last_sent_at: str | None = Field(description="The last message the service accepted (ISO 8601 UTC).")
    failing: bool = Field(description="Sends are failing (retried with backoff) since failing_since.")
    failing_since: str | None
    last_error: str | None = Field(description="The service's answer to the last failed send or test.")
    last_error_at: str | None
    pending_notices: int
    created_at: str | None


class AlertChannelList(_Out):
    channels: list[AlertChannelOut]


class AlertTestOut(_Out):
    ok: bool
    message: str | None
    duration_ms: int


class AlertNoticeOut(_Out):
    id: int
    channel_id: int
    channel: str
    event: str = Field(description="opened | resolved")
    state: str = Field(description="pending | sent | failed (given up) | skipped (channel disabled)")
    attempts: int
    last_error: str | None
    sent_at: str | None
    next_attempt_at: str | None


class IncidentOut(_Out):
    id: int
    kind: str = Field(description="One of the channel events: " + ", ".join(ALERT_EVENTS) + ".")
    kind_label: str
    subject: str = Field(description='What it is about: "destination:3", "source:2", "feed:5", "erasure:<id>", '
                                     '"replay:destination:3", "catalog:destination:3" or "instance".')
    severity: str = Field(description="error | warning")
    title: str
    detail: str = Field(description="The likely cause.")
    impact: str = Field(description="What it means while it lasts.")
    action: str = Field(description="What fixes it, on the page at url.")
    url: str = Field(description="The dashboard page that fixes it (absolute when SHOPRELAY_BASE_URL is set).")
    state: str = Field(description="open | resolving (gone, waiting out SHOPRELAY_ALERT_QUIET_MINUTES before the "
                                   "resolved notice) | closed")
    since: str | None = Field(description="When the problem started.")
    opened_at: str | None
    last_seen_at: str | None
    closed_at: str | None
    flaps: int = Field(description="Times it came back within the quiet window (no new notice).")
    notices: list[AlertNoticeOut]


class IncidentList(_Out):
    incidents: list[IncidentOut]
