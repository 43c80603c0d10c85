"""eSputnik (Yespo) orders: `POST /api/v1/orders` with up to 1000 orders, upserted by externalOrderId; consent
as contact channels (`POST /api/v1/contact`) and the unsubscribed list (`POST /api/v1/emails/unsubscribed`).

eSputnik keeps only an order's current status, so an order appears once per request carrying its
latest state; the events for its earlier states ride in the same request's `event_ids` and are
marked delivered together with it (sending them separately could land out of order and regress
the status, because eSputnik would take whichever arrives last).
"""

from __future__ import annotations

import re
from typing import Any

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

ORDER_STATUS = {"pending_order": "INITIALIZED", "placed_order": "IN_PROGRESS",
                "fulfilled_order": "DELIVERED", "cancelled_order": "CANCELLED",
                "abandoned_checkout": "ABANDONED_SHOPPING_CART"}
NOT_TAKEN = {
    "refunded_order": "eSputnik has no refund status; the order stays DELIVERED",
    "ordered_product": "eSputnik takes the items on the order itself",
    "profile_upsert": "eSputnik takes the contact on the order itself",
    "contact_erased": "no documented eSputnik call deletes a contact by the store's ids: delete the person in "
                      "eSputnik's Contacts page (shoprelay has forgotten them)",
}
# Lifecycle order, to pick the latest state when two events of one order share a timestamp.
STATE_RANK = {"abandoned_checkout": 0, "pending_order": 1, "placed_order": 2, "fulfilled_order": 3,
              "cancelled_order": 4}
ORDERS_PER_REQUEST = 1000
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
API_USERNAME = "shoprelay"  # eSputnik ignores the user name; the API key is the password


def customer_key(contact: dict[str, Any]) -> str | None:
    """eSputnik needs one customer identifier: the store's customer id, else email, else phone."""
    return next((text for key in ("customer_id", "email", "phone")
                 if (text := text_or_none(contact.get(key)))), None)


def delivery_address(address: dict[str, Any] | None) -> str | None:
    if not address:
        return None
    parts = [address.get(key) for key in ("address1", "address2", "city", "region", "zip", "country")]
    return ", ".join(str(part) for part in parts if part) or None


def order_item(item: dict[str, Any]) -> dict[str, Any]:
    categories = item.get("categories") or []
    return compact({"externalItemId": text_or_none(item.get("sku")) or text_or_none(item.get("product_id")),
                    "name": item.get("name"), "quantity": as_number(item.get("quantity")),
                    "cost": as_number(item.get("price")), "url": item.get("url"),
                    "imageUrl": item.get("image_url"), "category": ", ".join(categories) or None})


def order_record(event: OutboundEvent) -> dict[str, Any] | None:
    """One eSputnik order from an order or abandoned-checkout event; None without a customer key."""
    contact = event_contact(event.payload)
    customer = customer_key(contact)
    if not customer:
        return None
    source = event.payload["checkout" if event.name == "abandoned_checkout" else "order"]
    record = {
        "externalOrderId": str(source["id"]), "externalCustomerId": customer,
        "totalCost": as_number(source.get("total")), "status": ORDER_STATUS[event.name],
        "currency": source.get("currency"), "email": text_or_none(contact.get("email")),
        "phone": text_or_none(contact.get("phone")), "firstName": text_or_none(contact.get("first_name")),
        "lastName": text_or_none(contact.get("last_name")),
        "items": [order_item(item) for item in source.get("items") or []]}
    if event.name == "abandoned_checkout":
        record["date"] = parse_time(source.get("created_at"), event.occurred_at).isoformat()
        record["restoreUrl"] = source.get("url")  # eSputnik's abandoned-cart messages link back here
        return compact(record)
    record["date"] = parse_time(source.get("placed_at"), event.occurred_at).isoformat()
    if event.name == "cancelled_order":
        record["statusDescription"] = text_or_none(source.get("reason"))
    record.update(shipping=as_number(source.get("shipping")), taxes=as_number(source.get("tax")),
                  discount=as_number((source.get("discount") or {}).get("value")),
                  deliveryAddress=delivery_address(source.get("shipping_address")))
    return compact(record)


def consent_request(event: OutboundEvent) -> tuple[str, dict[str, Any] | None, str]:
    """(path, body, why not) of a consent change. A "yes" adds the channel to the contact (`POST /v1/contact`,
    the contact upsert of Yespo's API: a contact with that channel is one eSputnik may write to); an email
    "no" puts the address on the account's unsubscribed list (`POST /v1/emails/unsubscribed`)."""
    contact = event_contact(event.payload)
    consent = event.payload.get("consent") or {"channel": "email", "subscribed": contact.get("accepts_marketing")}
    channel, subscribed = consent.get("channel"), bool(consent.get("subscribed"))
    email, phone = text_or_none(contact.get("email")), text_or_none(contact.get("phone"))
    value = email if channel == "email" else phone if channel == "sms" and phone and E164.match(phone) else None
    if value is None:
        return "", None, f"{channel} consent needs {'an email' if channel == 'email' else 'an E.164 phone'}"
    if not subscribed:
        if channel != "email":
            return "", None, "eSputnik has no API call to withdraw SMS consent: mark the number in eSputnik"
        return "/api/v1/emails/unsubscribed", {"emails": [value]}, ""
    return "/api/v1/contact", compact({
        "channels": [{"type": channel, "value": value}], "firstName": text_or_none(contact.get("first_name")),
        "lastName": text_or_none(contact.get("last_name")),
        "externalCustomerId": text_or_none(contact.get("customer_id"))}), ""


@register
class EsputnikAdapter(DestinationAdapter):
    kind = "esputnik"
    label = "eSputnik (Yespo)"
    default_base_url = "https://esputnik.com"
    supported_events = frozenset({*ORDER_STATUS, "consent_change"})
    credential_fields = ("api_key",)
    # eSputnik publishes no figure for this endpoint; requests carry up to 1000 orders each.
    default_rate_limits = {"burst_per_second": 5, "per_minute": 300}
    max_events_per_request = ORDERS_PER_REQUEST

    def _request(self, method: str, path: str, event_ids: list[int], body: Any = None) -> PreparedRequest:
        return PreparedRequest(method, f"{self.base_url}{path}", event_ids, json=body,
                               headers={"Accept": "application/json"},
                               auth=(API_USERNAME, self.credentials["api_key"]))

    def build_requests(self, events: list[OutboundEvent], *, bulk: bool = False) -> BuildResult:
        """Realtime and bulk alike send every due order in requests of ≤ 1000 orders."""
        result = BuildResult(requests=[])
        records: dict[int, dict[str, Any]] = {}
        for event in events:
            if event.name == "consent_change":
                path, body, why = consent_request(event)
                if body is None:
                    result.skipped[event.id] = why
                else:
                    result.requests.append(self._request("POST", path, [event.id], body))
                continue
            if event.name not in ORDER_STATUS:
                result.skipped[event.id] = NOT_TAKEN.get(event.name, f"eSputnik does not take {event.name}")
                continue
            record = order_record(event)
            if record is None:
                result.skipped[event.id] = "no customer id, email or phone for externalCustomerId"
            else:
                records[event.id] = record
        in_order = sorted((e for e in events if e.id in records),
                          key=lambda e: (e.occurred_at, STATE_RANK[e.name], e.id))
        latest = collapse_latest(in_order, lambda event: records[event.id]["externalOrderId"])
        for chunk in chunked(latest, ORDERS_PER_REQUEST):
            ids = [event_id for _, chain in chunk for event_id in chain]
            body = {"orders": [records[event.id] for event, _ in chunk]}
            result.requests.append(self._request("POST", "/api/v1/orders", ids, body))
        return result

    def classify(self, status: int | None, headers: dict[str, str], body: bytes,
                 error: str | None = None) -> Classification:
        return classify_with_platform_message(status, headers, body, error)

    def test_request(self) -> PreparedRequest:
        return self._request("GET", "/api/v1/account/info", [])
