"""Sendlane API v2 custom integration: the `/tracking/*` calls, one event per request.

Every body carries the custom integration's token in `token` (a second credential next to the
API bearer token). Order lifecycle changes all go to `order-placed` with a `status`, which is how
Sendlane's spec models them; the exact status words Sendlane matches on are not published.
"""

from __future__ import annotations

from typing import Any

import orjson

from workers.destinations import register
from workers.destinations.base import (
    BuildResult,
    Classification,
    DestinationAdapter,
    OutboundEvent,
    PreparedRequest,
    as_number,
    classify_with_platform_message,
    compact,
    event_contact,
    parse_time,
    text_or_none,
)

ORDER_STATUS = {"placed_order": "placed", "fulfilled_order": "fulfilled",
                "cancelled_order": "cancelled", "refunded_order": "refunded"}
CONSENT_FIELDS = {"email": "email_consent", "sms": "sms_consent"}  # customer-added's consent per channel
ORDER_TIME_FIELD = {"placed_order": "placed_at", "fulfilled_order": "fulfilled_at",
                    "cancelled_order": "cancelled_at", "refunded_order": "refunded_at"}
NOT_TAKEN = {
    "ordered_product": "derived by Sendlane from line_items",
    "pending_order": "Sendlane hears of the order when it is placed",
    "abandoned_checkout": "Sendlane builds abandoned-checkout automations from checkout-started itself",
    "active_on_site": "Sendlane has no server-side page-activity call",
    "product_delete": "Sendlane has no call to remove a product",
    "product_upsert": "Sendlane's catalog is kept by a reconcile (the destination's catalog: api)",
    "contact_erased": "Sendlane's API v2 has no call to delete a contact: delete the person in Sendlane's "
                      "Contacts page (shoprelay has forgotten them)",
}


def sendlane_address(address: dict[str, Any] | None, email: str | None, *,
                     with_state: bool = False) -> dict[str, Any] | None:
    """A canonical address in Sendlane's field names (customer-added also takes the region name)."""
    if not address:
        return None
    mapped = {"first_name": address.get("first_name"), "last_name": address.get("last_name"), "email": email,
              "company": address.get("company"), "address_1": address.get("address1"),
              "address_2": address.get("address2"), "city": address.get("city"),
              "state": address.get("region") if with_state else None,
              "state_code": address.get("region_code"), "country": address.get("country"),
              "country_code": address.get("country_code"), "postal_code": address.get("zip"),
              "phone": address.get("phone")}
    return compact({key: text_or_none(value) for key, value in mapped.items()})


def line_item(item: dict[str, Any]) -> dict[str, Any]:
    """A canonical order line; a line without its own variant is its product's only variant."""
    product_id = text_or_none(item.get("product_id"))
    variant_id = text_or_none(item.get("variant_id")) or product_id
    return compact({"product_id": product_id, "variant_id": variant_id,
                    "quantity": as_number(item.get("quantity")), "sku": text_or_none(item.get("sku")),
                    "product_name": item.get("name"), "item_price": as_number(item.get("price")),
                    "total": as_number(item.get("total"))})


def _total_items(items: list[dict[str, Any]]) -> int:
    return int(sum(as_number(item.get("quantity")) or 0 for item in items))


def _discount(discount: dict[str, Any]) -> dict[str, Any]:
    return {"code": str(discount.get("code") or ""), "value": as_number(discount.get("value")) or 0}


def _unix(value: Any, event: OutboundEvent) -> int:
    return int(parse_time(value, event.occurred_at).timestamp())


def order_body(event: OutboundEvent) -> dict[str, Any]:
    order = event.payload["order"]
    contact = event_contact(event.payload)
    email = text_or_none(contact.get("email"))
    items = order.get("items") or []
    discount = order.get("discount") or {}
    tax = as_number(order.get("tax"))
    placed = parse_time(order.get("placed_at"), event.occurred_at)
    return compact({
        "order_id": str(order["id"]), "email": email, "phone": text_or_none(contact.get("phone")),
        "status": ORDER_STATUS[event.name], "subtotal": as_number(order.get("subtotal")),
        "tax_lines": [{"name": "Tax", "value": tax}] if tax else [],
        "total": as_number(order.get("total")), "total_items": _total_items(items),
        "currency": order.get("currency"),
        "discounts": [_discount(discount)] if discount else [],
        "line_items": [line_item(item) for item in items],
        "billing_address": sendlane_address(order.get("billing_address"), email),
        "shipping_address": sendlane_address(order.get("shipping_address"), email),
        "customer_id": text_or_none(contact.get("customer_id")),
        "accepts_marketing": contact.get("accepts_marketing"),
        "time": _unix(order.get(ORDER_TIME_FIELD[event.name]), event),
        "date_created": placed.isoformat(), "initial_sync": event.historical,
    })


def customer_body(event: OutboundEvent) -> dict[str, Any] | None:
    contact = event_contact(event.payload)
    email = text_or_none(contact.get("email"))
    customer_id = text_or_none(contact.get("customer_id")) or email
    if not customer_id:
        return None
    address = sendlane_address(contact.get("address"), email, with_state=True)
    body = compact({"customer_id": customer_id, "email": email,
                    **{key: text_or_none(contact.get(key)) for key in ("phone", "first_name", "last_name")},
                    "billing_address": address, "accepts_marketing": contact.get("accepts_marketing"),
                    "time": _unix(None, event), "initial_sync": event.historical})
    if event.name == "consent_change":
        consent = event.payload.get("consent") or {"channel": "email",
                                                   "subscribed": contact.get("accepts_marketing")}
        body[CONSENT_FIELDS.get(consent["channel"], "email_consent")] = bool(consent.get("subscribed"))
    return body


def onsite_body(event: OutboundEvent) -> tuple[str, dict[str, Any] | None]:
    """(path, body) of viewed_product / added_to_cart / started_checkout; body None when unusable."""
    contact = event_contact(event.payload)
    who = {"email": text_or_none(contact.get("email")), "phone": text_or_none(contact.get("phone"))}
    if event.name == "started_checkout":
        checkout = event.payload.get("checkout") or {}
        items = checkout.get("items") or []
        return "/tracking/checkout-started", compact({
            "checkout_id": text_or_none(checkout.get("id")) or event.unique_id, **who, "status": "pending",
            "checkout_url": checkout.get("url"), "subtotal": as_number(checkout.get("subtotal")),
            "total_tax": as_number(checkout.get("tax")), "total": as_number(checkout.get("total")),
            "total_items": _total_items(items), "currency": checkout.get("currency"),
            "line_items": [line_item(item) for item in items],
            "time": _unix(checkout.get("created_at"), event)})
    activity = event.payload.get("activity") or {}
    product = activity.get("product") or {}
    if event.name == "viewed_product":
        if not text_or_none(product.get("product_id")):
            return "/tracking/product-viewed", None
        return "/tracking/product-viewed", compact({
            "product_id": str(product["product_id"]),
            "variant_id": text_or_none(product.get("variant_id")) or str(product["product_id"]), **who})
    cart = activity.get("cart") or {}
    items = cart.get("items") or ([product] if product else [])
    return "/tracking/added-to-cart", compact({
        "cart_id": text_or_none(cart.get("id")) or event.unique_id, **who, "checkout_url": cart.get("url"),
        "total_items": _total_items(items), "total": as_number(cart.get("total")),
        "currency": cart.get("currency") or activity.get("currency"),
        "line_items": [line_item(item) for item in items], "time": _unix(activity.get("at"), event)})


@register
class SendlaneAdapter(DestinationAdapter):
    kind = "sendlane"
    label = "Sendlane"
    default_base_url = "https://api.sendlane.com/v2"
    # Catalog data goes through the reconcile (workers/catalogs, sendlane_catalog.py), not through events.
    supported_events = frozenset({*ORDER_STATUS, "profile_upsert", "consent_change",
                                  "viewed_product", "added_to_cart", "started_checkout"})
    credential_fields = ("api_token", "integration_token")
    # Sendlane publishes no limit; 240/min is the figure third-party docs report per account.
    default_rate_limits = {"burst_per_second": 4, "per_minute": 240}
    max_events_per_request = 1

    def _request(self, method: str, path: str, event_ids: list[int],
                 body: dict[str, Any] | None = None) -> PreparedRequest:
        headers = {"Authorization": f"Bearer {self.credentials['api_token']}", "Accept": "application/json"}
        if body is not None:
            body = {"token": self.credentials["integration_token"], **body}
        return PreparedRequest(method, f"{self.base_url}{path}", event_ids, json=body, headers=headers)

    def catalog_request(self, method: str, path: str, content: bytes | None = None) -> PreparedRequest:
        """A catalog call of the reconcile (product-added, category-added): the body as JSON bytes."""
        return self._request(method, path, [], orjson.loads(content) if content else None)

    def build_requests(self, events: list[OutboundEvent], *, bulk: bool = False) -> BuildResult:
        result = BuildResult(requests=[])
        for event in events:
            path, body, why = self._route(event)
            if body is None:
                result.skipped[event.id] = why
            else:
                result.requests.append(self._request("POST", path, [event.id], body))
        return result

    def _route(self, event: OutboundEvent) -> tuple[str, dict[str, Any] | None, str]:
        if event.name in ORDER_STATUS:
            return "/tracking/order-placed", order_body(event), ""
        if event.name in ("profile_upsert", "consent_change"):
            return "/tracking/customer-added", customer_body(event), "no customer id or email to identify"
        if event.name in ("viewed_product", "added_to_cart", "started_checkout"):
            path, body = onsite_body(event)
            return path, body, "no product id in the activity"
        return "", None, NOT_TAKEN.get(event.name, f"Sendlane does not take {event.name}")

    def classify(self, status: int | None, headers: dict[str, str], body: bytes,
                 error: str | None = None) -> Classification:
        return classify_with_platform_message(status, headers, body, error)  # {"data": {"message", ...}}

    def test_request(self) -> PreparedRequest:
        return self._request("GET", "/integrations/custom", [])
