"""eSputnik (Yespo) orders: `POST /api/v1/orders` with up to 1000 orders, upserted by externalOrderId.

eSputnik keeps only an order's current status, so an order appears once per request carrying its
latest state; the events for its earlier states ride in the same request's `event_ids` and are
marked delivered together with it (sending them separately could land out of order and regress
the status, because eSputnik would take whichever arrives last).
"""

from __future__ import annotations

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
}
# Lifecycle order, to pick the latest state when two events of one order share a timestamp.
STATE_RANK = {"abandoned_checkout": 0, "pending_order": 1, "placed_order": 2, "fulfilled_order": 3,
              "cancelled_order": 4}
ORDERS_PER_REQUEST = 1000
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


@register
class EsputnikAdapter(DestinationAdapter):
    kind = "esputnik"
    label = "eSputnik (Yespo)"
    default_base_url = "https://esputnik.com"
    supported_events = frozenset(ORDER_STATUS)
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
