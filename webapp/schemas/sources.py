"""Source create/update bodies (API and dashboard)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from feeds.mapping import PRODUCT_TARGETS
from webapp.schemas.json_types import (
    CRON,
    HTTP_URL,
    HTTP_URL_TEXT,
    NOT_BLANK,
    Cron,
    JsonBool,
    JsonObject,
    Share,
    time_zone_schema,
)
from webapp.schemas.urls import http_url_problem

Location = Annotated[str | None, WithJsonSchema({"anyOf": [
    {"type": "string", "pattern": HTTP_URL}, {"const": ""}, {"type": "null"}],
    "description": f"Where the source is read from: {HTTP_URL_TEXT}; empty or null for uploads and push. "
                   "Setting a URL on a source fed by an uploaded file deletes that file (and its unpacked copy) "
                   "once the change is saved; a sync already reading the file finishes with it, and the file goes "
                   "when that sync ends. A request that is refused keeps the file."})]
Mapping = Annotated[dict[str, str] | None, WithJsonSchema({"anyOf": [
    {"type": "object", "propertyNames": {"enum": list(PRODUCT_TARGETS)}, "additionalProperties": {"type": "string"}},
    {"type": "null"}], "description": "Product field → the source's column (null: detected automatically)."})]
TimeZone = Annotated[str, WithJsonSchema(time_zone_schema())]
# On update a blank schedule or time zone keeps the current one.
CronOrKeep = Annotated[str, WithJsonSchema({"anyOf": [{"type": "string", "pattern": CRON}, {"const": ""}]})]
TimeZoneOrKeep = Annotated[str, WithJsonSchema({"anyOf": [time_zone_schema(), {"const": ""}]})]

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
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NOT_BLANK)
    location: Location = None
    mapping: Mapping = None
    options: JsonObject | None = None
    schedule: CronOrKeep | None = None
    timezone: TimeZoneOrKeep | None = None
    enabled: JsonBool | None = None
    max_remove_share: Share | None = None
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
    name: str = Field(min_length=1, max_length=200, pattern=NOT_BLANK)
    kind: SourceKind
    schedule: Cron = "0 2 * * *"
    timezone: TimeZone = "UTC"
    enabled: JsonBool = True

