"""Alerts aggregate: the channels people are told on, the incidents (one per problem while it lasts) and the
notices sent about them (one row per channel and incident, with its delivery state)."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, BigId, Json, Timestamps, utcnow

INCIDENT_STATES = ("open", "resolving", "closed")
NOTICE_STATES = ("pending", "sent", "failed", "skipped")


class AlertChannel(Timestamps, Base):
    """Where notices go: one Apprise URL (a secret: encrypted at rest, shown back as scheme and host only)."""

    __tablename__ = "alert_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    url_encrypted: Mapped[str] = mapped_column(sa.Text)
    # What the page and the API show instead of the URL: "slack://T...2", "json://hooks.example.com".
    url_hint: Mapped[str] = mapped_column(sa.String(300))
    service: Mapped[str] = mapped_column(sa.String(80))
    events: Mapped[list[str]] = mapped_column(Json, default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    last_sent_at: Mapped[datetime | None]
    # The last failure (a notice or a test); kept after a later success so the page can say when it healed.
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    last_error_at: Mapped[datetime | None]
    # Set while sends keep failing (cleared by the next success): the channel is shown as failing.
    failing_since: Mapped[datetime | None]


class Incident(Base):
    """One problem (kind, subject) from when it was first seen until it ended.

    `resolving`: the condition is gone but came back within SHOPRELAY_ALERT_QUIET_MINUTES would reopen this
    incident silently (a flapping destination), so the "resolved" notice waits until that window passed.
    """

    __tablename__ = "alert_incidents"
    __table_args__ = (
        # At most one incident per problem that is not closed: two evaluations at once cannot open it twice.
        sa.Index("uq_alert_incidents_live", "kind", "subject", unique=True,
                 postgresql_where=sa.text("state <> 'closed'"), sqlite_where=sa.text("state <> 'closed'")),
        sa.Index("ix_alert_incidents_state_opened", "state", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(30))
    subject: Mapped[str] = mapped_column(sa.String(100))  # "destination:3", "source:2", "feed:5", "instance"
    severity: Mapped[str] = mapped_column(sa.String(10), default="error")  # error | warning
    title: Mapped[str] = mapped_column(sa.String(300))
    detail: Mapped[str] = mapped_column(sa.Text, default="")  # the likely cause
    impact: Mapped[str] = mapped_column(sa.Text, default="")  # what it means while it lasts
    path: Mapped[str] = mapped_column(sa.String(300))  # the dashboard page that fixes it
    action: Mapped[str] = mapped_column(sa.String(100))  # what to do there: "Review and resume"
    state: Mapped[str] = mapped_column(sa.String(10), default="open")
    since: Mapped[datetime] = mapped_column(default=utcnow)  # when the problem started (paused_at, ...)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    flaps: Mapped[int] = mapped_column(default=0)  # times it came back within the quiet window
    notified_open: Mapped[bool] = mapped_column(default=False)
    notified_resolved: Mapped[bool] = mapped_column(default=False)


class AlertNotice(Base):
    """One channel told about one incident's start or end. Notices of one evaluation share a `batch`, and a
    channel gets one message per (batch, event): several problems starting together make one digest."""

    __tablename__ = "alert_notices"
    __table_args__ = (
        sa.Index("ix_alert_notices_due", "state", "next_attempt_at"),
        sa.Index("ix_alert_notices_channel", "channel_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_id: Mapped[int] = mapped_column(sa.ForeignKey("alert_channels.id", ondelete="CASCADE"))
    incident_id: Mapped[int] = mapped_column(sa.ForeignKey("alert_incidents.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(sa.String(10))  # opened | resolved
    batch: Mapped[str] = mapped_column(sa.String(32))
    state: Mapped[str] = mapped_column(sa.String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]

    channel: Mapped[AlertChannel] = relationship()
    incident: Mapped[Incident] = relationship()
