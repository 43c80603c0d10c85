"""Klaviyo payloads: profiles, order and on-site event properties, catalog items, as pure functions.

Property names follow Klaviyo's "integrate a custom ecommerce platform" guide so its built-in flows, CLV
and product blocks work unchanged; the adapter (klaviyo.py) wraps these in JSON:API requests.
"""

from __future__ import annotations

import re
from typing import Any

from workers.destinations.base import (
    OutboundEvent,
    as_number,
    compact,
    event_contact,
    parse_time,
    text_or_none,
)

METRICS = {
    "placed_order": "Placed Order", "ordered_product": "Ordered Product",
    "fulfilled_order": "Fulfilled Order", "cancelled_order": "Cancelled Order",
    "refunded_order": "Refunded Order", "viewed_product": "Viewed Product",
    "added_to_cart": "Added to Cart", "started_checkout": "Started Checkout",
    "active_on_site": "Active on Site",
}
NOT_TAKEN = {
    "pending_order": "Klaviyo has no pending-order metric; it hears of the order when it is placed",
    "abandoned_checkout": "Klaviyo builds abandoned-checkout flows itself from Started Checkout",
    "product_upsert": "Klaviyo's catalog is kept by a reconcile of its Catalog API (the destination's catalog: api)",
    "product_delete": "Klaviyo's catalog is kept by a reconcile of its Catalog API (the destination's catalog: api)",
    "back_in_stock": "Klaviyo tells its back-in-stock subscribers itself when the variant's inventory returns",
}
# When the order happened for each lifecycle metric (falls back to the event's occurred_at).
ORDER_TIME_FIELD = {"placed_order": "placed_at", "ordered_product": "placed_at",
                    "fulfilled_order": "fulfilled_at", "cancelled_order": "cancelled_at",
                    "refunded_order": "refunded_at"}
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
LOCATION_KEYS = ("address1", "address2", "city", "region", "country", "zip")
ADDRESS_KEYS = {"FirstName": "first_name", "LastName": "last_name", "Company": "company",
                "Address1": "address1", "Address2": "address2", "City": "city", "Region": "region",
                "RegionCode": "region_code", "Country": "country", "CountryCode": "country_code",
                "Zip": "zip", "Phone": "phone"}


def profile_attributes(contact: dict[str, Any], address: dict[str, Any] | None = None) -> dict[str, Any]:
    """Klaviyo profile attributes; a phone is sent only in E.164, the only form Klaviyo accepts."""
    address = address or contact.get("address") or {}
    phone = text_or_none(contact.get("phone"))
    location = compact({key: text_or_none(address.get(key)) for key in LOCATION_KEYS})
    return compact({
        "email": text_or_none(contact.get("email")),
        "phone_number": phone if phone and E164.match(phone) else None,
        "external_id": text_or_none(contact.get("customer_id")),
        "_kx": text_or_none(contact.get("_kx")),  # Klaviyo's own id of a person from its email links
        "first_name": text_or_none(contact.get("first_name")),
        "last_name": text_or_none(contact.get("last_name")),
        "location": location or None,
    })


def identifiers(profile: dict[str, Any]) -> list[str]:
    """What Klaviyo may merge a profile by; an event needs at least one."""
    return [f"{name}:{profile[name]}" for name in ("email", "phone_number", "external_id", "_kx")
            if profile.get(name)]


def _item(item: dict[str, Any]) -> dict[str, Any]:
    return compact({"ProductID": text_or_none(item.get("product_id")), "SKU": text_or_none(item.get("sku")),
                    "ProductName": item.get("name"), "Quantity": as_number(item.get("quantity")),
                    "ItemPrice": as_number(item.get("price")), "RowTotal": as_number(item.get("total")),
                    "ProductURL": item.get("url"), "ImageURL": item.get("image_url"),
                    "Categories": list(item.get("categories") or []), "Brand": item.get("brand")})


def _product(product: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Viewed Product / Added to Cart item properties (the latter with the "AddedItem" prefix)."""
    return {f"{prefix}ProductName": product.get("name"),
            f"{prefix}ProductID": text_or_none(product.get("product_id")),
            f"{prefix}SKU": text_or_none(product.get("sku")),
            f"{prefix}Categories": list(product.get("categories") or []),
            f"{prefix}ImageURL": product.get("image_url"), f"{prefix}URL": product.get("url"),
            f"{prefix}Price": as_number(product.get("price"))}


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(value for value in values if value))


def _categories(items: list[dict[str, Any]]) -> list[str]:
    return _unique([category for item in items for category in item.get("categories") or []])


def _address(address: dict[str, Any] | None) -> dict[str, Any] | None:
    if not address:
        return None
    return {title: address.get(key) or "" for title, key in ADDRESS_KEYS.items()}


def order_properties(order: dict[str, Any]) -> dict[str, Any]:
    """Placed Order properties as in Klaviyo's custom-platform guide."""
    items = order.get("items") or []
    discount = order.get("discount") or {}
    return compact({
        "OrderId": str(order["id"]), "Categories": _categories(items),
        "ItemNames": [item.get("name") for item in items if item.get("name")],
        "Brands": _unique([item.get("brand") for item in items]),
        "DiscountCode": text_or_none(discount.get("code")), "DiscountValue": as_number(discount.get("value")),
        "Items": [_item(item) for item in items],
        "BillingAddress": _address(order.get("billing_address")),
        "ShippingAddress": _address(order.get("shipping_address")),
    })


def _order_metric(event: OutboundEvent) -> tuple[dict[str, Any], Any, str | None, Any]:
    """(properties, value, currency, time) of an order lifecycle event."""
    order = event.payload["order"]
    currency = order.get("currency")
    when = order.get(ORDER_TIME_FIELD[event.name])
    if event.name == "ordered_product":
        line = event.payload["line"]
        properties = {"OrderId": str(order["id"]), "ProductID": text_or_none(line.get("product_id")),
                      "SKU": text_or_none(line.get("sku")), "ProductName": line.get("name"),
                      "Quantity": as_number(line.get("quantity")), "ProductURL": line.get("url"),
                      "ImageURL": line.get("image_url"), "Categories": list(line.get("categories") or []),
                      "ProductBrand": line.get("brand")}
        return compact(properties), as_number(line.get("total")), currency, when
    properties = order_properties(order)
    value = as_number(order.get("total"))
    if event.name != "placed_order":
        properties["Reason"] = order.get("reason")
    if event.name == "refunded_order":
        refunded = as_number(order.get("refunded_amount"))
        value = refunded if refunded is not None else value  # a full refund may come without an amount
        properties["RefundedAmount"] = value
    return compact(properties), value, currency, when


def _onsite_metric(event: OutboundEvent) -> tuple[dict[str, Any], Any, str | None, Any]:
    """Onsite/checkout metrics; property names as Klaviyo's own onsite snippets send them."""
    if event.name == "started_checkout":
        checkout = event.payload.get("checkout") or {}
        items = checkout.get("items") or []
        properties = {"CheckoutURL": checkout.get("url"), "ItemNames": [item.get("name") for item in items],
                      "Categories": _categories(items), "Items": [_item(item) for item in items]}
        total = as_number(checkout.get("total"))
        return compact(properties), total, checkout.get("currency"), checkout.get("created_at")
    activity = event.payload.get("activity") or {}
    product = activity.get("product") or {}
    if event.name == "viewed_product":
        properties = {**_product(product, ""), "Brand": product.get("brand")}
        price = as_number(product.get("price"))
        return compact(properties), price, activity.get("currency"), activity.get("at")
    if event.name == "added_to_cart":
        cart = activity.get("cart") or {}
        items = cart.get("items") or []
        properties = {**_product(product, "AddedItem"),
                      "AddedItemQuantity": as_number(product.get("quantity")),
                      "ItemNames": [item.get("name") for item in items], "CheckoutURL": cart.get("url"),
                      "Items": [_item(item) for item in items]}
        value = as_number(cart.get("total")) if cart else as_number(product.get("price"))
        currency = cart.get("currency") or activity.get("currency")
        return compact(properties), value, currency, activity.get("at")
    return compact({"page": activity.get("url")}), None, None, activity.get("at")


def event_attributes(event: OutboundEvent) -> dict[str, Any]:
    """The metric event without its profile (the bulk shape; single events add the profile)."""
    build = _order_metric if event.name in ORDER_TIME_FIELD else _onsite_metric
    properties, value, currency, when = build(event)
    attributes = {"properties": properties, "time": parse_time(when, event.occurred_at).isoformat(),
                  "value": value, "value_currency": currency if value is not None else None,
                  "unique_id": event.unique_id,
                  "metric": {"data": {"type": "metric", "attributes": {"name": METRICS[event.name]}}}}
    if event.historical:
        attributes["backfill"] = True  # record it, but do not fire flows for the past
    return compact(attributes)


def profile_inputs(event: OutboundEvent) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """What an event's profile is built from: its contact, and the order's billing address as location."""
    order = event.payload.get("order") or {}
    return event_contact(event.payload), order.get("billing_address")


def event_profile(event: OutboundEvent) -> dict[str, Any]:
    """The profile an event is about: its contact, with the order's billing address as location."""
    return profile_attributes(*profile_inputs(event))
