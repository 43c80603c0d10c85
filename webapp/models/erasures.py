"""Erasures: one row per "forget this person" request, its progress, and what each destination was asked
(webapp/services/contacts/erasure.py). The row never holds the personal data it removes: the email is kept
as a keyed hash (to recognise a repeat request), and the values the job needs while it runs are encrypted
in `pending_values` and cleared when it ends."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, Json, utcnow


class Erasure(Base):
    """An erasure worked in chunks from `phase` and `cursor`, so a lost worker's successor goes on from there.

    `destinations` lists what each destination was asked: [{"id", "kind", "name", "event_id"}]; their status is
    read from the events (delivered, skipped, failed). `contact_ids` are the rows being anonymised.
    """

    __tablename__ = "erasures"
    __table_args__ = (sa.Index("ix_erasures_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(16), primary_key=True)  # public: /api/v1/erasures/<id>
    email_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    status: Mapped[str] = mapped_column(sa.String(12), default="queued")  # queued|running|succeeded|failed
    phase: Mapped[str] = mapped_column(sa.String(16), default="orders")
    cursor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    contact_ids: Mapped[list[int]] = mapped_column(Json, default=list)
    destinations: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    total: Mapped[int] = mapped_column(default=0)  # rows to clean, counted when asked for
    done: Mapped[int] = mapped_column(default=0)
    counts: Mapped[dict[str, int]] = mapped_column(Json, default=dict)  # rows cleaned per table
    pending_values: Mapped[str | None] = mapped_column(sa.Text)  # encrypted; null once finished
    requested_by: Mapped[str] = mapped_column(sa.String(16), default="api")  # api | cli | dashboard
    job_id: Mapped[str | None] = mapped_column(sa.String(64))
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    progressed_at: Mapped[datetime | None]
    local_done_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
