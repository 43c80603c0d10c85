"""All models, importable from one place (one module per aggregate underneath)."""

from webapp.models.accounts import ApiKey, User
from webapp.models.alerts import AlertChannel, AlertNotice, Incident
from webapp.models.base import Base, utcnow
from webapp.models.catalog import (
    CatalogStage,
    Feed,
    FeedBuild,
    FeedFetch,
    Product,
    Source,
    SyncRun,
    feed_sources,
)
from webapp.models.delivery import EVENT_STATES, DeliveryAttempt, DeliveryRequest, Destination, Event
from webapp.models.erasures import Erasure
from webapp.models.orders import Checkout, Contact, ContactLtv, ImportRun, Order, OrderLine
from webapp.models.platform_catalogs import BackInStockSubscription, CatalogEntry, CatalogReconcile
from webapp.models.replays import Replay
from webapp.models.rollups import ContactEventRollup, DeliveryCounter, EventRollup, RetentionMark

__all__ = [
    "EVENT_STATES", "AlertChannel", "AlertNotice", "ApiKey", "BackInStockSubscription", "Base", "CatalogEntry", "CatalogReconcile", "CatalogStage", "Checkout", "Contact", "ContactEventRollup", "ContactLtv",
    "DeliveryAttempt", "DeliveryCounter", "Erasure", "DeliveryRequest", "Destination", "Event", "EventRollup", "Feed",
    "FeedBuild", "FeedFetch", "ImportRun", "Incident", "Order", "OrderLine", "Product", "Replay", "RetentionMark", "Source", "SyncRun",
    "User", "feed_sources", "utcnow",
]
