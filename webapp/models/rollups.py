"""What survives retention: delivery counters, per-day and per-contact roll-ups of pruned events.

Delivered and skipped events (and their attempts and requests) are deleted after the retention period;
every total the dashboard and /metrics show is kept here, so pruning changes none of them.
"""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, BigId


class DeliveryCounter(Base):
    """Monotonic counters per destination, incremented in the transaction that records what they count.

    `slot` spreads concurrent recorders of one destination over several rows (no lock queue on one row);
    readers sum the slots. Names: `attempts:<outcome>`, `events:<state>`, `latency:<bucket index>`.
    """

    __tablename__ = "delivery_counters"

    destination_id: Mapped[int] = mapped_column(sa.ForeignKey("destinations.id", ondelete="CASCADE"),
                                                primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    slot: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    seconds: Mapped[float] = mapped_column(sa.Float, default=0.0)


class EventRollup(Base):
    """Pruned events per destination, creation day (UTC) and state: the overview's day buckets add these."""

    __tablename__ = "event_rollups"

    destination_id: Mapped[int] = mapped_column(sa.ForeignKey("destinations.id", ondelete="CASCADE"),
                                                primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # Σ seconds from creation to delivery of the pruned delivered events (the chart's mean latency).
    seconds: Mapped[float] = mapped_column(sa.Float, default=0.0)


class ContactEventRollup(Base):
    """Pruned events per contact, destination and state: the contact page's per-platform counts add these."""

    __tablename__ = "contact_event_rollups"

    contact_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("contacts.id", ondelete="CASCADE"),
                                            primary_key=True)
    destination_id: Mapped[int] = mapped_column(sa.ForeignKey("destinations.id", ondelete="CASCADE"),
                                                primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    count: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class RetentionMark(Base):
    """How far a pruning pass has got (bodies pruned before `until`), so the next pass starts there."""

    __tablename__ = "retention_marks"

    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    until: Mapped[datetime]
