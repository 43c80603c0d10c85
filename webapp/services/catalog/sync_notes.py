"""Notes a sync run adds about products it stored but that no feed can publish, with the fix in words.

Every feed format needs a product URL; a WooCommerce export has none and Shopify's products.json only has
handles, so without the source's Store URL every product would be dropped later, at feed build. Saying so on
the sync run (and on the source form) points at the fix before a feed is even built.
"""

from __future__ import annotations

from typing import Any

# Source kinds whose reader builds product links from options.store_url (the export carries no URL).
STORE_URL_KINDS = ("woocommerce", "shopify")


def needs_store_url(kind: str, options: dict[str, Any] | None) -> bool:
    """The source cannot make product links: its kind builds them from a Store URL, and none is set."""
    return kind in STORE_URL_KINDS and not str((options or {}).get("store_url") or "").strip()


def link_fix(kind: str) -> str:
    """Where a product's missing URL comes from, for this kind of source."""
    if kind in STORE_URL_KINDS:
        return "set the source's Store URL"
    if kind == "push":
        return "send a link with each product"
    return "map a column to Product URL in the source's mapping"


def products_have(count: int) -> str:
    return "1 product has" if count == 1 else f"{count} products have"


def no_link_message(count: int, kind: str) -> str:
    """E.g. "22 products have no product URL: set the source's Store URL"."""
    return f"{products_have(count)} no product URL: {link_fix(kind)}"


def read_notes(stats: Any, kind: str) -> list[dict[str, Any]]:
    """Problems to show first on the sync run, from the reader's counts (`ReadStats`)."""
    count = getattr(stats, "no_link", 0)
    return [{"row": None, "message": no_link_message(count, kind)}] if count else []
