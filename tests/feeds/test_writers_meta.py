"""Meta (Facebook/Instagram) catalog CSV feed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from feeds.writers.meta import META_COLUMNS
from tests.feeds.writer_helpers import check_parts, parse_csv, product, write

STORE = {"store_name": "Acme Store"}


def test_every_column_is_written_and_parses_back(tmp_path: Path) -> None:
    row = product(4, title="Mug", description="Big, \"tall\"\nmug", price=Decimal("9.99"),
                  compare_at_price=Decimal("12.5"), brand="Acme", gtin="0012345678905", mpn="MUG-4",
                  item_group_id="MUG", condition="used", inventory_quantity=-3, categories=["Home", "Mugs"],
                  extras={"additional_image_links": ["https://shop.example/i/4b.png", "https://shop.example/i/4c.png"]})

    result = write("meta_csv", [row], tmp_path, channel=STORE)

    [parsed] = parse_csv(result.parts[0].path)
    assert list(parsed) == list(META_COLUMNS)
    assert parsed == {
        "id": "SKU-4", "title": "Mug", "description": "Big, \"tall\"\nmug", "availability": "out of stock",
        "condition": "used", "price": "12.50 USD", "link": "https://shop.example/p/4",
        "image_link": "https://shop.example/i/4.png", "brand": "Acme", "sale_price": "9.99 USD",
        "item_group_id": "MUG", "gtin": "0012345678905", "mpn": "MUG-4", "quantity_to_sell_on_facebook": "0",
        "additional_image_link": "https://shop.example/i/4b.png,https://shop.example/i/4c.png",
        "product_type": "Home > Mugs",
    }
    check_parts(result)


def test_availability_uses_spaces_and_defaults_apply(tmp_path: Path) -> None:
    products = [product(1, brand="Acme", inventory_quantity=7), product(2, brand="Acme", inventory_quantity=0),
                product(3, brand="Acme", inventory_quantity=None, currency=None)]

    result = write("meta_csv", products, tmp_path, default_currency="EUR")

    rows = parse_csv(result.parts[0].path)
    assert [row["availability"] for row in rows] == ["in stock", "out of stock", "in stock"]
    assert [row["quantity_to_sell_on_facebook"] for row in rows] == ["7", "0", ""]
    assert [row["condition"] for row in rows] == ["new", "new", "new"]
    assert [row["price"] for row in rows] == ["19.99 USD", "19.99 USD", "19.99 EUR"]
    assert [row["sale_price"] for row in rows] == ["", "", ""]


def test_brand_falls_back_to_the_store_name_only_without_any_identifier(tmp_path: Path) -> None:
    products = [product(1), product(2, gtin="0012345678905"), product(3, mpn="M-3"), product(4, brand="Own")]

    result = write("meta_csv", products, tmp_path, channel=STORE)

    rows = parse_csv(result.parts[0].path)
    assert [(row["id"], row["brand"]) for row in rows] == [
        ("SKU-1", "Acme Store"), ("SKU-2", ""), ("SKU-3", ""), ("SKU-4", "Own")]
    assert result.report["fill_rates"]["brand"] == 0.5


def test_the_channel_title_is_the_store_name_when_no_store_name_is_given(tmp_path: Path) -> None:
    result = write("meta_csv", [product(1)], tmp_path, channel={"title": "Shop Title"})

    assert parse_csv(result.parts[0].path)[0]["brand"] == "Shop Title"


def test_items_without_brand_gtin_or_mpn_and_no_store_name_are_skipped(tmp_path: Path) -> None:
    result = write("meta_csv", [product(1), product(2, brand="  "), product(3, mpn="M")], tmp_path)

    assert [row["id"] for row in parse_csv(result.parts[0].path)] == ["SKU-3"]
    assert result.report["skipped"] == {"missing_required:brand": 2}
    assert result.report["issues"][0] == {"external_id": "SKU-1", "id": 1001, "reason": "missing_required",
                                          "field": "brand"}


def test_meta_limits_skip_long_ids_and_cut_long_text(tmp_path: Path) -> None:
    products = [product(1, external_id="i" * 101), product(2, external_id="j" * 100, title="t" * 250,
                                                           description="d" * 10_000)]

    result = write("meta_csv", products, tmp_path, channel=STORE)

    [row] = parse_csv(result.parts[0].path)
    assert (row["id"], len(row["title"]), len(row["description"])) == ("j" * 100, 200, 9999)
    assert result.report["skipped"] == {"too_long:external_id": 1}
    assert result.report["warning_counts"] == {"truncated:title": 1, "truncated:description": 1}


@pytest.mark.parametrize("field", ["title", "description", "link", "image_link", "price"])
def test_required_fields_are_enforced(field: str, tmp_path: Path) -> None:
    result = write("meta_csv", [product(1, **{field: None}), product(2)], tmp_path, channel=STORE)

    assert [row["id"] for row in parse_csv(result.parts[0].path)] == ["SKU-2"]
    assert result.report["skipped"] == {f"missing_required:{field}": 1}


def test_hostile_text_is_cleaned_and_quoted(tmp_path: Path) -> None:
    text = "a,b;\"c\"\r\nd\x00e\x1ff\ud800g 😀 עברית"

    result = write("meta_csv", [product(title=text, description=text)], tmp_path, channel=STORE)

    [row] = parse_csv(result.parts[0].path)
    assert row["title"] == row["description"] == "a,b;\"c\"\r\ndefg 😀 עברית"


def test_split_parts_each_start_with_the_header(tmp_path: Path) -> None:
    products = [product(number) for number in range(1, 41)]

    result = write("meta_csv", products, tmp_path, basename="meta", channel=STORE, split_bytes=2048)

    assert len(result.parts) > 2
    assert result.parts[1].name == "meta-2.csv"
    ids = []
    for part in result.parts:
        assert part.bytes <= 2048
        assert part.path.read_text(encoding="utf-8").startswith("id,title,description,availability,")
        rows = parse_csv(part.path)
        assert len(rows) == part.items
        ids += [row["id"] for row in rows]
    assert ids == [f"SKU-{number}" for number in range(1, 41)]
    check_parts(result)
