"""Orders aggregate: contacts (with their LTV aggregates), orders, lines, checkouts, imports."""

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, BigId, Json, Money, Timestamps


class Contact(Timestamps, Base):
    """A customer, matched by customer id, then email, then phone."""

    __tablename__ = "contacts"
    # "Best customers first" is a keyset page on (ltv_primary, id): one backward index range, no sort of ties.
    __table_args__ = (sa.Index("ix_contacts_ltv_primary_id", "ltv_primary", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(320), unique=True)
    phone: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    first_name: Mapped[str | None] = mapped_column(sa.String(200))
    last_name: Mapped[str | None] = mapped_column(sa.String(200))
    # Consent per channel: true / false / null = never said (then nothing is sent). Where it came from:
    # order | checkout | onsite | import (webapp/services/contacts/consent.py).
    accepts_marketing: Mapped[bool | None]
    consent_changed_at: Mapped[datetime | None]
    email_consent_source: Mapped[str | None] = mapped_column(sa.String(16))
    accepts_sms_marketing: Mapped[bool | None]
    sms_consent_changed_at: Mapped[datetime | None]
    sms_consent_source: Mapped[str | None] = mapped_column(sa.String(16))
    # Set by an erasure: the row keeps its figures (revenue, LTV, RFM) but no personal data.
    erased_at: Mapped[datetime | None]
    address: Mapped[dict[str, Any] | None] = mapped_column(Json)
    profile_fingerprint: Mapped[str | None] = mapped_column(sa.String(32))
    merged_into_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id", ondelete="SET NULL"))
    first_order_at: Mapped[datetime | None]
    last_order_at: Mapped[datetime | None] = mapped_column(index=True)
    orders_count: Mapped[int] = mapped_column(default=0)
    # Sort key for "best customers": net LTV in the contact's main currency.
    ltv_primary: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    ltv_primary_currency: Mapped[str | None] = mapped_column(sa.String(3))
    avg_days_between_orders: Mapped[float | None]
    rfm_recency: Mapped[int | None]
    rfm_frequency: Mapped[int | None]
    rfm_monetary: Mapped[int | None]
    rfm_segment: Mapped[str | None] = mapped_column(sa.String(40), index=True)

    ltv: Mapped[list["ContactLtv"]] = relationship(
        back_populates="contact", cascade="all, delete-orphan", passive_deletes=True,
        order_by="ContactLtv.currency")


class ContactLtv(Base):
    """Per-currency lifetime value, maintained incrementally on ingest (see services.ltv)."""

    __tablename__ = "contact_ltv"

    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"),
                                            primary_key=True)
    currency: Mapped[str] = mapped_column(sa.String(3), primary_key=True)
    placed: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    cancelled: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    refunded: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    orders: Mapped[int] = mapped_column(default=0)
    fulfilled_orders: Mapped[int] = mapped_column(default=0)
    fulfilled_value: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))

    contact: Mapped[Contact] = relationship(back_populates="ltv")


class Order(Timestamps, Base):
    """The store's order in its latest state, plus how it got there."""

    __tablename__ = "orders"
    __table_args__ = (
        sa.Index("ix_orders_placed_at_id", "placed_at", "id"),
        sa.Index("ix_orders_contact_placed", "contact_id", "placed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(sa.String(24), index=True)
    currency: Mapped[str] = mapped_column(sa.String(3))
    total: Mapped[Decimal] = mapped_column(Money)
    subtotal: Mapped[Decimal | None] = mapped_column(Money)
    tax: Mapped[Decimal | None] = mapped_column(Money)
    shipping: Mapped[Decimal | None] = mapped_column(Money)
    discount_code: Mapped[str | None] = mapped_column(sa.String(255))
    discount_value: Mapped[Decimal | None] = mapped_column(Money)
    email: Mapped[str | None] = mapped_column(sa.String(320), index=True)
    placed_at: Mapped[datetime]
    fulfilled_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]
    refunded_amount: Mapped[Decimal | None] = mapped_column(Money)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    historical: Mapped[bool] = mapped_column(default=False)
    data: Mapped[dict[str, Any]] = mapped_column(Json)
    status_history: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    anomalies: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    # What was already derived (services.order_state.OrderSnapshot), so a re-send derives nothing new.
    derived: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # Delivery roll-up for list filters: delivered | pending | failing | dead | none.
    delivery_state: Mapped[str] = mapped_column(sa.String(12), default="none", index=True)

    lines: Mapped[list["OrderLine"]] = relationship(
        back_populates="order", cascade="all, delete-orphan", passive_deletes=True, order_by="OrderLine.id")
    contact: Mapped[Contact | None] = relationship()


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (sa.UniqueConstraint("order_id", "line_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    line_key: Mapped[str] = mapped_column(sa.String(255))
    product_id: Mapped[str | None] = mapped_column(sa.String(255))
    sku: Mapped[str | None] = mapped_column(sa.String(255))
    name: Mapped[str] = mapped_column(sa.Text)
    quantity: Mapped[int]
    price: Mapped[Decimal] = mapped_column(Money)
    total: Mapped[Decimal] = mapped_column(Money)
    url: Mapped[str | None] = mapped_column(sa.Text)
    image_url: Mapped[str | None] = mapped_column(sa.Text)
    categories: Mapped[list[str]] = mapped_column(Json, default=list)
    brand: Mapped[str | None] = mapped_column(sa.String(255))

    order: Mapped[Order] = relationship(back_populates="lines")


class Checkout(Timestamps, Base):
    """A started checkout; becomes abandoned when no order follows within the configured delay."""

    __tablename__ = "checkouts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id", ondelete="SET NULL"))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    started_at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(Json)
    completed_order_id: Mapped[str | None] = mapped_column(sa.String(255))
    abandoned_at: Mapped[datetime | None]


class ImportRun(Timestamps, Base):
    """A historical order import; `position` makes it resumable after an interruption."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(sa.Text)
    file_digest: Mapped[str] = mapped_column(sa.String(64), index=True)
    historical: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="queued")
    total: Mapped[int | None]
    position: Mapped[int] = mapped_column(default=0)
    imported: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    error: Mapped[str | None] = mapped_column(sa.Text)
    finished_at: Mapped[datetime | None]
