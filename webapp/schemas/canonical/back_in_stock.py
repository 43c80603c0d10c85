"""`POST /api/v1/back-in-stock` (and `shoprelay.backInStock(...)` from /t.js): a shopper waiting for a product."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from webapp.schemas.canonical.orders import EMAIL_TEXT, Email, Identifier, Phone

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


_GIVEN_EMAIL = {"required": ["email"], "properties": {"email": EMAIL_TEXT}}
_GIVEN_PHONE = {"required": ["phone"], "properties": {"phone": {"type": "string", "pattern": E164.pattern}}}
# What `problems()` asks, as JSON Schema: someone to tell, a product, and what each channel needs.
REQUIREMENTS = [
    {"anyOf": [_GIVEN_EMAIL, _GIVEN_PHONE]},
    {"anyOf": [{"required": [name], "properties": {name: {"type": ["string", "integer"]}}}
               for name in ("sku", "product_id")]},
    {"if": {"required": ["channels"], "properties": {"channels": {"type": "array", "contains": {"const": "email"}}}},
     "then": _GIVEN_EMAIL},
    {"if": {"required": ["channels"], "properties": {"channels": {"type": "array", "contains": {"const": "sms"}}}},
     "then": _GIVEN_PHONE},
    {"if": {"anyOf": [{"not": {"required": ["channels"]}}, {"properties": {"channels": {"type": "null"}}}]},
     "then": {"anyOf": [_GIVEN_EMAIL, {"properties": {"email": {"anyOf": [{"type": "null"}, {"const": ""}]}},
                                       **_GIVEN_PHONE}]}},
]


class BackInStockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=lambda schema: schema.update(allOf=REQUIREMENTS))

    email: Email = Field(default=None, description="Who to tell (or `phone`, or both).")
    phone: Phone = Field(default=None, description="In E.164, e.g. +15551234567 (needed for the sms channel).")
    sku: Identifier | None = Field(default=None, description="The variant's SKU (or `product_id`).")
    product_id: Identifier | None = Field(default=None, description="The product's id in its source.")
    channels: list[Literal["email", "sms"]] | None = Field(
        default=None, min_length=1, description='Default: ["email"] with an email, else ["sms"].')

    @model_validator(mode="after")
    def _default_channels(self) -> BackInStockRequest:
        self.channels = list(dict.fromkeys(self.channels or (["email"] if self.email or not self.phone else ["sms"])))
        return self

    def problems(self) -> list[tuple[str, str]]:
        """What the body lacks, each with the field it concerns: (field, why)."""
        found = []
        if not self.email and not self.phone:
            found.append(("email", "an email or a phone is required"))
        if not self.sku and not self.product_id:
            found.append(("sku", "a sku or a product_id is required"))
        if not found and "email" in (self.channels or []) and not self.email:
            found.append(("email", "the email channel needs an email"))
        if not found and "sms" in (self.channels or []):
            if not self.phone:
                found.append(("phone", "the sms channel needs a phone"))
            elif not E164.match(self.phone):
                found.append(("phone", "the sms channel needs a phone in E.164, e.g. +15551234567"))
        return found
