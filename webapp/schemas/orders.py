"""The canonical order the store sends to `POST /api/v1/orders`, validated strictly enough to trust.

Field names mirror DESIGN.md's canonical order exactly. Choices worth knowing:
- money is a JSON number (int or float, never a string or a bool), >= 0, held as `Decimal` built from
  `str(float)` so 29.98 stays 29.98; more than 4 decimal places are rounded (the column is Numeric(16, 4));
- timestamps must carry a UTC offset and are converted to UTC;
- emails are trimmed and lower-cased as a whole (platforms and contact matching treat them
  case-insensitively); blank email/phone strings count as absent;
- unknown fields are ignored, so stores can send more than we read today.
"""

import functools
import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any, Literal, get_args

import email_validator
import pydantic
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer
from pydantic_core import PydanticCustomError

from webapp.schemas.errors import ApiError, error_list, problem
from webapp.schemas.json_types import BLANK, NOT_BLANK, PY_SPACE

MAX_ORDERS_PER_REQUEST = 1000
OrderStatus = Literal["pending", "placed", "fulfilled", "cancelled", "refunded", "partially_refunded"]
ORDER_STATUSES: tuple[str, ...] = get_args(OrderStatus)

# Money columns are Numeric(16, 4): twelve digits before the point, four after.
_MONEY_LIMIT = Decimal("1000000000000")
_MONEY_STEP = Decimal("0.0001")
_ISO_DATE_START = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _fail(kind: str, message: str) -> PydanticCustomError:
    """A validation error whose message is already written for the store's developer (no placeholders)."""
    return PydanticCustomError(kind, message)


def _check_money_range(amount: Decimal) -> Decimal:
    if not amount.is_finite():
        raise _fail("money_value", "must be a finite number")
    if amount < 0:
        raise _fail("money_value", "must not be negative")
    if amount >= _MONEY_LIMIT:
        raise _fail("money_value", f"must be less than {_MONEY_LIMIT}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        amount = amount.quantize(_MONEY_STEP, rounding=ROUND_HALF_EVEN)
    return amount


def _money(value: Any) -> Decimal:
    if isinstance(value, str):
        raise _fail("money_type", "must be a number (money is a JSON number, not a string)")
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise _fail("money_type", "must be a number")
    # str(float) is the shortest text that round-trips, so 29.98 becomes Decimal("29.98"), not 29.979999...
    amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    return _check_money_range(amount)


def _identifier(value: Any) -> Any:
    """Ids may arrive as JSON numbers from stores with integer keys; we always handle them as text."""
    value = _whole_number_text(value)
    if not isinstance(value, str):
        return value  # the str schema reports "must be a string"
    value = value.strip()
    if not value:
        raise _fail("text_empty", "must not be empty")
    if len(value) > 255:
        raise _fail("text_too_long", "must be at most 255 characters")
    return value


def _whole_number_text(value: Any) -> Any:
    """A JSON whole number as its digits: 30 and 30.0 are the same number in JSON (and in JSON Schema)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _text(value: Any) -> Any:
    """Free text; numbers are accepted because zip codes and phones often arrive as JSON numbers."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _name(value: Any) -> Any:
    value = _text(value)
    if isinstance(value, str) and not value.strip():
        raise _fail("text_empty", "must not be empty")
    return value


def _blank_to_none(value: Any) -> str | None:
    """Stores often send "" for a missing email or phone; that means absent, not invalid."""
    value = _whole_number_text(value)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail("text_type", "must be a string")
    return value.strip() or None


def _email(value: Any) -> str | None:
    value = _blank_to_none(value)
    if value is None:
        return None
    return _normalised_email(value)


@functools.lru_cache(maxsize=65536)
def _normalised_email(value: str) -> str:
    """Cached: repeat customers send the same address again and again, and the check is pure but costly
    (~20 µs, a fifth of an order's validation). Invalid addresses raise, and exceptions are not cached."""
    try:
        checked = email_validator.validate_email(value, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise _fail("email", f"not a valid email address: {exc}") from None
    return checked.normalized.lower()


def _phone(value: Any) -> str | None:
    value = _blank_to_none(value)
    if value is not None and len(value) > 40:
        raise _fail("phone", "must be at most 40 characters")
    return value


def _currency(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value.strip()):
        raise _fail("currency", "must be a 3-letter ISO 4217 currency code, e.g. USD")
    return value.strip().upper()


def _status(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _quantity(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail("quantity", "must be a whole number")
    return value


def _timestamp_input(value: Any) -> Any:
    """Only ISO 8601 text (or a datetime from Python callers); pydantic would also take epoch numbers."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE_START.match(value.strip()):
        return value.strip()
    raise _fail("timestamp", "must be an ISO 8601 timestamp, e.g. 2026-11-20T10:15:00Z")


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise _fail("timestamp", "timestamp is out of range") from None


def _json_money(amount: Decimal) -> int | float:
    """Whole amounts as ints (29, not 29.0); the rest as the nearest float, which prints as given."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _json_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# JSON schemas of the types above, exactly as they validate (the OpenAPI document is generated from them).
_ID_TEXT = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": NOT_BLANK}
_ID_SCHEMA = {"anyOf": [_ID_TEXT, {"type": "integer", "minimum": -(10**254 - 1), "maximum": 10**255 - 1}],
              "description": "Text (trimmed, 1-255 characters) or a whole number"}
# email_validator refuses special-use domains (RFC 6761: .test, .local, ...) that the `email` format allows.
_SPECIAL_USE = "|".join("".join(f"[{c}{c.upper()}]" for c in name)
                        for name in email_validator.SPECIAL_USE_DOMAIN_NAMES)
EMAIL_TEXT = {"type": "string", "format": "email", "pattern": rf"^(?![\s\S]*\.({_SPECIAL_USE})$)"}
_EMAIL_SCHEMA = {"anyOf": [EMAIL_TEXT, {"type": "string", "pattern": BLANK},
                           {"type": "null"}], "description": "An email address (blank or null: none)"}
_PHONE_TEXT = {"type": "string", "maxLength": 40, "pattern": NOT_BLANK}
_PHONE_SCHEMA = {"anyOf": [_PHONE_TEXT, {"type": "string", "pattern": BLANK},
                           {"type": "integer", "minimum": -(10**39 - 1), "maximum": 10**40 - 1}, {"type": "null"}],
                 "description": "A phone number, E.164 preferred (blank or null: none)"}
_TEXT_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "number"}]}

Money = Annotated[Decimal, BeforeValidator(_money), PlainSerializer(_json_money, when_used="json"),
                  pydantic.WithJsonSchema({"type": "number", "minimum": 0, "exclusiveMaximum": 10**12})]
Identifier = Annotated[str, BeforeValidator(_identifier), pydantic.WithJsonSchema(_ID_SCHEMA)]
Text = Annotated[str, BeforeValidator(_text), pydantic.WithJsonSchema(_TEXT_SCHEMA)]
Email = Annotated[str | None, BeforeValidator(_email), pydantic.WithJsonSchema(_EMAIL_SCHEMA)]
Phone = Annotated[str | None, BeforeValidator(_phone), pydantic.WithJsonSchema(_PHONE_SCHEMA)]
Currency = Annotated[str, BeforeValidator(_currency),
                     pydantic.WithJsonSchema({"type": "string", "pattern": f"^[{PY_SPACE}]*[A-Za-z]{{3}}[{PY_SPACE}]*$",
                                              "description": "ISO 4217, e.g. USD (any case)"})]
Status = Annotated[OrderStatus, BeforeValidator(_status)]
Quantity = Annotated[int, BeforeValidator(_quantity), Field(gt=0, le=2_147_483_647),
                     pydantic.WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 2_147_483_647})]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_timestamp_input), pydantic.AfterValidator(_to_utc),
                      PlainSerializer(_json_timestamp, when_used="json"),
                      pydantic.WithJsonSchema({"type": "string", "format": "date-time"})]
Consent = Annotated[bool, pydantic.Strict()]
# Who the order belongs to: at least one of id, email, phone (see Customer._reachable).
_REACHABLE = {"anyOf": [{"required": ["id"], "properties": {"id": _ID_SCHEMA}},
                        {"required": ["email"], "properties": {"email": EMAIL_TEXT}},
                        {"required": ["phone"], "properties": {"phone": {"anyOf": [
                            _PHONE_TEXT, {"type": "integer", "minimum": -(10**39 - 1), "maximum": 10**40 - 1}]}}}]}
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
            raise _fail("customer_contact", "needs at least one of email, phone or id")
        return self


class Discount(_Canonical):
    code: Text | None = None
    value: Money | None = None


class OrderItem(_Canonical):
    product_id: Identifier | None = None
    sku: Identifier | None = None
    name: Annotated[str, BeforeValidator(_name), pydantic.WithJsonSchema(_ITEM_NAME)]
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
                self.total = _check_money_range(self.price * self.quantity)
            except PydanticCustomError:
                raise _fail("line_total", "price × quantity is too large") from None
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
                raise _fail("refunded_amount", "required when status is partially_refunded")
            return total if status == "refunded" else None
        if status == "partially_refunded" and value == 0:
            raise _fail("refunded_amount", "must be greater than 0 when status is partially_refunded")
        if total is not None and value > total:
            raise _fail("refunded_amount", f"must not exceed the order total ({_json_money(total)})")
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
            order_id = _identifier(raw.get("id")) if isinstance(raw, dict) else None
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
