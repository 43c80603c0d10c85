"""Window replays: one row per "send again what a destination was sent in [since, until)", with its progress
(webapp/services/delivery/replays.py). The row is the replay's only record, so a flushed Redis loses none."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, Json, utcnow


class Replay(Base):
    """A replay of a destination's events in a window, queued chunk by chunk in event id order.

    `cursor` is the last event id a committed chunk looked at (moved in the chunk's own transaction, so a
    chunk is never queued twice); `last_id` the destination's newest event id when the replay was asked for
    (later events, and the copies `new_ids` inserts, are not the window's). `job_id` is the RQ job queuing
    it, null while a request or the CLI does it in its own process.
    """

    __tablename__ = "replays"
    __table_args__ = (sa.Index("ix_replays_dest_created", "destination_id", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(16), primary_key=True)  # public: /api/v1/replays/<id>
    destination_id: Mapped[int] = mapped_column(sa.ForeignKey("destinations.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(sa.String(12), default="queued")  # queued|running|succeeded|failed
    since: Mapped[datetime]
    until: Mapped[datetime]
    events: Mapped[list[str] | None] = mapped_column(Json)  # null: every event
    states: Mapped[list[str]] = mapped_column(Json)
    new_ids: Mapped[bool] = mapped_column(default=False)
    total: Mapped[int] = mapped_column(default=0)  # counted when asked for
    done: Mapped[int] = mapped_column(default=0)  # queued so far
    chunks: Mapped[int] = mapped_column(default=0)
    not_replayable: Mapped[int] = mapped_column(default=0)  # in the window, payload pruned by retention
    breakdown: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)  # the count by event and state
    slowest_chunk_ms: Mapped[int] = mapped_column(default=0)
    cursor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    last_id: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    job_id: Mapped[str | None] = mapped_column(sa.String(64))
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    progressed_at: Mapped[datetime | None]  # the last chunk's commit: how a run without a job is judged alive
    finished_at: Mapped[datetime | None]
