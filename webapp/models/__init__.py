"""All models, importable from one place (one module per aggregate underneath)."""

from webapp.models.accounts import ApiKey, User
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
from webapp.models.orders import Checkout, Contact, ContactLtv, ImportRun, Order, OrderLine
from webapp.models.platform_catalogs import BackInStockSubscription, CatalogEntry, CatalogReconcile
from webapp.models.rollups import ContactEventRollup, DeliveryCounter, EventRollup, RetentionMark

__all__ = [
    "EVENT_STATES", "ApiKey", "BackInStockSubscription", "Base", "CatalogEntry", "CatalogReconcile", "CatalogStage", "Checkout", "Contact", "ContactEventRollup", "ContactLtv",
    "DeliveryAttempt", "DeliveryCounter", "DeliveryRequest", "Destination", "Event", "EventRollup", "Feed",
    "FeedBuild", "FeedFetch", "ImportRun", "Order", "OrderLine", "Product", "RetentionMark", "Source", "SyncRun",
    "User", "feed_sources", "utcnow",
]
