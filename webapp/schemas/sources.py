"""Source create/update bodies (API and dashboard)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from feeds.mapping import PRODUCT_TARGETS
from webapp.schemas.urls import http_url_problem

SourceKind = Literal["csv", "json", "xml", "google", "shopify", "woocommerce", "push"]


class SourceCredentials(BaseModel):
    """Basic auth or one header token for URL sources (stored encrypted, never returned)."""

    model_config = ConfigDict(extra="forbid")
    username: str | None = None
    password: str | None = None
    header_name: str | None = None
    header_value: str | None = None


class SourceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    location: str | None = None
    mapping: dict[str, str] | None = None
    options: dict[str, Any] | None = None
    schedule: str | None = None
    timezone: str | None = None
    enabled: bool | None = None
    max_remove_share: float | None = Field(default=None, ge=0, le=1)
    credentials: SourceCredentials | None = None

    @field_validator("location")
    @classmethod
    def _location(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        problem = http_url_problem(value)
        if problem:
            raise ValueError(f"{problem} (upload files from the dashboard)")
        return value

    @field_validator("mapping")
    @classmethod
    def _mapping(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        unknown = sorted(set(value) - set(PRODUCT_TARGETS))
        if unknown:
            raise ValueError(f"unknown product field(s): {', '.join(unknown)}; "
                             f"known: {', '.join(PRODUCT_TARGETS)}")
        return {target: column for target, column in value.items() if column}


class SourceCreate(SourceUpdate):
    name: str = Field(min_length=1, max_length=200)
    kind: SourceKind
    schedule: str = "0 2 * * *"
    timezone: str = "UTC"
    enabled: bool = True

