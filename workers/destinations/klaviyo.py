"""Klaviyo: current JSON:API Events API (single and bulk), profile import, subscriptions, Catalog API jobs.

Property names follow Klaviyo's "integrate a custom ecommerce platform" guide so its built-in
flows, CLV and product blocks work unchanged. Fulfilled/Cancelled/Refunded Order reuse the order
id as unique_id, like Placed Order, which is what Klaviyo's CLV needs to net them off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from workers.destinations import register
from workers.destinations.base import (
    BuildResult,
    Classification,
    DestinationAdapter,
    OutboundEvent,
    PreparedRequest,
    as_number,
    chunked,
    classify_with_platform_message,
    collapse_latest,
    compact,
    event_contact,
    parse_time,
    text_or_none,
)

REVISION = "2026-10-15"
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
}
# When the order happened for each lifecycle metric (falls back to the event's occurred_at).
ORDER_TIME_FIELD = {"placed_order": "placed_at", "ordered_product": "placed_at",
                    "fulfilled_order": "fulfilled_at", "cancelled_order": "cancelled_at",
                    "refunded_order": "refunded_at"}
BULK_EVENTS_PER_REQUEST = 1000
# Klaviyo refuses a bulk body over 5 MB; requests are cut below it, with room for the JSON:API envelope.
BULK_MAX_BYTES = 5_000_000
_BULK_ENVELOPE_BYTES = 200  # {"data": {"type": "event-bulk-create-job", ...}} around the entries
_ENTRY_ENVELOPE_BYTES = 150  # {"type": "event-bulk-create", "attributes": {"profile": ..., "events": ...}}
CATALOG_ITEMS_PER_JOB = 100
PROFILES_PER_SUBSCRIPTION_JOB = 1000
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
        "first_name": text_or_none(contact.get("first_name")),
        "last_name": text_or_none(contact.get("last_name")),
        "location": location or None,
    })


def _identifiers(profile: dict[str, Any]) -> list[str]:
    """What Klaviyo may merge a profile by; an event needs at least one."""
    return [f"{name}:{profile[name]}" for name in ("email", "phone_number", "external_id")
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


def _event_profile(event: OutboundEvent) -> dict[str, Any]:
    order = event.payload.get("order") or {}
    return profile_attributes(event_contact(event.payload), order.get("billing_address"))


@dataclass
class _BulkRequest:
    """One bulk-create request being filled: entries per (profile, historical)."""

    entries: dict[tuple[str, bool], dict[str, Any]] = field(default_factory=dict)
    event_ids: list[int] = field(default_factory=list)
    size: int = _BULK_ENVELOPE_BYTES  # serialised bytes so far (an upper bound)

    def full(self) -> bool:
        return len(self.event_ids) >= BULK_EVENTS_PER_REQUEST

    def fits(self, size: int) -> bool:
        """Room for `size` more bytes; an empty request takes any event, however large."""
        return not self.event_ids or self.size + size <= BULK_MAX_BYTES

    def body(self) -> dict[str, Any]:
        data = []
        for (_, historical), entry in self.entries.items():
            profile = {"data": {"type": "profile", "attributes": entry["profile"]}}
            attributes: dict[str, Any] = {"profile": profile, "events": {"data": entry["events"]}}
            if historical:
                attributes["backfill"] = True
            data.append({"type": "event-bulk-create", "attributes": attributes})
        job = {"events-bulk-create": {"data": data}}
        return {"data": {"type": "event-bulk-create-job", "attributes": job}}


@register
class KlaviyoAdapter(DestinationAdapter):
    kind = "klaviyo"
    label = "Klaviyo"
    default_base_url = "https://a.klaviyo.com"
    supported_events = frozenset(METRICS) | {"profile_upsert", "consent_change", "product_upsert",
                                             "product_delete"}
    credential_fields = ("api_key",)
    default_rate_limits = {"burst_per_second": 350, "per_minute": 3500}
    bulk_rate_limits: ClassVar[dict[str, float]] = {"burst_per_second": 10, "per_minute": 150}
    max_events_per_request = BULK_EVENTS_PER_REQUEST

    def _request(self, method: str, path: str, event_ids: list[int], body: Any = None) -> PreparedRequest:
        headers = {"Authorization": f"Klaviyo-API-Key {self.credentials['api_key']}", "revision": REVISION,
                   "Accept": "application/vnd.api+json"}
        if body is not None:
            headers["Content-Type"] = "application/vnd.api+json"
        return PreparedRequest(method, f"{self.base_url}{path}", event_ids, json=body, headers=headers)

    def build_requests(self, events: list[OutboundEvent], *, bulk: bool = False) -> BuildResult:
        result = BuildResult(requests=[])
        metric_events, consents, products = [], [], []
        profiles: dict[int, dict[str, Any]] = {}  # built once per event: it is the costliest part
        for event in events:
            if event.name in METRICS:
                profile = profiles[event.id] = _event_profile(event)
                if _identifiers(profile):
                    metric_events.append(event)
                else:
                    result.skipped[event.id] = "no email, E.164 phone or customer id to attach the event to"
            elif event.name == "profile_upsert":
                profile = profile_attributes(event_contact(event.payload))
                if _identifiers(profile):
                    body = {"data": {"type": "profile", "attributes": profile}}
                    result.requests.append(self._request("POST", "/api/profile-import", [event.id], body))
                else:
                    result.skipped[event.id] = "no email, E.164 phone or customer id to identify the profile"
            elif event.name == "consent_change":
                consents.append(event)
            elif event.name in ("product_upsert", "product_delete"):
                products.append(event)
            else:
                result.skipped[event.id] = NOT_TAKEN.get(event.name, f"Klaviyo does not take {event.name}")
        if bulk:
            result.requests += self._bulk_event_requests(metric_events, profiles)
        else:
            for event in metric_events:
                attributes = event_attributes(event)
                attributes["profile"] = {"data": {"type": "profile", "attributes": profiles[event.id]}}
                body = {"data": {"type": "event", "attributes": attributes}}
                result.requests.append(self._request("POST", "/api/events", [event.id], body))
        result.requests += self._consent_requests(consents, result.skipped)
        result.requests += self._catalog_requests(products, result.skipped)
        return result

    def _bulk_event_requests(self, events: list[OutboundEvent],
                             profiles: dict[int, dict[str, Any]]) -> list[PreparedRequest]:
        """Requests of ≤ 1000 events and ≤ 5 MB grouped per profile. A repeat of (profile, metric, unique_id)
        waits for a later request, because Klaviyo fails the whole bulk job on such a repeat.

        Each event goes to the first request with room that does not hold its keys yet; `holders` maps a key
        to the requests holding it, so that is a dict look-up, not a scan of every open request.
        """
        batches: list[_BulkRequest] = []
        holders: dict[tuple[str, str, str], set[int]] = {}
        profile_sizes: dict[str, int] = {}
        first_open = 0  # requests fill in order: all before this one are full
        for event in events:
            profile = profiles[event.id]
            keys = [(who, METRICS[event.name], event.unique_id) for who in _identifiers(profile)]
            taken = set().union(*(holders[key] for key in keys if key in holders))
            entry_key = (repr(sorted(profile.items())), event.historical)
            item = {"type": "event", "attributes": event_attributes(event)}
            item_size = len(orjson.dumps(item)) + 1
            if entry_key[0] not in profile_sizes:
                profile_sizes[entry_key[0]] = len(orjson.dumps(profile)) + _ENTRY_ENVELOPE_BYTES
            while first_open < len(batches) and batches[first_open].full():
                first_open += 1
            index = first_open
            while index < len(batches):
                candidate = batches[index]
                size = item_size + (0 if entry_key in candidate.entries else profile_sizes[entry_key[0]])
                if index not in taken and not candidate.full() and candidate.fits(size):
                    break
                index += 1
            if index == len(batches):
                batches.append(_BulkRequest())
            batch = batches[index]
            if entry_key not in batch.entries:
                batch.entries[entry_key] = {"profile": profile, "events": []}
                batch.size += profile_sizes[entry_key[0]]
            batch.entries[entry_key]["events"].append(item)
            batch.size += item_size
            for key in keys:
                holders.setdefault(key, set()).add(index)
            batch.event_ids.append(event.id)
        return [self._request("POST", "/api/event-bulk-create-jobs", batch.event_ids, batch.body())
                for batch in batches]

    def _consent_requests(self, events: list[OutboundEvent],
                          skipped: dict[int, str]) -> list[PreparedRequest]:
        """Email marketing consent as subscribe / unsubscribe bulk jobs (latest change per email wins)."""
        with_email = []
        for event in events:
            if text_or_none(event_contact(event.payload).get("email")):
                with_email.append(event)
            else:
                skipped[event.id] = "email consent needs an email address"
        latest = collapse_latest(with_email, lambda e: str(event_contact(e.payload)["email"]).lower())
        requests = []
        for subscribe, job in ((True, "create"), (False, "delete")):
            wanted = [pair for pair in latest
                      if bool(event_contact(pair[0].payload).get("accepts_marketing")) is subscribe]
            for chunk in chunked(wanted, PROFILES_PER_SUBSCRIPTION_JOB):
                ids = [event_id for _, chain in chunk for event_id in chain]
                body = self._subscription_body([event for event, _ in chunk], subscribe=subscribe)
                path = f"/api/profile-subscription-bulk-{job}-jobs"
                requests.append(self._request("POST", path, ids, body))
        return requests

    def _subscription_body(self, events: list[OutboundEvent], *, subscribe: bool) -> dict[str, Any]:
        historical = subscribe and all(event.historical for event in events)
        profiles = []
        for event in events:
            marketing: dict[str, Any] = {"consent": "SUBSCRIBED" if subscribe else "UNSUBSCRIBED"}
            if historical:  # Klaviyo wants the original consent time for imported consent
                marketing["consented_at"] = parse_time(None, event.occurred_at).isoformat()
            profiles.append({"type": "profile", "attributes": {
                "email": str(event_contact(event.payload)["email"]),
                "subscriptions": {"email": {"marketing": marketing}}}})
        attributes: dict[str, Any] = {"profiles": {"data": profiles}}
        if subscribe:
            attributes["custom_source"] = "shoprelay"
            if historical:
                attributes["historical_import"] = True
        job = "profile-subscription-bulk-create-job" if subscribe else "profile-subscription-bulk-delete-job"
        data: dict[str, Any] = {"type": job, "attributes": attributes}
        if self.settings.get("list_id"):
            data["relationships"] = {"list": {"data": {"type": "list", "id": str(self.settings["list_id"])}}}
        return {"data": data}

    def _catalog_requests(self, events: list[OutboundEvent],
                          skipped: dict[int, str]) -> list[PreparedRequest]:
        """Catalog API jobs of ≤ 100 items; payload "change" == "updated" selects the update job."""
        jobs: dict[str, list[tuple[dict[str, Any], list[int]]]] = {"create": [], "update": [], "delete": []}
        for event, ids in collapse_latest(events, lambda e: str(e.payload["product"]["external_id"])):
            product = event.payload["product"]
            if event.name == "product_delete":
                jobs["delete"].append(({"type": "catalog-item", "id": catalog_item_id(product)}, ids))
            elif not product.get("link") or not product.get("title"):
                for event_id in ids:
                    skipped[event_id] = "a Klaviyo catalog item needs a title and a product URL"
            elif event.payload.get("change") == "updated":
                jobs["update"].append(({"type": "catalog-item", "id": catalog_item_id(product),
                                        "attributes": catalog_attributes(product)}, ids))
            else:
                attributes = {"external_id": str(product["external_id"]), "integration_type": "$custom",
                              "catalog_type": "$default", **catalog_attributes(product)}
                jobs["create"].append(({"type": "catalog-item", "attributes": attributes}, ids))
        requests = []
        for job, entries in jobs.items():
            for chunk in chunked(entries, CATALOG_ITEMS_PER_JOB):
                body = {"data": {"type": f"catalog-item-bulk-{job}-job",
                                 "attributes": {"items": {"data": [item for item, _ in chunk]}}}}
                ids = [event_id for _, chain in chunk for event_id in chain]
                requests.append(self._request("POST", f"/api/catalog-item-bulk-{job}-jobs", ids, body))
        return requests

    def classify(self, status: int | None, headers: dict[str, str], body: bytes,
                 error: str | None = None) -> Classification:
        return classify_with_platform_message(status, headers, body, error)  # JSON:API errors[].detail

    def test_request(self) -> PreparedRequest:
        return self._request("GET", "/api/accounts", [])


def catalog_item_id(product: dict[str, Any]) -> str:
    return f"$custom:::$default:::{product['external_id']}"


def catalog_attributes(product: dict[str, Any]) -> dict[str, Any]:
    """Catalog item fields; extras Klaviyo has no field for go to flat custom_metadata."""
    metadata = compact({**{key: text_or_none(product.get(key)) for key in ("sku", "brand", "currency",
                                                                          "item_group_id")},
                        "categories": ", ".join(product.get("categories") or []) or None,
                        "compare_at_price": as_number(product.get("compare_at_price")),
                        "inventory_quantity": as_number(product.get("inventory_quantity"))})
    image = text_or_none(product.get("image_link"))
    return compact({"title": str(product["title"]), "description": str(product.get("description") or ""),
                    "url": str(product["link"]), "price": as_number(product.get("price")),
                    "image_full_url": image, "image_thumbnail_url": image,
                    "custom_metadata": metadata or None, "published": True})
