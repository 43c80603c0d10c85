"""Fake eSputnik / Yespo (served under /esputnik): basic auth, Add orders with upsert by externalOrderId.

Rules from reference/platforms.md §7. One bad order fails the whole request and
nothing from it is stored, so a test sees a rejection rather than a partial import.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from tests.fakeplatform.records import NOT_JSON, Incoming, Reply

if TYPE_CHECKING:
    from tests.fakeplatform.server import FakePlatform

KIND = "esputnik"
MAX_ORDERS = 1000
STATUSES = {"INITIALIZED", "IN_PROGRESS", "DELIVERED", "CANCELLED", "ABANDONED_SHOPPING_CART"}
CURRENCY = re.compile(r"^[A-Z]{3}$")
ORDER_STRINGS = ("externalOrderId", "externalCustomerId")
ITEM_STRINGS = ("externalItemId", "name", "url", "imageUrl")
CONTACT_PATHS = ("/api/v1/contact", "/api/v1/emails/unsubscribed")
CHANNEL_TYPES = {"email", "sms", "mobilepush", "webpush", "viber", "telegram"}
CONTACT_FIELDS = {"channels", "firstName", "lastName", "externalCustomerId", "address", "fields", "groups"}
PHONE = re.compile(r"^\+?\d{7,15}$")


def error_reply(status: int, detail: str) -> Reply:
    """eSputnik is a Java service; errors come back as a small JSON object with the reason."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return Reply.json(status, {"status": status, "error": reason, "message": detail})


def throttled_reply(retry_after: float) -> Reply:
    reply = error_reply(429, "Too many requests.")
    reply.headers["Retry-After"] = str(math.ceil(retry_after))
    return reply


def unauthorized_reply() -> Reply:
    reply = error_reply(401, "Bad credentials.")
    reply.headers["WWW-Authenticate"] = 'Basic realm="esputnik"'
    return reply


def handle(request: Incoming, fake: FakePlatform) -> Reply:
    if fake.faults.auth_broken(KIND) or _password(request.headers.get("authorization", "")) != fake.esputnik_key:
        return unauthorized_reply()
    if request.path == "/api/v1/account/info" and request.method == "GET":
        return Reply.json(200, {"userEmail": "shop@example.com", "organisationName": "Fake Store"})
    if request.path in CONTACT_PATHS:
        return _contacts(request, fake)
    if request.path != "/api/v1/orders":
        return error_reply(404, f"{request.path} not found.")
    if request.method != "POST":
        return error_reply(405, f"Request method '{request.method}' not supported.")
    body = request.json()
    if body is NOT_JSON or not isinstance(body, dict) or not isinstance(body.get("orders"), list):
        return error_reply(400, 'The body must be a JSON object {"orders": [...]}.')
    orders = body["orders"]
    if not orders or len(orders) > MAX_ORDERS:
        return error_reply(400, f"Send 1 to {MAX_ORDERS} orders per request; got {len(orders)}.")
    for index, order in enumerate(orders):
        problem = order_problem(order)
        if problem:
            return error_reply(400, f"orders[{index}]: {problem}")
    with fake.lock:
        for order in orders:
            fake.upsert_order(fake.esputnik_orders, str(order["externalOrderId"]), order)
    return Reply.json(200, {})


def _contacts(request: Incoming, fake: FakePlatform) -> Reply:
    """`POST /api/v1/contact` (add or update one contact by its channels) and `POST /api/v1/emails/unsubscribed`."""
    if request.method != "POST":
        return error_reply(405, f"Request method '{request.method}' not supported.")
    body = request.json()
    if body is NOT_JSON or not isinstance(body, dict):
        return error_reply(400, "The body must be a JSON object.")
    if request.path == "/api/v1/emails/unsubscribed":
        emails = body.get("emails")
        if not isinstance(emails, list) or not emails or not all(isinstance(e, str) and "@" in e for e in emails):
            return error_reply(400, 'The body must be {"emails": ["address", ...]}.')
        with fake.lock:
            fake.esputnik_unsubscribed.extend(emails)
        return Reply.json(200, {})
    channels = body.get("channels")
    if not isinstance(channels, list) or not channels:
        return error_reply(400, "channels is required: [{\"type\": \"email\"|\"sms\", \"value\": ...}]")
    for index, channel in enumerate(channels):
        if not isinstance(channel, dict) or channel.get("type") not in CHANNEL_TYPES:
            return error_reply(400, f"channels[{index}].type must be one of {sorted(CHANNEL_TYPES)}")
        if not isinstance(channel.get("value"), str) or not channel["value"]:
            return error_reply(400, f"channels[{index}].value is required")
        if channel["type"] == "sms" and not PHONE.match(channel["value"]):
            return error_reply(400, f"channels[{index}].value is not a phone number: {channel['value']!r}")
    unknown = sorted(set(body) - CONTACT_FIELDS)
    if unknown:
        return error_reply(400, f"Unrecognized field {unknown[0]!r}")
    with fake.lock:
        for channel in channels:
            fake.esputnik_contacts[f"{channel['type']}:{channel['value']}"] = body
    return Reply.json(200, {"id": len(fake.esputnik_contacts)})


def _password(header: str) -> str | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


def order_problem(order: Any) -> str | None:
    """What is wrong with one order, or None."""
    if not isinstance(order, dict):
        return "must be an object"
    for name in ORDER_STRINGS:
        if not isinstance(order.get(name), str) or not order[name]:
            return f"{name} is required and must be a non-empty string"
    if not _is_number(order.get("totalCost")):
        return "totalCost is required and must be a number"
    if order.get("status") not in STATUSES:
        return f"status must be one of {sorted(STATUSES)}, got {order.get('status')!r}"
    if not _is_iso_datetime(order.get("date")):
        return f"date must be an ISO-8601 date-time, got {order.get('date')!r}"
    if not isinstance(order.get("currency"), str) or not CURRENCY.match(order["currency"]):
        return f"currency must be a 3-letter ISO 4217 code, got {order.get('currency')!r}"
    items = order.get("items")
    if items is None:
        return None
    if not isinstance(items, list):
        return "items must be an array"
    for index, item in enumerate(items):
        problem = _item_problem(item)
        if problem:
            return f"items[{index}]: {problem}"
    return None


def _item_problem(item: Any) -> str | None:
    if not isinstance(item, dict):
        return "must be an object"
    for name in ITEM_STRINGS:
        if not isinstance(item.get(name), str) or not item[name]:
            return f"{name} is required and must be a non-empty string"
    for name in ("quantity", "cost"):
        if not _is_number(item.get(name)):
            return f"{name} is required and must be a number"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_iso_datetime(value: Any) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True
