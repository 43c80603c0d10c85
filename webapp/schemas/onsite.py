"""What the onsite tracker posts to /t/collect (the only unauthenticated write path: small and strict)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

OnsiteEvent = Literal["identify", "active_on_site", "viewed_product", "added_to_cart", "back_in_stock"]


class Collect(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=2000)

    event: OnsiteEvent
    anonymous_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9.\-]+$")
    email: EmailStr | None = None
    customer_id: str | None = Field(default=None, max_length=255)
    url: str | None = Field(default=None, max_length=2000)
    properties: dict[str, Any] = Field(default_factory=dict)
