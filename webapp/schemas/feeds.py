"""Feed create/update bodies (API and dashboard)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from feeds.rules import validate_rules

FeedFormat = Literal["klaviyo_xml", "klaviyo_json", "google_rss", "meta_csv"]


class BasicAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=8, max_length=200)


class FeedUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    slug: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,118}$")
    format: FeedFormat | None = None
    source_ids: list[int] | None = None
    rules: list[dict[str, Any]] | None = None
    field_overrides: dict[str, str] | None = None
    basic_auth: BasicAuth | None = None
    gzip: bool | None = None
    max_loss_share: float | None = Field(default=None, ge=0, le=1)

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value is None:
            return None
        problems = validate_rules(value)
        if problems:
            raise ValueError("; ".join(problems))
        return value


class FeedCreate(FeedUpdate):
    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,118}$")
    format: FeedFormat
    source_ids: list[int] = Field(min_length=1)
    gzip: bool = True
