"""Field types and JSON-schema pieces the request models share, so the OpenAPI document states exactly what
the API checks (Schemathesis holds us to it both ways: what the document allows is accepted, what it forbids
is refused).

JSON bodies are typed exactly (`true`, not `1` or `"yes"`); dashboard forms send text that the same models
convert. `webapp.api.common.validate` asks for the exact reading through the validation context.
"""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Annotated, Any, Union

from pydantic import BeforeValidator, Field, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from webapp.converters import MAX_ID

EXACT_JSON = {"exact_json": True}
HEADER_SAFE = r"^[!-~]+$"  # credentials sent in HTTP headers: visible ASCII, no spaces  # the validation context of API bodies
# Python's white space (what str.strip() removes), spelled out: `\s` differs between Python and the ECMA-262
# regexes of JSON Schema (\x1c-\x1f and \x85 are space only to Python, \ufeff only to ECMA).
PY_SPACE = "".join(sorted({f"\\u{code:04x}" for code in range(0x10000) if chr(code).isspace()}))
NOT_BLANK = f"[^{PY_SPACE}]"  # at least one character that is not white space (stripped, must not be empty)
BLANK = f"^[{PY_SPACE}]*$"
HOST = r"[a-z]([a-z0-9-]{0,30}[a-z0-9])?(\.[a-z]([a-z0-9-]{0,30}[a-z0-9])?){0,3}\.[a-z]{2,12}"
HTTP_URL = rf"^https?://{HOST}(/[A-Za-z0-9._~-]*)*$"
HTTP_URL_TEXT = ("an http:// or https:// URL with a host name (addresses inside a network are refused unless "
                 "SHOPRELAY_ALLOW_PRIVATE_URLS allows them)")


def _exact(kind: str) -> Any:
    def check(value: Any, info: ValidationInfo) -> Any:
        if not (info.context or {}).get("exact_json") or value is None:
            return value
        if kind == "boolean" and not isinstance(value, bool):
            raise PydanticCustomError("bool_type", "must be true or false")
        if kind == "integer" and (isinstance(value, bool) or not (
                isinstance(value, int) or (isinstance(value, float) and value.is_integer()))):
            raise PydanticCustomError("int_type", "must be a whole number")
        if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise PydanticCustomError("float_type", "must be a number")
        return value
    return BeforeValidator(check)


EXACT_BOOLEAN, EXACT_INTEGER, EXACT_NUMBER = _exact("boolean"), _exact("integer"), _exact("number")
JsonBool = Annotated[bool, EXACT_BOOLEAN]
DatabaseId = Annotated[int, Field(ge=1, le=MAX_ID), EXACT_INTEGER]
Share = Annotated[float, Field(ge=0, le=1), EXACT_NUMBER]  # a part of a whole, 0-1


@cache
def time_zones() -> list[str]:
    """Every IANA name this machine knows (what `ZoneInfo` accepts)."""
    return sorted(zoneinfo.available_timezones())


@cache
def time_zone_schema() -> dict[str, Any]:
    """A name of the IANA time zone database: the ~600 names as one anchored alternation rather than an enum,
    which tools expand value by value (Schemathesis' coverage phase would send each one twice)."""
    names = "|".join(name.replace("+", r"\+") for name in time_zones())
    return {"type": "string", "pattern": f"^({names})$",
            "description": "An IANA time zone name, e.g. UTC, Europe/Berlin, America/New_York"}


# Minute, hour, day (1-28: every month has it), month, weekday; each `*` or a number, with an optional step.
CRON_FIELDS = (r"[1-5]?[0-9]", r"1?[0-9]|2[0-3]", r"[1-9]|1[0-9]|2[0-8]", r"[1-9]|1[0-2]", r"[0-6]")
CRON = "^" + " ".join(rf"(\*|{field})(/[1-9])?" for field in CRON_FIELDS) + "$"
Cron = Annotated[str, WithJsonSchema({"type": "string", "pattern": CRON, "description": (
    "A cron expression (minute hour day month weekday), e.g. \"0 2 * * *\" for 02:00 every night; ranges and "
    "lists (1-5, 1,15) are accepted too.")})]


# Free-form JSON the API stores (source options, destination settings, product extras): numbers within 64 bits,
# the range the JSON reader of stored columns (orjson) and the product fingerprint take.
INT64 = Field(ge=-(2**63), le=2**63 - 1)
JSON_NUMBER = {"type": "number", "minimum": -(2**63), "maximum": 2**63 - 1}
JsonValue = TypeAliasType("JsonValue", Union[str, bool, None, Annotated[int, INT64], Annotated[float, INT64],  # noqa: UP007
                                             list["JsonValue"], dict[str, "JsonValue"]])


def bounded_json(value: Any) -> Any:
    """`value` when every number in it is within 64 bits (checked first, for one clear message)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int | float) and not isinstance(item, bool) and not (
                JSON_NUMBER["minimum"] <= item <= JSON_NUMBER["maximum"]):
            raise PydanticCustomError("json_number_range", "numbers must be within ±9223372036854775807")
    return value


JsonObject = Annotated[dict[str, JsonValue], BeforeValidator(bounded_json)]
