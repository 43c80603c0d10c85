"""Field types of the canonical input (money, ids, text, emails, phones, currencies, statuses, quantities,
timestamps), each with the JSON schema it validates exactly (the OpenAPI document is generated from them).

- money is a JSON number (int or float, never a string or a bool), >= 0, held as `Decimal` built from
  `str(float)` so 29.98 stays 29.98; more than 4 decimal places are rounded (the column is Numeric(16, 4));
- timestamps must carry a UTC offset and are converted to UTC;
- emails are trimmed and lower-cased as a whole (platforms and contact matching treat them
  case-insensitively); blank email/phone strings count as absent.
"""

import functools
import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any, Literal, get_args

import email_validator
import pydantic
from pydantic import AwareDatetime, BeforeValidator, Field, PlainSerializer
from pydantic_core import PydanticCustomError

from webapp.schemas.json_types import BLANK, NOT_BLANK, PY_SPACE

OrderStatus = Literal["pending", "placed", "fulfilled", "cancelled", "refunded", "partially_refunded"]
ORDER_STATUSES: tuple[str, ...] = get_args(OrderStatus)

# Money columns are Numeric(16, 4): twelve digits before the point, four after.
_MONEY_LIMIT = Decimal("1000000000000")
_MONEY_STEP = Decimal("0.0001")
_ISO_DATE_START = re.compile(r"^\d{4}-\d{2}-\d{2}")


def fail(kind: str, message: str) -> PydanticCustomError:
    """A validation error whose message is already written for the store's developer (no placeholders)."""
    return PydanticCustomError(kind, message)


def check_money_range(amount: Decimal) -> Decimal:
    if not amount.is_finite():
        raise fail("money_value", "must be a finite number")
    if amount < 0:
        raise fail("money_value", "must not be negative")
    if amount >= _MONEY_LIMIT:
        raise fail("money_value", f"must be less than {_MONEY_LIMIT}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        amount = amount.quantize(_MONEY_STEP, rounding=ROUND_HALF_EVEN)
    return amount


def _money(value: Any) -> Decimal:
    if isinstance(value, str):
        raise fail("money_type", "must be a number (money is a JSON number, not a string)")
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise fail("money_type", "must be a number")
    # str(float) is the shortest text that round-trips, so 29.98 becomes Decimal("29.98"), not 29.979999...
    amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    return check_money_range(amount)


def identifier(value: Any) -> Any:
    """Ids may arrive as JSON numbers from stores with integer keys; we always handle them as text."""
    value = _whole_number_text(value)
    if not isinstance(value, str):
        return value  # the str schema reports "must be a string"
    value = value.strip()
    if not value:
        raise fail("text_empty", "must not be empty")
    if len(value) > 255:
        raise fail("text_too_long", "must be at most 255 characters")
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


def item_name(value: Any) -> Any:
    value = _text(value)
    if isinstance(value, str) and not value.strip():
        raise fail("text_empty", "must not be empty")
    return value


def _blank_to_none(value: Any) -> str | None:
    """Stores often send "" for a missing email or phone; that means absent, not invalid."""
    value = _whole_number_text(value)
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail("text_type", "must be a string")
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
        raise fail("email", f"not a valid email address: {exc}") from None
    return checked.normalized.lower()


def _phone(value: Any) -> str | None:
    value = _blank_to_none(value)
    if value is not None and len(value) > 40:
        raise fail("phone", "must be at most 40 characters")
    return value


def _currency(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value.strip()):
        raise fail("currency", "must be a 3-letter ISO 4217 currency code, e.g. USD")
    return value.strip().upper()


def _status(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _quantity(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail("quantity", "must be a whole number")
    return value


def _timestamp_input(value: Any) -> Any:
    """Only ISO 8601 text (or a datetime from Python callers); pydantic would also take epoch numbers."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE_START.match(value.strip()):
        return value.strip()
    raise fail("timestamp", "must be an ISO 8601 timestamp, e.g. 2026-11-20T10:15:00Z")


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise fail("timestamp", "timestamp is out of range") from None


def json_money(amount: Decimal) -> int | float:
    """Whole amounts as ints (29, not 29.0); the rest as the nearest float, which prints as given."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _json_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# JSON schemas of the types above, exactly as they validate (the OpenAPI document is generated from them).
_ID_TEXT = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": NOT_BLANK}
ID_SCHEMA = {"anyOf": [_ID_TEXT, {"type": "integer", "minimum": -(10**254 - 1), "maximum": 10**255 - 1}],
              "description": "Text (trimmed, 1-255 characters) or a whole number"}
# email_validator refuses special-use domains (RFC 6761: .test, .local, ...) that the `email` format allows.
_SPECIAL_USE = "|".join("".join(f"[{c}{c.upper()}]" for c in name)
                        for name in email_validator.SPECIAL_USE_DOMAIN_NAMES)
EMAIL_TEXT = {"type": "string", "format": "email", "pattern": rf"^(?![\s\S]*\.({_SPECIAL_USE})$)"}
_EMAIL_SCHEMA = {"anyOf": [EMAIL_TEXT, {"type": "string", "pattern": BLANK},
                           {"type": "null"}], "description": "An email address (blank or null: none)"}
PHONE_TEXT = {"type": "string", "maxLength": 40, "pattern": NOT_BLANK}
_PHONE_SCHEMA = {"anyOf": [PHONE_TEXT, {"type": "string", "pattern": BLANK},
                           {"type": "integer", "minimum": -(10**39 - 1), "maximum": 10**40 - 1}, {"type": "null"}],
                 "description": "A phone number, E.164 preferred (blank or null: none)"}
_TEXT_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "number"}]}

Money = Annotated[Decimal, BeforeValidator(_money), PlainSerializer(json_money, when_used="json"),
                  pydantic.WithJsonSchema({"type": "number", "minimum": 0, "exclusiveMaximum": 10**12})]
Identifier = Annotated[str, BeforeValidator(identifier), pydantic.WithJsonSchema(ID_SCHEMA)]
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
