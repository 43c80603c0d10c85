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

__all__ = [
    "EVENT_STATES", "ApiKey", "Base", "CatalogStage", "Checkout", "Contact", "ContactLtv", "DeliveryAttempt",
    "DeliveryRequest", "Destination", "Event", "Feed", "FeedBuild", "FeedFetch", "ImportRun", "Order",
    "OrderLine", "Product", "Source", "SyncRun", "User", "feed_sources", "utcnow",
]
