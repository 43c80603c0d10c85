"""The publish gate: a feed build that is empty or gutted is held back instead of replacing the feed.

A platform (Klaviyo, Google, Meta) fetching an empty or half-empty feed removes the missing products from
its catalog, so such a build waits for a person. Losses count against the products the feed draws on
(those of its sources that pass its rules: written + skipped), so a first build is judged too, not only
one that follows a published build. The reason names each skip cause with its count and its fix.
"""

from __future__ import annotations

from flask import current_app

from webapp.extensions import db
from webapp.models import Feed, FeedBuild
from webapp.services.catalog.sync_notes import STORE_URL_KINDS, link_fix, products_have

# Validator skip keys (feeds/validation.py `FeedValidator._skip`) -> (what is wrong, how to fix it).
SKIP_CAUSES: dict[str, tuple[str, str]] = {
    "missing_required:external_id": ("no id", "map a column to ID in the source's mapping"),
    "missing_required:title": ("no title", "map a column to Title in the source's mapping"),
    "missing_required:description": ("no description",
                                     "map a column to Description in the source's mapping, or add a "
                                     "description override to the feed"),
    "missing_required:image_link": ("no image", "add product images in the store, or map a column to Image "
                                                "URL in the source's mapping"),
    "missing_required:price": ("no price", "map a column to Price in the source's mapping, or set the "
                                           "prices in the store"),
    "missing_required:brand": ("no brand, GTIN or MPN (Meta needs one)",
                               "map a column to Brand, or add a brand override to the feed"),
    "bad_url:link": ("a product URL that is not an absolute http(s) URL",
                     "set the source's Store URL so relative links become absolute"),
    "bad_url:image_link": ("an image URL that is not an absolute http(s) URL",
                           "set the source's Store URL so relative links become absolute"),
    "bad_number:price": ("a price that is not a number", "fix the price column in the source"),
    "negative_price": ("a negative price", "fix the prices in the store"),
    "too_long:external_id": ("an id longer than the platform allows",
                             "use shorter ids, or an external_id override on the feed"),
    "duplicate_id": ("the same id as another product",
                     "give each product its own id, or build the feed from one source"),
}


def loss_share(feed: Feed) -> float:
    return feed.max_loss_share if feed.max_loss_share is not None else current_app.config["FEED_MAX_LOSS_SHARE"]


def skip_causes(skipped: dict[str, int], kinds: list[str]) -> list[str]:
    """One sentence per skip cause, most frequent first: "22 products have no product URL: set the
    source's Store URL". `kinds` are the feed's source kinds (the link fix depends on them)."""
    sentences = []
    for key, count in sorted(skipped.items(), key=lambda pair: (-pair[1], pair[0])):
        if key == "missing_required:link":
            kind = next((k for k in kinds if k in STORE_URL_KINDS), kinds[0] if kinds else "csv")
            what, fix = "no product URL", link_fix(kind)
        else:
            what, fix = SKIP_CAUSES.get(key, (f"a problem ({key})", "see the build's report"))
        sentences.append(f"{products_have(count)} {what}: {fix}")
    return sentences


def publish_gate(feed: Feed, build: FeedBuild) -> str | None:
    """Why this build must not replace the published one (None: publish)."""
    written, skipped = build.items_written or 0, build.items_skipped or 0
    considered = written + skipped
    causes = "; ".join(skip_causes((build.report or {}).get("skipped") or {}, [s.kind for s in feed.sources]))
    previous = db.session.get(FeedBuild, feed.published_build_id) if feed.published_build_id else None
    published = previous.items_written if previous is not None else 0
    share = loss_share(feed)
    if written == 0:
        if not considered:
            why = ": its sources and rules give no product"
        else:
            why = f" (all {considered} products skipped). {causes}"
        also = f" while the published feed has {published}" if published else ""
        return f"the build has no items{also}{why}; held back"
    if considered and skipped / considered > share:
        return (f"the build skipped {skipped} of the {considered} products of its sources and rules "
                f"({skipped / considered:.0%}, limit {share:.0%}). {causes}; held back")
    if published:
        lost = (published - written) / published
        if lost > share:
            return (f"the build has {written} items, {lost:.0%} fewer than the published "
                    f"{published} (limit {share:.0%}); held back")
    return None
