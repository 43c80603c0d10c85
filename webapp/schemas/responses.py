"""Response shapes of /api/v1, as pydantic models: they generate the OpenAPI document and the tests
validate real responses against them, so the document cannot drift from what the API returns."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorItem(_Out):
    path: str
    message: str


class ErrorResponse(_Out):
    errors: list[ErrorItem]


class Pong(_Out):
    ok: bool


class WarningItem(_Out):
    """Input that was accepted but cannot be used in full: `path` names the field, `message` says why."""

    path: str
    message: str


class OrderResult(_Out):
    id: str
    result: str  # created | updated
    status: str
    events: list[str]
    anomaly: str | None
    warnings: list[WarningItem] | None = Field(
        default=None, description="Fields accepted but not usable in full (e.g. a phone that is not a number, "
                                  "a link that is not http/https); present only when there are some")


class IngestResponse(_Out):
    accepted: int
    results: list[OrderResult]


class EventOut(_Out):
    id: int
    name: str
    unique_id: str
    state: str
    attempts: int
    occurred_at: str | None
    next_attempt_at: str | None
    delivered_at: str | None
    last_error: str | None
    historical: bool


class OrderDestination(_Out):
    id: int
    name: str
    kind: str
    events: list[EventOut]


class OrderOut(_Out):
    """The canonical order as last received, plus status history, anomalies and delivery per destination."""

    id: str
    status: str
    delivery_state: str
    status_history: list[dict[str, Any]]
    anomalies: list[dict[str, Any]]
    destinations: list[OrderDestination]


class LtvEntry(_Out):
    currency: str
    placed: float
    cancelled: float
    refunded: float
    net: float
    orders: int
    aov: float | None


class Rfm(_Out):
    recency: int
    frequency: int
    monetary: int
    segment: str


class ConsentOut(_Out):
    channel: str = Field(description="email or sms")
    subscribed: bool | None = Field(description="null: never said (nothing is sent for this channel)")
    at: str | None = Field(description="When the customer said it (ISO 8601)")
    source: str | None = Field(description="Where it came from: order, checkout, onsite or import")


class ContactOut(_Out):
    email: str | None
    customer_id: str | None
    first_name: str | None
    last_name: str | None
    accepts_marketing: bool | None
    accepts_sms_marketing: bool | None = Field(default=None, description="SMS consent for the contact's phone")
    consent: list[ConsentOut] = Field(default_factory=list, description="Consent per channel, with when and where")
    erased: bool = Field(default=False, description="The contact's personal data was erased (its figures stay)")
    first_order_at: str | None
    last_order_at: str | None
    ltv: list[LtvEntry]
    rfm: Rfm | None


class DestinationOut(_Out):
    id: int
    name: str
    kind: str
    credentials_set: list[str]
    base_url: str | None
    mode: str
    batch_interval_minutes: int
    events: list[str]
    enabled: bool
    rate_limits: dict[str, float]
    settings: dict[str, Any] = Field(description="Platform-specific settings (for example Klaviyo's revision).")
    paused: bool
    paused_at: str | None = Field(description="When it was paused (by a person, or automatically after failing); "
                                              "ISO 8601 UTC, null while it runs.")
    pause_reason: str | None
    last_success_at: str | None = Field(description="The last request the platform accepted (ISO 8601 UTC).")
    event_counts: dict[str, int]
    rate_limited_until: str | None = Field(
        description="While the platform's own \"wait\" (429, or 503 with Retry-After) lasts: when it ends "
                    "(ISO 8601 UTC); nothing is sent to its account before then. Null otherwise.")


    catalog: str = Field(description='"api": the platform\'s catalog is kept equal to shoprelay\'s; "off": no '
                                     'product data is sent.')
    warnings: list[WarningItem] | None = Field(
        default=None, description="Only on create/update: e.g. a Klaviyo feed of the same store is still "
                                  "being fetched while the catalog goes through the Catalog API.")


class CatalogReconcileOut(_Out):
    id: int
    status: str = Field(description="queued | running | succeeded | failed")
    trigger: str = Field(description="enabled (switched on) | nightly | sync | manual")
    full: bool = Field(description="The platform's own catalog was read back first (what it lost is created "
                                   "again, what it holds unasked is removed).")
    phase: str | None
    done: int
    total: int | None
    counts: dict[str, Any] = Field(description="Entries confirmed per action and kind (sent), refused, jobs, "
                                               "and products skipped per reason with examples.")
    error: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None


class CatalogErrorOut(_Out):
    kind: str = Field(description="category | item | variant")
    external_id: str
    product: str | None = Field(description='The product it comes from: "<source id>:<product external id>".')
    message: str
    at: str | None


class DestinationCatalogOut(_Out):
    state: str = Field(description="off | waiting | reconciling | in_step | errors | failed | events (webhooks "
                                   "take product events) | not_supported")
    catalog: str
    items: int = Field(description="Catalog items the platform confirmed (one per item group).")
    variants: int = Field(description="Variants the platform confirmed (one per product / SKU).")
    categories: int
    pending_jobs: int = Field(description="Catalog jobs sent whose outcome has not been read yet.")
    last_reconciled_at: str | None
    last_reconcile: CatalogReconcileOut | None
    errors: list[CatalogErrorOut] = Field(description="The newest entries the platform refused, with why.")
    warnings: list[WarningItem]


class DestinationList(_Out):
    destinations: list[DestinationOut]


class SyncProgressOut(_Out):
    phase: str | None = Field(description="reading (the file, rows so far) | applying (staged changes) | null "
                              "while queued")
    done: int
    total: int | None = Field(description="Rows in all, when known; while reading a file, an estimate from the "
                              "share of its bytes read (see total_estimated)")
    total_estimated: bool
    percent: float | None


class SyncRunOut(_Out):
    id: int
    status: str
    counts: dict[str, int | None]
    error: str | None
    progress: SyncProgressOut | None = Field(default=None, description="Live, while the run is queued or "
                                             "running; null once it ended")


class SourceOut(_Out):
    id: int
    name: str
    kind: str
    location: str | None
    uploaded: bool = Field(description="Whether the source reads a file uploaded from the dashboard; false once a "
                           "`location` replaced it (the uploaded file is then deleted).")
    mapping: dict[str, str] | None
    schedule: str
    timezone: str
    enabled: bool
    product_count: int
    next_run_at: str | None
    last_run: SyncRunOut | None
    warnings: list[WarningItem] | None = Field(
        default=None, description="Only on create/update, when the source is saved but cannot do everything yet, "
        "e.g. a woocommerce or shopify source without options.store_url (its products get no product URL).")


class SourceList(_Out):
    sources: list[SourceOut]


class FeedBuildOut(_Out):
    id: int
    status: str = Field(description="queued | running | succeeded | failed | held (written but not published: "
                                    "no item, or too many products skipped or lost; the reason is in error)")
    counts: dict[str, int | None]
    error: str | None = Field(description="Why the build failed or is held, with each skip cause, its count "
                                          "and its fix")


class FeedOut(_Out):
    id: int
    name: str
    slug: str
    format: str
    source_ids: list[int]
    rules: list[dict[str, Any]]
    url: str
    part_urls: list[str]
    published_build: FeedBuildOut | None
    last_build: FeedBuildOut | None


class FeedList(_Out):
    feeds: list[FeedOut]


class PushResult(_Out):
    source_id: int
    run_id: int
    added: int
    updated: int
    unchanged: int
    removed: int
    warnings: list[WarningItem] | None = Field(
        default=None, description="Links that are not http/https, dropped (the product is stored without them); "
                                  "present only when there are some")


class BackInStockOut(_Out):
    id: int
    email: str | None
    phone: str | None
    channels: list[str]
    sku: str | None
    product_id: str = Field(description="The product's id in its source (the Klaviyo variant's external id).")
    source_id: int
    origin: str = Field(description="api | onsite (/t.js)")
    created_at: str | None
    restocked_at: str | None = Field(description="When a sync brought its inventory back (webhooks were told).")
    warnings: list[WarningItem] | None = Field(
        default=None, description="e.g. the product is in stock now, or Klaviyo's catalog does not hold the "
                                  "variant yet (the subscription goes out after the next reconcile).")


class RetryCount(_Out):
    retried: int | None = None
    would_retry: int | None = None


class Replayed(_Out):
    replayed: int


class ReplayBreakdownEntry(_Out):
    event: str
    state: str
    count: int


class ReplayCount(_Out):
    """A dry run of a window replay: what it would queue (nothing changed)."""

    dry_run: bool
    count: int = Field(description="Events that would be sent again.")
    by_event: dict[str, int]
    by_state: dict[str, int]
    breakdown: list[ReplayBreakdownEntry] = Field(description="Per event name and state.")
    not_replayable: int = Field(description="Events in the window whose payload retention pruned: they cannot "
                                            "be sent again and are left out.")
    since: str
    until: str
    events: list[str] | None
    states: list[str]
    new_ids: bool


class ReplayOut(_Out):
    """A window replay: counted, then queued in chunks (each its own short transaction)."""

    id: str
    destination_id: int
    status: str = Field(description="queued | running | succeeded | failed")
    since: str
    until: str
    events: list[str] | None
    states: list[str]
    new_ids: bool
    total: int = Field(description="Events counted when the replay was asked for.")
    done: int = Field(description="Events queued so far (their delivery follows, through the normal engine).")
    chunks: int
    not_replayable: int
    by_event: dict[str, int]
    by_state: dict[str, int]
    breakdown: list[ReplayBreakdownEntry]
    slowest_chunk_ms: int
    error: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    job_id: str | None = Field(description="The RQ job queuing it (null when the request or the CLI did).")


class CheckoutResult(_Out):
    id: str
    result: str
    warnings: list[WarningItem] | None = Field(
        default=None, description="Fields accepted but not usable in full; present only when there are some")
