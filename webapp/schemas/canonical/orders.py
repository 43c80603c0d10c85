"""The canonical order the store sends to `POST /api/v1/orders`, validated strictly enough to trust.

Field names mirror DESIGN.md's canonical order exactly. Choices worth knowing:
- money is a JSON number (int or float, never a string or a bool), >= 0, held as `Decimal` built from
  `str(float)` so 29.98 stays 29.98; more than 4 decimal places are rounded (the column is Numeric(16, 4));
- timestamps must carry a UTC offset and are converted to UTC;
- emails are trimmed and lower-cased as a whole (platforms and contact matching treat them
  case-insensitively); blank email/phone strings count as absent;
- unknown fields are ignored, so stores can send more than we read today.
"""
from decimal import Decimal
from typing import Annotated, Any

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from webapp.schemas.canonical.fields import (  # noqa: F401 - field types other models import from here too
    EMAIL_TEXT,
    ID_SCHEMA,
    ORDER_STATUSES,
    PHONE_TEXT,
    Consent,
    Currency,
    Email,
    Identifier,
    Money,
    Phone,
    Quantity,
    Status,
    Text,
    Timestamp,
    check_money_range,
    fail,
    identifier,
    item_name,
    json_money,
)
from webapp.schemas.errors import ApiError, error_list, problem
from webapp.schemas.json_types import NOT_BLANK

MAX_ORDERS_PER_REQUEST = 1000


# Who the order belongs to: at least one of id, email, phone (see Customer._reachable).
_REACHABLE = {"anyOf": [{"required": ["id"], "properties": {"id": ID_SCHEMA}},
                        {"required": ["email"], "properties": {"email": EMAIL_TEXT}},
                        {"required": ["phone"], "properties": {"phone": {"anyOf": [
                            PHONE_TEXT, {"type": "integer", "minimum": -(10**39 - 1), "maximum": 10**40 - 1}]}}}]}
_ITEM_NAME = {"anyOf": [{"type": "string", "pattern": NOT_BLANK}, {"type": "number"}]}
# A partial refund names its amount (> 0); that it does not exceed the total is checked too (JSON Schema
# cannot compare two fields; the field's description says it).
_REFUND_RULES = {"if": {"required": ["status"], "properties": {"status": {"const": "partially_refunded"}}},
                 "then": {"required": ["refunded_amount"], "properties": {"refunded_amount": {
                     "type": "number", "exclusiveMinimum": 0}}}}


class _Canonical(BaseModel):
    # Unknown fields are ignored for forward compatibility: stores may send more than we read today.
    model_config = ConfigDict(extra="ignore")


class Address(_Canonical):
    first_name: Text | None = None
    last_name: Text | None = None
    company: Text | None = None
    address1: Text | None = None
    address2: Text | None = None
    city: Text | None = None
    region: Text | None = None
    region_code: Text | None = None
    country: Text | None = None
    country_code: Text | None = None
    zip: Text | None = None
    phone: Text | None = None


class Customer(_Canonical):
    model_config = ConfigDict(extra="ignore", json_schema_extra=_REACHABLE)

    id: Identifier | None = None
    email: Email = None
    phone: Phone = None
    first_name: Text | None = None
    last_name: Text | None = None
    accepts_marketing: Consent | None = Field(
        default=None, description="Email marketing consent: true, false, or absent = unknown (left untouched)")
    accepts_sms_marketing: Consent | None = Field(
        default=None, description="SMS marketing consent for `phone`: true, false, or absent = unknown "
                                  "(left untouched)")

    @pydantic.model_validator(mode="after")
    def _reachable(self) -> "Customer":
        """Without any of these the order cannot be tied to a contact on any platform."""
        if not (self.id or self.email or self.phone):
            raise fail("customer_contact", "needs at least one of email, phone or id")
        return self


class Discount(_Canonical):
    code: Text | None = None
    value: Money | None = None


class OrderItem(_Canonical):
    product_id: Identifier | None = None
    sku: Identifier | None = None
    name: Annotated[str, BeforeValidator(item_name), pydantic.WithJsonSchema(_ITEM_NAME)]
    quantity: Quantity
    price: Money
    total: Money | None = Field(default=None, description="defaults to price × quantity (which must then be "
                                                          "below 10^12)")
    url: Text | None = None
    image_url: Text | None = None
    categories: list[Text] = Field(default_factory=list)
    brand: Text | None = None

    @pydantic.model_validator(mode="after")
    def _default_total(self) -> "OrderItem":
        if self.total is None:
            try:
                self.total = check_money_range(self.price * self.quantity)
            except PydanticCustomError:
                raise fail("line_total", "price × quantity is too large") from None
        return self


class CanonicalOrder(_Canonical):
    model_config = ConfigDict(extra="ignore", json_schema_extra=_REFUND_RULES)

    id: Identifier
    status: Status
    placed_at: Timestamp
    currency: Currency
    total: Money
    subtotal: Money | None = None
    tax: Money | None = None
    shipping: Money | None = None
    discount: Discount | None = None
    customer: Customer
    billing_address: Address | None = None
    shipping_address: Address | None = None
    items: list[OrderItem] = Field(min_length=1)
    fulfilled_at: Timestamp | None = None
    cancelled_at: Timestamp | None = None
    refunded_at: Timestamp | None = None
    refunded_amount: Money | None = Field(
        default=None, validate_default=True,
        description="required for partially_refunded (then > 0); defaults to total for refunded; never more "
                    "than total")
    reason: Text | None = None

    @pydantic.field_validator("refunded_amount")
    @classmethod
    def _refund_rules(cls, value: Decimal | None, info: pydantic.ValidationInfo) -> Decimal | None:
        """Checked here (not in a model validator) so the error's path is `refunded_amount`."""
        status, total = info.data.get("status"), info.data.get("total")
        if value is None:
            if status == "partially_refunded":
                raise fail("refunded_amount", "required when status is partially_refunded")
            return total if status == "refunded" else None
        if status == "partially_refunded" and value == 0:
            raise fail("refunded_amount", "must be greater than 0 when status is partially_refunded")
        if total is not None and value > total:
            raise fail("refunded_amount", f"must not exceed the order total ({json_money(total)})")
        return value


class OrderBatch(_Canonical):
    """`{"orders": [...]}`: the batch form of the ingest body (used for the OpenAPI document)."""

    orders: list[CanonicalOrder] = Field(min_length=1, max_length=MAX_ORDERS_PER_REQUEST)


def parse_orders_payload(data: Any) -> list[CanonicalOrder]:
    """One order or `{"orders": [...]}` → validated orders, or ApiError(422) listing every problem.

    All or nothing: a single bad order fails the whole request, so nothing from it gets stored.
    Paths are bare field paths for a single order and `orders.<i>.` prefixed for a batch.
    """
    if not isinstance(data, dict):
        raise ApiError(422, [problem((), 'the body must be a JSON object: one order, or {"orders": [...]}')])
    if "orders" not in data:
        return _validate_all([data], batch=False)
    orders = data["orders"]
    if not isinstance(orders, list):
        raise ApiError(422, [problem(("orders",), "must be a list of orders")])
    if not orders:
        raise ApiError(422, [problem(("orders",), "must contain at least one order")])
    if len(orders) > MAX_ORDERS_PER_REQUEST:
        raise ApiError(422, [problem(("orders",), f"at most {MAX_ORDERS_PER_REQUEST} orders per request "
                                                  f"({len(orders)} sent)")])
    return _validate_all(orders, batch=True)


def _validate_all(raw_orders: list[Any], batch: bool) -> list[CanonicalOrder]:
    errors: list[dict[str, str]] = []
    orders: list[CanonicalOrder] = []
    for index, raw in enumerate(raw_orders):
        try:
            orders.append(CanonicalOrder.model_validate(raw))
        except pydantic.ValidationError as exc:
            errors.extend(error_list(exc, ("orders", index) if batch else ()))
    if batch:
        errors.extend(_duplicate_ids(raw_orders))
    if errors:
        raise ApiError(422, errors)
    return orders


def _duplicate_ids(raw_orders: list[Any]) -> list[dict[str, str]]:
    """An order id twice in one batch is ambiguous (which state wins?), so it is refused."""
    first_seen: dict[str, int] = {}
    errors = []
    for index, raw in enumerate(raw_orders):
        try:
            order_id = identifier(raw.get("id")) if isinstance(raw, dict) else None
        except PydanticCustomError:
            continue  # already reported as a bad id
        if isinstance(order_id, str) and (seen_at := first_seen.setdefault(order_id, index)) != index:
            errors.append(problem(("orders", index, "id"), f"duplicate order id {order_id!r}: "
                                                           f"orders.{seen_at} and orders.{index} have the same id"))
    return errors


def line_key(item: OrderItem, index: int) -> str:
    """The line's own key: sku, else product id, else its 0-based position in the order."""
    return item.sku or item.product_id or str(index)


def line_keys(items: list[OrderItem]) -> list[str]:
    """Keys for every line, unique within the order ("SKU", "SKU-2", "SKU-3", ...).

    Ordered Product's unique id is order id + line key, so two lines with the same sku must differ.
    """
    seen: set[str] = set()
    keys = []
    for index, item in enumerate(items):
        key = candidate = line_key(item, index)
        suffix = 2
        while candidate in seen:
            candidate = f"{key}-{suffix}"
            suffix += 1
        seen.add(candidate)
        keys.append(candidate)
    return keys


def order_to_canonical_json(order: CanonicalOrder) -> dict[str, Any]:
    """The order as JSON-ready canonical data (what events carry as payload["order"]).

    Money comes out as JSON numbers and timestamps as ISO 8601 in UTC with "Z"; item totals are filled.
    """
    return order.model_dump(mode="json")
