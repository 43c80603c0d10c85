"""Readers count the distinct products they read without a product URL, so a sync can say so."""

import orjson
import pytest

from feeds.readers import read_products
from tests.fixtures import SHOPIFY_PAGE, WOOCOMMERCE_SAMPLE
from webapp.services.catalog.sync_notes import no_link_message, read_notes


def _read(kind, path, options):
    stream = read_products(kind, path, options=options)
    products = [item for item in stream if hasattr(item, "link")]
    return stream.stats, products


@pytest.mark.parametrize(("store_url", "missing"), [(None, 22), ("https://shop.example/", 0)])
def test_woocommerce_links_come_from_the_store_url(store_url, missing):
    stats, products = _read("woocommerce", WOOCOMMERCE_SAMPLE, {"store_url": store_url} if store_url else {})
    assert stats.no_link == missing and len({p.external_id for p in products}) == 22
    if store_url:  # simple products and variations alike (variations point at their parent's page)
        assert all(p.link.startswith("https://shop.example/?post_type=product&p=") for p in products)
        assert {p.link.rsplit("=", 1)[1] for p in products if p.item_group_id} <= {p.item_group_id for p in products}


def test_shopify_without_store_url_counts_every_variant(tmp_path):
    path = tmp_path / "products.json"
    path.write_bytes(orjson.dumps(SHOPIFY_PAGE))
    assert _read("shopify", path, {})[0].no_link == 3
    assert _read("shopify", path, {"store_url": "https://shop.test"})[0].no_link == 0


def test_the_note_names_the_fix_for_the_kind():
    stats, _ = _read("woocommerce", WOOCOMMERCE_SAMPLE, {})
    assert read_notes(stats, "woocommerce") == [
        {"row": None, "message": "22 products have no product URL: set the source's Store URL"}]
    assert no_link_message(1, "csv") == "1 product has no product URL: map a column to Product URL in the source's mapping"


def test_every_skip_cause_the_validator_emits_has_a_wording_and_a_fix():
    from decimal import Decimal

    from feeds.validation import GOOGLE_RULES, META_RULES, FeedValidator
    from webapp.services.publishing.gate import skip_causes

    good = {"external_id": "1", "title": "T", "description": "D", "link": "https://s.example/p",
            "image_link": "https://s.example/i.png", "price": Decimal("1"), "brand": "B"}
    bad = [{"external_id": ""}, {"title": " "}, {"description": None}, {"link": None}, {"image_link": ""},
           {"link": "/p/1"}, {"image_link": "i.png"}, {"price": None}, {"price": "ten"}, {"price": Decimal("-1")},
           {"external_id": "x" * 101}, {"brand": None}, {}, {}]
    validator = FeedValidator(META_RULES)
    for number, change in enumerate(bad):
        validator.check(good | {"external_id": str(number)} | change if "external_id" not in change
                        else good | change)
    validator.check(good | {"external_id": "13"})  # a duplicate of the item before
    google = FeedValidator(GOOGLE_RULES)
    google.check(good | {"external_id": "x" * 51})
    skipped = dict(validator.skipped) | dict(google.skipped)
    assert len(skipped) == 13, skipped
    sentences = skip_causes(skipped, ["woocommerce"])
    assert len(sentences) == len(skipped)
    assert not [s for s in sentences if "a problem (" in s]
    assert all(": " in s and s.split(": ", 1)[1] for s in sentences)
