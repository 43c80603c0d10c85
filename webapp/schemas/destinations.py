"""Destination create/update bodies (API and dashboard forms validate through the same models)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from webapp.schemas.json_types import (
    EXACT_INTEGER,
    EXACT_NUMBER,
    HTTP_URL,
    HTTP_URL_TEXT,
    NOT_BLANK,
    PY_SPACE,
    JsonBool,
    JsonObject,
)
from webapp.schemas.urls import http_url_problem

CREDENTIALS_HELP = (
    "Write-only; per kind: klaviyo {api_key: pk_ followed by letters, digits or _}, sendlane {api_token, "
    "integration_token}, esputnik {api_key}, webhook {url, secret} (+ previous_secret while rotating: both sign). "
    "Keys and tokens are visible ASCII without spaces, as the platform issued them. A webhook secret is either "
    "plain text or whsec_<standard base64> (Standard Webhooks); a whsec_ secret that is not valid base64 is refused.")
UPDATE_CREDENTIALS_HELP = (
    "Only the credentials to change (the others are kept; a blank value is refused, not read as \"keep\"). This "
    "body does not carry the kind, so this schema takes every kind's credentials: a value no kind takes (blank, "
    "not text, a name no kind has, a malformed URL or whsec_ secret) is a 422 naming it; one another kind takes "
    "but this destination's kind does not (a name it has no use for, an eSputnik-shaped key on a Klaviyo "
    "destination) is a 409 naming it. " + CREDENTIALS_HELP)

EVENT_NAMES = ("placed_order", "ordered_product", "fulfilled_order", "cancelled_order", "refunded_order",
               "pending_order", "abandoned_checkout", "profile_upsert", "consent_change", "product_upsert",
               "product_delete", "active_on_site", "viewed_product", "added_to_cart", "started_checkout",
               "back_in_stock_subscription", "back_in_stock")
Kind = Literal["klaviyo", "sendlane", "esputnik", "webhook"]

# Credential shapes, one place for the document and the check (webapp.services.delivery.destinations). Each
# pattern is read alike by JSON Schema (ECMA-262) and Python's re; values are stripped before they are checked,
# so white space around them is allowed here too. A url is shaped by HTTP_URL and checked by http_url_problem.
AROUND = f"[{PY_SPACE}]*"
BASE64 = "[A-Za-z0-9+/]"
HEADER_TEXT = "must be visible ASCII characters without spaces (as the platform issued it)"


@dataclass(frozen=True)
class CredentialFormat:
    pattern: str  # anchored; for the document and re.search alike
    text: str     # the pattern in words, the error message


HEADER_VALUE = CredentialFormat(rf"^{AROUND}[!-~]+{AROUND}$", HEADER_TEXT)  # sent in an HTTP header as it is
SECRET_VALUE = CredentialFormat(  # plain text, or whsec_ and standard base64 of at least one byte (Standard Webhooks)
    rf"^{AROUND}((?!whsec_)[^{PY_SPACE}][\s\S]*|whsec_(?={BASE64}{{2}})({BASE64}{{4}})*({BASE64}{{2,3}})?={{0,2}}"
    rf"{AROUND})$",
    "must be plain text, or whsec_ followed by standard base64 (A-Z, a-z, 0-9, +, /, = padding)")
CREDENTIAL_FORMATS: dict[str, CredentialFormat] = {
    "api_key": HEADER_VALUE, "api_token": HEADER_VALUE, "integration_token": HEADER_VALUE,
    "secret": SECRET_VALUE, "previous_secret": SECRET_VALUE}
KIND_CREDENTIAL_FORMATS: dict[tuple[str, str], CredentialFormat] = {  # where a platform documents its own shape
    ("klaviyo", "api_key"): CredentialFormat(
        rf"^{AROUND}pk_[A-Za-z0-9_]+{AROUND}$",
        "must be a Klaviyo private API key: pk_ followed by letters, digits or _ (Klaviyo → Settings → API keys; "
        "the 6-character public key is not it)"),
}
ROTATING = {"secret": "previous_secret"}  # while a secret is rotated, the previous one signs too


def credential_format(kind: str, name: str) -> CredentialFormat | None:
    """The shape `kind` takes for credential `name` (None: a URL, checked by http_url_problem)."""
    return KIND_CREDENTIAL_FORMATS.get((kind, name)) or CREDENTIAL_FORMATS.get(name)


def credential_names() -> dict[str, tuple[str, ...]]:
    """Kind → the credentials it takes: the ones it needs, then the optional ones."""
    from workers.destinations import adapter_classes  # pure adapter metadata, imports nothing from webapp

    return {kind: (*cls.credential_fields, *(ROTATING[name] for name in cls.credential_fields if name in ROTATING))
            for kind, cls in sorted(adapter_classes().items())}


def credential_schema(kind: str, name: str) -> dict[str, Any]:
    found = credential_format(kind, name)
    return {"type": "string", "pattern": found.pattern if found else HTTP_URL}


def credential_problem(kind: str, name: str, value: str) -> str | None:
    """Why `kind` cannot take `value` (stripped, not blank) as credential `name`, or None."""
    found = credential_format(kind, name)
    if found is None:
        return http_url_problem(value)
    return None if re.search(found.pattern, value) else found.text


def update_credentials_schema() -> dict[str, Any]:
    """A PATCH body's credentials: every kind's, as the body does not say which kind it is for."""
    takers: dict[str, list[dict[str, Any]]] = {}
    for kind, names in credential_names().items():
        for name in names:
            schema = credential_schema(kind, name)
            if schema not in takers.setdefault(name, []):
                takers[name].append(schema)
    return {"anyOf": [{"type": "object", "additionalProperties": False, "properties": {
        name: schemas[0] if len(schemas) == 1 else {"anyOf": schemas} for name, schemas in takers.items()}},
        {"type": "null"}], "description": UPDATE_CREDENTIALS_HELP}


Rate = Annotated[float, Field(ge=0), EXACT_NUMBER]
BaseUrl = Annotated[str | None, WithJsonSchema({"anyOf": [
    {"type": "string", "pattern": HTTP_URL}, {"const": ""}, {"type": "null"}],
    "description": f"Override of the platform's address (tests, proxies): {HTTP_URL_TEXT}."})]
Events = Annotated[list[str] | None, WithJsonSchema({"anyOf": [
    {"type": "array", "items": {"enum": list(EVENT_NAMES)}}, {"type": "null"}],
    "description": "Which canonical events go to this destination (null: every event its kind takes)."})]


class RateLimitsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    burst_per_second: Rate | None = None
    per_minute: Rate | None = None
    bulk_burst_per_second: Rate | None = None
    bulk_per_minute: Rate | None = None


def kind_rules() -> list[dict[str, Any]]:
    """Per kind, as JSON Schema: the credentials it needs (and takes), the events it takes, its catalog."""
    from workers.destinations import adapter_classes

    rules = []
    for kind, names in credential_names().items():
        cls = adapter_classes()[kind]
        credentials = {"type": "object", "required": list(cls.credential_fields), "additionalProperties": False,
                       "properties": {name: credential_schema(kind, name) for name in names}}
        then: dict[str, Any] = {"properties": {"credentials": credentials, "events": {"anyOf": [
            {"type": "array", "items": {"enum": sorted(cls.supported_events)}}, {"type": "null"}]}}}
        if kind == "esputnik":
            then["properties"]["catalog"] = {"const": "off"}
        rules.append({"if": {"properties": {"kind": {"const": kind}}}, "then": then})
    return rules


class DestinationUpdate(BaseModel):
    """Every field optional: a PATCH/PUT changes what it names (credentials only when given)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra=lambda schema: schema[
        "properties"].update(credentials=update_credentials_schema()))
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NOT_BLANK)
    credentials: dict[str, str] | None = None  # each value checked against the kind by the service
    base_url: BaseUrl = None
    mode: Literal["realtime", "batch"] | None = None
    batch_interval_minutes: Annotated[int, Field(ge=1, le=1440), EXACT_INTEGER] | None = None
    events: Events = None
    enabled: JsonBool | None = None
    rate_limits: RateLimitsIn | None = None
    settings: JsonObject | None = None
    catalog: Literal["off", "api"] | None = Field(
        default=None, description='"api" keeps the platform\'s catalog equal to shoprelay\'s: Klaviyo through its '
                                  'Catalog API (items, variants, categories; a full reconcile when switched on and '
                                  'nightly, the changes after every sync), Sendlane and webhooks through product '
                                  'events. "off" (the default) sends no product data.')

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        problem = http_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value.rstrip("/")

    @field_validator("credentials")
    @classmethod
    def _stripped(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        """Trimmed as Python trims (the document's AROUND): pydantic's own trim keeps \\x1c-\\x1f, which would
        then reach an HTTP header."""
        return None if value is None else {name: text.strip() for name, text in value.items()}

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = [name for name in value if name not in EVENT_NAMES]
        if unknown:
            raise ValueError(f"unknown event(s): {', '.join(unknown)}; known: {', '.join(EVENT_NAMES)}")
        return list(dict.fromkeys(value))


class DestinationCreate(DestinationUpdate):
    model_config = ConfigDict(json_schema_extra=lambda schema: schema.update(allOf=kind_rules()))

    name: str = Field(min_length=1, max_length=200, pattern=NOT_BLANK)
    kind: Kind
    credentials: dict[str, str] = Field(description=CREDENTIALS_HELP)
    mode: Literal["realtime", "batch"] = "realtime"
    batch_interval_minutes: Annotated[int, Field(ge=1, le=1440), EXACT_INTEGER] = 30
    enabled: JsonBool = True
    catalog: Literal["off", "api"] = "off"
