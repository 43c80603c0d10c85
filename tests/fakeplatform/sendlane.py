"""Fake Sendlane API v2 (served under /sendlane): bearer token, integration token, Laravel-style 422s.

Required fields per tracking path come from Sendlane's own OpenAPI export
(reference/platforms.md §6). Types are checked strictly (JSON numbers, not numeric
strings), which is stricter than Sendlane may be but catches adapter bugs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from tests.fakeplatform.records import NOT_JSON, Incoming, Reply

if TYPE_CHECKING:
    from tests.fakeplatform.server import FakePlatform

KIND = "sendlane"
REQUIRED = {
    "order-placed": ("token", "order_id"),
    "customer-added": ("token", "customer_id"),
    "product-added": ("token", "product_id", "product_url", "image_url"),
    "product-viewed": ("token",),
    "added-to-cart": ("token",),
    "checkout-started": ("token", "checkout_id"),
    "category-added": ("token", "category_id", "name"),
}
IDS = ("order_id", "customer_id", "product_id", "checkout_id", "variant_id")
NUMBERS = ("subtotal", "total", "total_tax", "item_price", "compare_at_price", "price", "value", "inventory_level")
INTEGERS = ("time", "total_items")
BOOLEANS = ("accepts_marketing", "initial_sync", "email_consent", "sms_consent")
STRINGS = ("token", "email", "phone", "currency", "status", "product_url", "image_url", "checkout_url",
           "product_name", "sku", "brand", "date_created", "category_id", "parent_id", "name")
OBJECT_LISTS = {"line_items": ("product_id",), "tax_lines": ("name",), "discounts": ("code",), "variants": ("id",)}
OBJECTS = ("billing_address", "shipping_address")


def error_reply(status: int, detail: str, errors: dict[str, list[str]] | None = None) -> Reply:
    body: dict[str, Any] = {"message": detail}
    if errors is not None:
        body["errors"] = errors
    return Reply.json(status, body)


def throttled_reply(retry_after: float) -> Reply:
    reply = error_reply(429, "Too Many Attempts.")
    reply.headers["Retry-After"] = str(math.ceil(retry_after))
    return reply


def unauthorized_reply() -> Reply:
    return error_reply(401, "Unauthenticated.")


def handle(request: Incoming, fake: FakePlatform) -> Reply:
    if fake.faults.auth_broken(KIND) or request.headers.get("authorization") != f"Bearer {fake.sendlane_token}":
        return unauthorized_reply()
    if request.path == "/integrations/custom" and request.method == "GET":
        integration = {"token": fake.sendlane_integration_token, "name": "Fake Store",
                       "url": "https://shop.example", "type": "custom"}
        return Reply.json(200, {"data": [integration]})
    kind = request.path.removeprefix("/tracking/")
    if kind not in REQUIRED or not request.path.startswith("/tracking/"):
        return error_reply(404, f"{request.path} not found.")
    if request.method != "POST":
        return error_reply(405, f"The {request.method} method is not supported for this route.")
    body = request.json()
    if body is NOT_JSON or not isinstance(body, dict):
        return error_reply(400, "The request body must be a JSON object.")
    errors = validation_errors(body, REQUIRED[kind])
    if errors:
        return error_reply(422, next(iter(errors.values()))[0], errors)
    if body["token"] != fake.sendlane_integration_token:
        return error_reply(401, "Invalid integration token.")
    with fake.lock:
        fake.sendlane_tracked.setdefault(kind, []).append(body)
        if kind == "order-placed":
            fake.upsert_order(fake.sendlane_orders, str(body["order_id"]), body)
    return Reply.json(200, {"data": {"status": "success", "event": kind}})


def validation_errors(body: dict[str, Any], required: tuple[str, ...], prefix: str = "") -> dict[str, list[str]]:
    """Laravel-style {"field.path": ["message"]} for missing or mistyped fields."""
    errors: dict[str, list[str]] = {}
    for name in required:
        if body.get(name) in (None, ""):
            errors[prefix + name] = [f"The {prefix}{name} field is required."]
    for name, value in body.items():
        if value is None or prefix + name in errors:
            continue
        problem = _type_problem(name, value)
        if problem:
            errors[prefix + name] = [f"The {prefix}{name} {problem}."]
        elif name in OBJECT_LISTS:
            for index, item in enumerate(value):
                path = f"{prefix}{name}.{index}."
                if not isinstance(item, dict):
                    errors[path[:-1]] = [f"The {path[:-1]} must be an object."]
                else:
                    errors.update(validation_errors(item, OBJECT_LISTS[name], path))
    return errors


def _type_problem(name: str, value: Any) -> str | None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if name in IDS and not (isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))):
        return "must be a string or an integer"
    if name in NUMBERS and not number:
        return "must be a number"
    if name in INTEGERS and not (isinstance(value, int) and not isinstance(value, bool)):
        return "must be an integer"
    if name == "quantity" and not number:
        return "must be a number"
    if name in BOOLEANS and not isinstance(value, bool):
        return "field must be true or false"
    if name in STRINGS and not isinstance(value, str):
        return "must be a string"
    if name in OBJECT_LISTS and not isinstance(value, list):
        return "must be an array"
    if name == "categories" and not (isinstance(value, list) and all(isinstance(c, str) for c in value)):
        return "must be an array of strings"
    if name in OBJECTS and not isinstance(value, dict):
        return "must be an object"
    return None
