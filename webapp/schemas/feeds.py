"""Feed create/update bodies (API and dashboard)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from feeds.rules import _FIELDS, _VALUELESS, ACTIONS, OPS, validate_rules
from webapp.schemas.json_types import (
    JSON_NUMBER,
    NOT_BLANK,
    PY_SPACE,
    DatabaseId,
    JsonBool,
    Share,
    bounded_json,
)

FeedFormat = Literal["klaviyo_xml", "klaviyo_json", "google_rss", "meta_csv"]
MAX_SOURCES_PER_FEED = 100
MAX_RULES = 200
RULE_KEYS = frozenset(("action", "field", "op", "value"))
_SCALAR = {"anyOf": [{"type": ["string", "boolean"]}, JSON_NUMBER]}
_NUMBER_TEXT = rf"^[{PY_SPACE}]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)[{PY_SPACE}]*$"
# What feeds.rules.validate_rules accepts, as JSON Schema: the value a rule needs depends on its op.
RULE_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["action", "field", "op"], "additionalProperties": False,
    "description": "{action, field, op, value}: include or exclude products whose field matches.",
    "properties": {
        "action": {"enum": list(ACTIONS)},
        "field": {"type": "string", "pattern": "^(" + "|".join(sorted({*_FIELDS, "categories"})) + r"|extras\..+)$",
                  "description": "A product field, category, in_stock or extras.<key>"},
        "op": {"enum": list(OPS)}, "value": {}},
    "anyOf": [
        {"properties": {"op": {"enum": ["is_true", "is_false", "empty", "not_empty"]}}},
        {"properties": {"op": {"enum": ["gt", "gte", "lt", "lte"]}, "value": {"anyOf": [
            JSON_NUMBER, {"type": "string", "pattern": _NUMBER_TEXT}]}}, "required": ["value"]},
        {"properties": {"op": {"const": "in"}, "value": {"type": "array", "minItems": 1, "items": _SCALAR}},
         "required": ["value"]},
        {"properties": {"op": {"enum": ["eq", "ne"]}, "value": _SCALAR}, "required": ["value"]},
        {"properties": {"op": {"const": "contains"}, "value": {"anyOf": [
            {"type": "string", "pattern": NOT_BLANK}, {"type": "boolean"}, JSON_NUMBER]}}, "required": ["value"]},
    ]}
Rules = Annotated[list[dict[str, Any]] | None, WithJsonSchema({"anyOf": [
    {"type": "array", "maxItems": MAX_RULES, "items": RULE_SCHEMA}, {"type": "null"}]})]
SourceIds = Annotated[list[DatabaseId], Field(min_length=1, max_length=MAX_SOURCES_PER_FEED)]


class BasicAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=8, max_length=200)


class FeedUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NOT_BLANK)
    slug: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,118}$")
    format: FeedFormat | None = None
    source_ids: SourceIds | None = None
    rules: Rules = Field(default=None, max_length=MAX_RULES)
    field_overrides: dict[str, str] | None = None
    basic_auth: BasicAuth | None = None
    gzip: JsonBool | None = None
    max_loss_share: Share | None = None

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value is None:
            return None
        problems = validate_rules(value)
        problems += [f"rule {number}: unknown key(s) {', '.join(sorted(set(rule) - RULE_KEYS))}"
                     for number, rule in enumerate(value, start=1)
                     if isinstance(rule, dict) and set(rule) - RULE_KEYS]
        if problems:
            raise ValueError("; ".join(problems))
        # A value-less op (is_true, empty, ...) ignores any `value` the document allows there: not stored.
        value = [{key: item for key, item in rule.items() if key != "value" or rule.get("op") not in _VALUELESS}
                 for rule in value]
        return bounded_json(value)


class FeedCreate(FeedUpdate):
    name: str = Field(min_length=1, max_length=200, pattern=NOT_BLANK)
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,118}$")
    format: FeedFormat
    source_ids: SourceIds
    gzip: JsonBool = True
