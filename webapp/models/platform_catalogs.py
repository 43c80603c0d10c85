"""Platform catalogs: what shoprelay last confirmed at each platform's catalog, and the reconciles that keep
it equal to the store's catalog (Klaviyo's Catalog API)."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, BigId, Json, utcnow


class CatalogEntry(Base):
    """One category, item or variant as the platform holds it (the ledger the reconcile compares with).

    `confirmed_digest` is the digest of what the platform confirmed (a job that completed without an error
    for this entry); null means the platform does not have it, "?" that it has it with unknown content.
    `action` + `job_path` mark a job in flight for it, so a run that dies loses nothing: the next one reads
    that job's outcome first.
    """

    __tablename__ = "catalog_entries"
    __table_args__ = (
        sa.UniqueConstraint("destination_id", "kind", "external_id"),
        sa.Index("ix_catalog_entries_job", "destination_id", "job_path"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    destination_id: Mapped[int] = mapped_column(sa.ForeignKey("destinations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(10))  # category | item | variant
    external_id: Mapped[str] = mapped_column(sa.String(300))
    product_key: Mapped[str | None] = mapped_column(sa.String(300))  # "source id:product external id"
    confirmed_digest: Mapped[str | None] = mapped_column(sa.String(40))
    sent_digest: Mapped[str | None] = mapped_column(sa.String(40))
    action: Mapped[str | None] = mapped_column(sa.String(8))  # create | update | delete while in flight
    job_path: Mapped[str | None] = mapped_column(sa.String(300))
    error: Mapped[str | None] = mapped_column(sa.Text)
    confirmed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CatalogReconcile(Base):
    """One comparison of the store's catalog with a platform's, and the jobs that closed the difference."""

    __tablename__ = "catalog_reconciles"
    __table_args__ = (sa.Index("ix_catalog_reconciles_dest", "destination_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    destination_id: Mapped[int] = mapped_column(sa.ForeignKey("destinations.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(sa.String(12), default="queued")  # queued|running|succeeded|failed
    trigger: Mapped[str] = mapped_column(sa.String(12), default="manual")  # enabled|nightly|sync|manual
    full: Mapped[bool] = mapped_column(default=False)  # read the platform's catalog back first
    job_id: Mapped[str | None] = mapped_column(sa.String(64))
    phase: Mapped[str | None] = mapped_column(sa.String(40))
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int | None]
    counts: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class BackInStockSubscription(Base):
    """A shopper waiting for a product (a variant) to come back: sent to Klaviyo's back-in-stock API, and one
    `back_in_stock` event to webhook destinations when a sync brings its inventory back above zero."""

    __tablename__ = "back_in_stock_subscriptions"
    __table_args__ = (sa.Index("ix_bis_product", "source_id", "product_external_id"),
                      sa.Index("ix_bis_waiting", "restocked_at", "id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[int] = mapped_column(sa.ForeignKey("sources.id", ondelete="CASCADE"))
    product_external_id: Mapped[str] = mapped_column(sa.String(255))
    sku: Mapped[str | None] = mapped_column(sa.String(255))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    channels: Mapped[list[str]] = mapped_column(Json, default=list)
    origin: Mapped[str] = mapped_column(sa.String(10), default="api")  # api | onsite
    # The inventory last seen for it (at subscribe time, then after each sync): a rise from ≤ 0 is a restock.
    last_quantity: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    restocked_at: Mapped[datetime | None]
