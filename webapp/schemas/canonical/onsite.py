"""What the onsite tracker posts to /t/collect (the only unauthenticated write path: small and strict).

URL fields (the page, a product's link and image, the cart's link) keep only http(s) addresses: anything
else (javascript:, data:) is dropped rather than stored and later shown or sent to a platform.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from webapp.schemas.canonical.orders import Email

try:  # the shared http(s)-only check, once it exists (webapp/schemas/canonical/web_links.py)
    from webapp.schemas.canonical.web_links import web_url
except ImportError:  # pragma: no cover - until then, the same rule here
    from urllib.parse import urlsplit

    def web_url(value: object) -> str | None:
        """An absolute http(s) URL with a host, else None."""
        if not isinstance(value, str):
            return None
        text = value.strip()
        try:
            parts = urlsplit(text)
        except ValueError:
            return None
        return text if parts.scheme.lower() in ("http", "https") and parts.hostname else None

OnsiteEvent = Literal["identify", "active_on_site", "viewed_product", "added_to_cart", "back_in_stock"]
URL_KEYS = ("url", "image_url")
MAX_ITEMS = 100


class Collect(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=2000)

    event: OnsiteEvent
    anonymous_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9.\-]+$")
    email: Email = None
    signature: str | None = Field(default=None, max_length=128, pattern=r"^[0-9A-Fa-f]{64}$")
    customer_id: str | None = Field(default=None, max_length=255)
    kx: str | None = Field(default=None, max_length=200, pattern=r"^[A-Za-z0-9_\-=.]+$",
                           description="Klaviyo's `_kx` from a link in a Klaviyo email.")
    url: str | None = Field(default=None, max_length=2000)
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _web_url(cls, value: str | None) -> str | None:
        return web_url(value) if value is not None else None

    @field_validator("properties")
    @classmethod
    def _clean_links(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Product, cart and cart items: their links and images only when they are web links."""
        for key in ("product", "cart"):
            if isinstance(value.get(key), dict):
                value[key] = _with_web_links(value[key])
        cart = value.get("cart")
        if isinstance(cart, dict) and isinstance(cart.get("items"), list):
            if len(cart["items"]) > MAX_ITEMS:
                raise ValueError(f"a cart may list at most {MAX_ITEMS} items")
            cart["items"] = [_with_web_links(item) if isinstance(item, dict) else item for item in cart["items"]]
        return value


def _with_web_links(thing: dict[str, Any]) -> dict[str, Any]:
    cleaned = dict(thing)
    for key in URL_KEYS:
        if key in cleaned:
            cleaned[key] = web_url(cleaned[key])
    return cleaned


MAX_BATCH = 20


class CollectBatch(BaseModel):
    """Several events of one page at once (`{"events": [...]}`), as /t.js sends what a page does together."""

    model_config = ConfigDict(extra="forbid")

    events: list[Collect] = Field(min_length=1, max_length=MAX_BATCH)

    @field_validator("events")
    @classmethod
    def _no_back_in_stock(cls, value: list[Collect]) -> list[Collect]:
        if any(event.event == "back_in_stock" for event in value):
            raise ValueError("back_in_stock is sent on its own (it answers with the subscription)")
        if len({event.anonymous_id for event in value}) > 1:
            raise ValueError("the events of a batch come from one browser (one anonymous_id)")
        return value


def parse_collect(data: object) -> Collect | CollectBatch:
    """One event, or a batch when the body is `{"events": [...]}` (pydantic.ValidationError otherwise)."""
    if isinstance(data, dict) and "events" in data:
        return CollectBatch.model_validate(data)
    return Collect.model_validate(data)
