"""Delivery aggregate: destinations, the event outbox, HTTP requests and per-event attempts."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, BigId, Json, Timestamps, utcnow

EVENT_STATES = ("pending", "in_flight", "retrying", "delivered", "rejected", "dead", "skipped")


class Destination(Timestamps, Base):
    """A marketing platform account that receives events (credentials encrypted at rest)."""

    __tablename__ = "destinations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(20))
    credentials_encrypted: Mapped[str] = mapped_column(sa.Text)
    base_url: Mapped[str | None] = mapped_column(sa.Text)
    mode: Mapped[str] = mapped_column(sa.String(10), default="realtime")
    batch_interval_minutes: Mapped[int] = mapped_column(default=30)
    events: Mapped[list[str]] = mapped_column(Json, default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    rate_limits: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    paused_at: Mapped[datetime | None]
    pause_reason: Mapped[str | None] = mapped_column(sa.Text)
    failing_since: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_batch_at: Mapped[datetime | None]
    # The platform said "wait" (429, 503 with Retry-After) until then: the database copy of the Redis pause.
    rate_limited_until: Mapped[datetime | None]
    # "api": the platform's catalog is kept equal to shoprelay's (Klaviyo Catalog API, Sendlane product-added).
    catalog: Mapped[str] = mapped_column(sa.String(8), default="off", server_default="off")


class Event(Base):
    """Outbox row: one per (destination, event name, unique id), written with the change that caused it."""

    __tablename__ = "events"
    __table_args__ = (
        sa.UniqueConstraint("destination_id", "name", "unique_id"),
        # Live counts per (destination, state), expired leases, and each state's newest rows by id.
        sa.Index("ix_events_dest_state", "destination_id", "state", "id"),
        # The claim's ordered scan: ORDER BY next_attempt_at, id LIMIT n stops after n rows of due work.
        sa.Index("ix_events_claim", "destination_id", "next_attempt_at", "id",
                 postgresql_where=sa.text("state IN ('pending', 'retrying')"),
                 sqlite_where=sa.text("state IN ('pending', 'retrying')")),
        sa.Index("ix_events_state_created", "state", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    destination_id: Mapped[int] = mapped_column(sa.ForeignKey("destinations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(40))
    unique_id: Mapped[str] = mapped_column(sa.String(300))
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id", ondelete="SET NULL"),
                                                   index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    state: Mapped[str] = mapped_column(sa.String(12), default="pending")
    # Ordering within an order: placed (0) before later lifecycle events (1+).
    sequence: Mapped[int] = mapped_column(default=0)
    historical: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(default=0)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    leased_by: Mapped[str | None] = mapped_column(sa.String(120))
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)

    destination: Mapped[Destination] = relationship()
    attempt_rows: Mapped[list["DeliveryAttempt"]] = relationship(
        back_populates="event", cascade="all, delete-orphan", passive_deletes=True,
        order_by="DeliveryAttempt.id")


class DeliveryRequest(Base):
    """One HTTP request to a platform (a bulk request carries many events), secrets redacted."""

    __tablename__ = "delivery_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    destination_id: Mapped[int] = mapped_column(sa.ForeignKey("destinations.id", ondelete="CASCADE"),
                                                index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    duration_ms: Mapped[int] = mapped_column(default=0)
    method: Mapped[str] = mapped_column(sa.String(8), default="POST")
    url: Mapped[str] = mapped_column(sa.Text)
    http_status: Mapped[int | None]
    outcome: Mapped[str] = mapped_column(sa.String(16))
    request_body: Mapped[str | None] = mapped_column(sa.Text)
    response_body: Mapped[str | None] = mapped_column(sa.Text)
    error: Mapped[str | None] = mapped_column(sa.Text)
    event_count: Mapped[int] = mapped_column(default=1)


class DeliveryAttempt(Base):
    """One event's part in one request: the per-event outcome the timeline shows."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (sa.Index("ix_delivery_attempts_dest_time", "destination_id", "attempted_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)
    destination_id: Mapped[int] = mapped_column(sa.ForeignKey("destinations.id", ondelete="CASCADE"))
    request_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("delivery_requests.id", ondelete="SET NULL"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str] = mapped_column(sa.String(16))
    http_status: Mapped[int | None]
    duration_ms: Mapped[int] = mapped_column(default=0)
    message: Mapped[str | None] = mapped_column(sa.Text)

    event: Mapped[Event] = relationship(back_populates="attempt_rows")
    request: Mapped[DeliveryRequest | None] = relationship()
