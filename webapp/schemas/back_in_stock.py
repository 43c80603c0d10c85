"""`POST /api/v1/back-in-stock` (and `shoprelay.backInStock(...)` from /t.js): a shopper waiting for a product."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from webapp.schemas.orders import Email, Identifier, Phone

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class BackInStockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
