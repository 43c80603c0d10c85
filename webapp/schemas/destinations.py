"""Destination create/update bodies (API and dashboard forms validate through the same models)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


class RateLimitsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    burst_per_second: float | None = Field(default=None, ge=0)
    per_minute: float | None = Field(default=None, ge=0)
    bulk_burst_per_second: float | None = Field(default=None, ge=0)
    bulk_per_minute: float | None = Field(default=None, ge=0)


class DestinationUpdate(BaseModel):
    """Every field optional: a PATCH/PUT changes what it names (credentials only when given)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    credentials: dict[str, str] | None = Field(default=None, description=CREDENTIALS_HELP)
    base_url: str | None = None
    mode: Literal["realtime", "batch"] | None = None
    batch_interval_minutes: int | None = Field(default=None, ge=1, le=1440)
    events: list[str] | None = None
    enabled: bool | None = None
    rate_limits: RateLimitsIn | None = None
    settings: dict[str, Any] | None = None
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
    name: str = Field(min_length=1, max_length=200)
    kind: Kind
    credentials: dict[str, str] = Field(description=CREDENTIALS_HELP)
    mode: Literal["realtime", "batch"] = "realtime"
    batch_interval_minutes: int = Field(default=30, ge=1, le=1440)
    enabled: bool = True
    catalog: Literal["off", "api"] = "off"
