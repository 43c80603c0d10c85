"""Destination create/update bodies (API and dashboard forms validate through the same models)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from webapp.schemas.json_types import (
    EXACT_INTEGER,
    EXACT_NUMBER,
    HEADER_SAFE,
    HTTP_URL,
    HTTP_URL_TEXT,
    NOT_BLANK,
    JsonBool,
    JsonObject,
)
from webapp.schemas.urls import http_url_problem

CREDENTIALS_HELP = (
    "Write-only; per kind: klaviyo {api_key}, sendlane {api_token, integration_token}, esputnik {api_key}, "
    "webhook {url, secret} (+ previous_secret while rotating: both sign). A webhook secret is either plain text "
    "or whsec_<standard base64> (Standard Webhooks); a whsec_ secret that is not valid base64 is refused.")

EVENT_NAMES = ("placed_order", "ordered_product", "fulfilled_order", "cancelled_order", "refunded_order",
               "pending_order", "abandoned_checkout", "profile_upsert", "consent_change", "product_upsert",
               "product_delete", "active_on_site", "viewed_product", "added_to_cart", "started_checkout",
               "back_in_stock_subscription", "back_in_stock")
Kind = Literal["klaviyo", "sendlane", "esputnik", "webhook"]
HEADER_CREDENTIALS = ("api_key", "api_token", "integration_token")  # sent in HTTP headers as they are


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
    for kind, cls in sorted(adapter_classes().items()):
        names = [*cls.credential_fields, "previous_secret"]
        credentials: dict[str, Any] = {
            "type": "object", "required": list(cls.credential_fields), "additionalProperties": False,
            "properties": {name: {"type": "string", "pattern": HEADER_SAFE if name in HEADER_CREDENTIALS else NOT_BLANK}
                           for name in names}}
        if kind == "webhook":
            credentials["properties"]["url"] = {"type": "string", "pattern": HTTP_URL}
            for name in ("secret", "previous_secret"):  # whsec_<standard base64> is taken too (Standard Webhooks)
                credentials["properties"][name] = {"type": "string", "pattern": rf"^(?!whsec_)[\s\S]*{NOT_BLANK}"}
        then: dict[str, Any] = {"properties": {"credentials": credentials, "events": {"anyOf": [
            {"type": "array", "items": {"enum": sorted(cls.supported_events)}}, {"type": "null"}]}}}
        if kind == "esputnik":
            then["properties"]["catalog"] = {"const": "off"}
        rules.append({"if": {"properties": {"kind": {"const": kind}}}, "then": then})
    return rules


class DestinationUpdate(BaseModel):
    """Every field optional: a PATCH/PUT changes what it names (credentials only when given)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NOT_BLANK)
    credentials: dict[str, str] | None = Field(default=None, description=CREDENTIALS_HELP)
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
    def _header_safe(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name in HEADER_CREDENTIALS:
            if value and value.get(name) and not re.fullmatch(HEADER_SAFE, value[name]):
                raise ValueError(f"{name} must be visible ASCII characters without spaces (as the platform issued it)")
        return value

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
