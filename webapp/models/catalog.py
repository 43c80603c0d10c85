"""Catalog aggregate: sources, products, sync runs, feeds, feed builds and fetches."""

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, BigId, Json, Money, Timestamps, utcnow

feed_sources = sa.Table(
    "feed_sources",
    Base.metadata,
    sa.Column("feed_id", sa.ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("source_id", sa.ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
)


class Source(Timestamps, Base):
    """Where the store's products come from, and when to read them."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(20))
    location: Mapped[str | None] = mapped_column(sa.Text)
    upload_path: Mapped[str | None] = mapped_column(sa.Text)
    mapping: Mapped[dict[str, Any] | None] = mapped_column(Json)
    options: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    credentials_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    schedule: Mapped[str] = mapped_column(sa.String(120), default="0 2 * * *")
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    enabled: Mapped[bool] = mapped_column(default=True)
    max_remove_share: Mapped[float | None]
    next_run_at: Mapped[datetime | None] = mapped_column(index=True)
    http_etag: Mapped[str | None] = mapped_column(sa.String(512))
    http_last_modified: Mapped[str | None] = mapped_column(sa.String(128))
    content_digest: Mapped[str | None] = mapped_column(sa.String(64))
    product_count: Mapped[int] = mapped_column(default=0)

    runs: Mapped[list["SyncRun"]] = relationship(back_populates="source", cascade="all, delete-orphan",
                                                 passive_deletes=True, order_by="SyncRun.id.desc()")


class Product(Base):
    """One sellable item (variants are their own rows, grouped by item_group_id)."""

    __tablename__ = "products"
    __table_args__ = (sa.UniqueConstraint("source_id", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[int] = mapped_column(sa.ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(sa.String(255))
    item_group_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    title: Mapped[str] = mapped_column(sa.Text, default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    link: Mapped[str | None] = mapped_column(sa.Text)
    image_link: Mapped[str | None] = mapped_column(sa.Text)
    price: Mapped[Decimal | None] = mapped_column(Money)
    compare_at_price: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    brand: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    categories: Mapped[list[str]] = mapped_column(Json, default=list)
    inventory_quantity: Mapped[int | None]
    inventory_policy: Mapped[int | None]
    sku: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    gtin: Mapped[str | None] = mapped_column(sa.String(64))
    mpn: Mapped[str | None] = mapped_column(sa.String(128))
    condition: Mapped[str | None] = mapped_column(sa.String(20))
    extras: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    content_hash: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncRun(Timestamps, Base):
    """One read of a source applied to the catalog, with its counts, progress and problems."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(sa.ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="queued")
    trigger: Mapped[str] = mapped_column(sa.String(20), default="manual")
    confirm_removals: Mapped[bool] = mapped_column(default=False)
    job_id: Mapped[str | None] = mapped_column(sa.String(64))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    rows_read: Mapped[int] = mapped_column(default=0)
    rows_total: Mapped[int | None]
    added: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    removed: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    not_modified: Mapped[bool] = mapped_column(default=False)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    error: Mapped[str | None] = mapped_column(sa.Text)
    # Where a running sync is (the public status stays queued|running|...): reading (staging the changes,
    # the catalog untouched), applying (past the commit point: rolled forward, never back), applied.
    phase: Mapped[str | None] = mapped_column(sa.String(20))
    apply_started_at: Mapped[datetime | None]

    source: Mapped[Source] = relationship(back_populates="runs")


class CatalogStage(Base):
    """One change a sync run will make to `products`, written in short transactions while the source is read
    and applied (then deleted) in short transactions after the run's commit point. op: i(nsert), u(pdate)
    (product_id set), d(elete) (external_id only)."""

    __tablename__ = "catalog_stage"
    __table_args__ = (sa.Index("ix_catalog_stage_run_id_id", "run_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("sync_runs.id", ondelete="CASCADE"))
    op: Mapped[str] = mapped_column(sa.String(1))
    product_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    external_id: Mapped[str] = mapped_column(sa.String(255))
    item_group_id: Mapped[str | None] = mapped_column(sa.String(255))
    title: Mapped[str | None] = mapped_column(sa.Text)
    description: Mapped[str | None] = mapped_column(sa.Text)
    link: Mapped[str | None] = mapped_column(sa.Text)
    image_link: Mapped[str | None] = mapped_column(sa.Text)
    price: Mapped[Decimal | None] = mapped_column(Money)
    compare_at_price: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    brand: Mapped[str | None] = mapped_column(sa.String(255))
    categories: Mapped[list[str] | None] = mapped_column(Json)
    inventory_quantity: Mapped[int | None]
    inventory_policy: Mapped[int | None]
    sku: Mapped[str | None] = mapped_column(sa.String(255))
    gtin: Mapped[str | None] = mapped_column(sa.String(64))
    mpn: Mapped[str | None] = mapped_column(sa.String(128))
    condition: Mapped[str | None] = mapped_column(sa.String(20))
    extras: Mapped[dict[str, Any] | None] = mapped_column(Json)
    content_hash: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]


class Feed(Timestamps, Base):
    """A published product feed: which products, which format, at which stable URL."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    slug: Mapped[str] = mapped_column(sa.String(120), unique=True)
    format: Mapped[str] = mapped_column(sa.String(20))
    token: Mapped[str] = mapped_column(sa.String(64), unique=True)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    field_overrides: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    basic_auth_username: Mapped[str | None] = mapped_column(sa.String(200))
    basic_auth_password_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    gzip: Mapped[bool] = mapped_column(default=True)
    max_loss_share: Mapped[float | None]
    # The build being served. No FK: feeds <-> feed_builds would be a cycle; builds are never deleted
    # while published (see services.feeds).
    published_build_id: Mapped[int | None]

    sources: Mapped[list[Source]] = relationship(secondary=feed_sources)
    builds: Mapped[list["FeedBuild"]] = relationship(
        back_populates="feed", cascade="all, delete-orphan", passive_deletes=True,
        foreign_keys="FeedBuild.feed_id", order_by="FeedBuild.id.desc()")
    published_build: Mapped["FeedBuild | None"] = relationship(
        primaryjoin="foreign(Feed.published_build_id) == FeedBuild.id", viewonly=True)


class FeedBuild(Timestamps, Base):
    """One write of a feed to disk; published only when it passes validation and the publish gate."""

    __tablename__ = "feed_builds"

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[int] = mapped_column(sa.ForeignKey("feeds.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="queued")
    trigger: Mapped[str] = mapped_column(sa.String(20), default="manual")
    job_id: Mapped[str | None] = mapped_column(sa.String(64))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    items_total: Mapped[int | None]
    items_written: Mapped[int] = mapped_column(default=0)
    items_skipped: Mapped[int] = mapped_column(default=0)
    bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    etag: Mapped[str | None] = mapped_column(sa.String(80))
    directory: Mapped[str | None] = mapped_column(sa.Text)
    parts: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    report: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    error: Mapped[str | None] = mapped_column(sa.Text)

    feed: Mapped[Feed] = relationship(back_populates="builds", foreign_keys=[feed_id])


class FeedFetch(Base):
    """One request for a published feed: proof that the platform picked it up."""

    __tablename__ = "feed_fetches"
    __table_args__ = (sa.Index("ix_feed_fetches_feed_time", "feed_id", "fetched_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    feed_id: Mapped[int] = mapped_column(sa.ForeignKey("feeds.id", ondelete="CASCADE"))
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    path: Mapped[str] = mapped_column(sa.String(255))
    method: Mapped[str] = mapped_column(sa.String(8), default="GET")
    status: Mapped[int]
    bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    user_agent: Mapped[str | None] = mapped_column(sa.String(512))
    ip: Mapped[str | None] = mapped_column(sa.String(64))
