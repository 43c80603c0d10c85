"""Klaviyo catalog feeds (XML and JSON) and the machinery every writer shares: splitting, overrides,
the validation report, progress and clean-up."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from feeds.writers import FEED_FORMATS, compile_overrides, validate_overrides, write_feed
from tests.feeds.writer_helpers import check_parts, parse_json, parse_xml, product, write

REQUIRED = ("id", "title", "link", "description", "image_link")


def rich_product() -> dict[str, Any]:
    return product(
        7, title="Classic T-Shirt", description="Soft & light <cotton>", price=Decimal("10.50"),
        compare_at_price=Decimal("15"), brand="Acme", sku="TS-7", gtin="0012345678905",
        item_group_id="TS", categories=["apparel", "t-shirt", " ", "new-arrival"],
        inventory_quantity=25, inventory_policy=1,
        extras={"color": "red", "weight": 0.2, "nested": {"no": 1}, "bad key": "x", "tags": ["a"]})


def test_feed_formats_describe_extension_content_type_and_label() -> None:
    assert {name: spec.extension for name, spec in FEED_FORMATS.items()} == {
        "klaviyo_xml": "xml", "klaviyo_json": "json", "google_rss": "xml", "meta_csv": "csv"}
    assert FEED_FORMATS["klaviyo_json"].content_type == "application/json"
    assert all(spec.label for spec in FEED_FORMATS.values())


def test_xml_fields_are_written_flat_and_parse_back(tmp_path: Path) -> None:
    result = write("klaviyo_xml", [rich_product()], tmp_path)

    root = parse_xml(result.parts[0].path)
    assert result.parts[0].path.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert root.tag == "Products"
    [item] = root.findall("Product")
    assert {child.tag: child.text for child in item} == {
        "id": "SKU-7", "title": "Classic T-Shirt", "link": "https://shop.example/p/7",
        "description": "Soft & light <cotton>", "image_link": "https://shop.example/i/7.png",
        "price": "10.50", "categories": "apparel,t-shirt,new-arrival", "inventory_quantity": "25",
        "inventory_policy": "1", "item_group_id": "TS", "compare_at_price": "15", "brand": "Acme",
        "sku": "TS-7", "gtin": "0012345678905", "color": "red", "weight": "0.2",
    }
    assert all(len(child) == 0 for child in item)  # one node deep
    assert result.items_written == 1 and result.items_skipped == 0
    check_parts(result)


def test_json_is_an_array_of_flat_objects_with_numeric_price(tmp_path: Path) -> None:
    result = write("klaviyo_json", [rich_product(), product(8, price=None, categories=[])], tmp_path)

    first, second = parse_json(result.parts[0].path)
    assert first == {
        "id": "SKU-7", "title": "Classic T-Shirt", "link": "https://shop.example/p/7",
        "description": "Soft & light <cotton>", "image_link": "https://shop.example/i/7.png",
        "price": 10.5, "categories": ["apparel", "t-shirt", "new-arrival"], "inventory_quantity": 25,
        "inventory_policy": 1, "item_group_id": "TS", "compare_at_price": 15.0, "brand": "Acme",
        "sku": "TS-7", "gtin": "0012345678905", "color": "red", "weight": 0.2,
    }
    assert "price" not in second and "categories" not in second
    check_parts(result)


def test_json_price_keeps_exact_decimal_value(tmp_path: Path) -> None:
    result = write("klaviyo_json", [product(price=Decimal("1234567.89"))], tmp_path)

    [item] = parse_json(result.parts[0].path)
    assert Decimal(str(item["price"])) == Decimal("1234567.89")


def test_json_strips_lone_surrogates_instead_of_failing(tmp_path: Path) -> None:
    result = write("klaviyo_json", [product(brand="Ac\ud800me", title="T\udfffee")], tmp_path)

    [item] = parse_json(result.parts[0].path)
    assert (item["brand"], item["title"]) == ("Acme", "Tee")


@pytest.mark.parametrize("fmt", ["klaviyo_xml", "klaviyo_json"])
def test_items_with_a_blank_required_field_are_skipped_and_reported(fmt: str, tmp_path: Path) -> None:
    products = [
        product(1),
        product(2, title="   "),
        product(3, description=None),
        product(4, image_link=""),
        product(5, title="\x00\x01\x02"),  # blank once the characters XML forbids are removed
        product(6, link="/p/6"),
        product(7, image_link="ftp://shop.example/7.png"),
        product(8, external_id=None),
        product(9),
    ]

    result = write(fmt, products, tmp_path)

    assert result.items_written == 2 and result.items_skipped == 7
    assert result.report["skipped"] == {
        "missing_required:title": 2, "missing_required:description": 1,
        "missing_required:image_link": 1, "bad_url:link": 1, "bad_url:image_link": 1,
        "missing_required:external_id": 1,
    }
    assert result.report["issues"][0] == {"external_id": "SKU-2", "id": 1002, "reason": "missing_required",
                                          "field": "title"}
    assert [issue["id"] for issue in result.report["issues"]] == [1002, 1003, 1004, 1005, 1006, 1007, 1008]
    written = _records(fmt, result.parts[0].path)
    assert [record["id"] for record in written] == ["SKU-1", "SKU-9"]
    for record in written:
        assert all(str(record[name]).strip() for name in REQUIRED)


def test_negative_and_unreadable_prices_skip_the_item(tmp_path: Path) -> None:
    products = [product(1, price=Decimal("-1")), product(2, price="abc"), product(3, price="12.5"),
                product(4, price=Decimal("NaN")), product(5, price=0)]

    result = write("klaviyo_json", products, tmp_path)

    assert result.report["skipped"] == {"negative_price": 1, "bad_number:price": 2}
    assert [(item["id"], item["price"]) for item in parse_json(result.parts[0].path)] == [
        ("SKU-3", 12.5), ("SKU-5", 0)]


def test_duplicate_ids_keep_the_first_valid_item(tmp_path: Path) -> None:
    products = [product(1, title=""), product(1, title="first valid"), product(1, title="duplicate"),
                product(2), product(2)]

    result = write("klaviyo_xml", products, tmp_path)

    root = parse_xml(result.parts[0].path)
    assert [(node.findtext("id"), node.findtext("title")) for node in root] == [
        ("SKU-1", "first valid"), ("SKU-2", "Product 2")]
    assert result.report["skipped"] == {"missing_required:title": 1, "duplicate_id": 2}


def test_invalid_inventory_policy_is_left_out_with_a_warning(tmp_path: Path) -> None:
    result = write("klaviyo_json", [product(inventory_policy=5), product(2, inventory_policy="2")], tmp_path)

    first, second = parse_json(result.parts[0].path)
    assert "inventory_policy" not in first and second["inventory_policy"] == 2
    assert result.report["warning_counts"] == {"invalid_value:inventory_policy": 1}
    assert result.report["warnings"] == ["inventory_policy left out on 1 item: not one of 1, 2"]


def test_fill_rates_are_the_share_of_written_items_having_each_field(tmp_path: Path) -> None:
    products = [product(1, brand="Acme", inventory_quantity=0), product(2, inventory_quantity=None),
                product(3, categories=[]), product(4), product(5, title="")]

    result = write("klaviyo_xml", products, tmp_path)

    rates = result.report["fill_rates"]
    assert rates["title"] == 1.0
    assert rates["brand"] == 0.25
    assert rates["inventory_quantity"] == 0.75  # a quantity of 0 is a value
    assert rates["categories"] == 0.75
    assert rates["gtin"] == 0.0
    assert "extras" not in rates
    orjson.dumps(result.report)  # the report is stored as JSON


@pytest.mark.parametrize("fmt", ["klaviyo_xml", "klaviyo_json"])
def test_split_parts_are_each_a_valid_document_and_together_hold_every_item(fmt: str, tmp_path: Path) -> None:
    products = [product(number, description="d" * 120) for number in range(1, 41)]

    result = write(fmt, products, tmp_path, basename="catalog", split_bytes=2048)

    extension = FEED_FORMATS[fmt].extension
    assert len(result.parts) > 3
    assert [part.name for part in result.parts] == [f"catalog.{extension}"] + [
        f"catalog-{number}.{extension}" for number in range(2, len(result.parts) + 1)]
    ids = []
    for part in result.parts:
        assert part.bytes <= 2048
        records = _records(fmt, part.path)
        assert len(records) == part.items > 0
        ids += [record["id"] for record in records]
    assert ids == [f"SKU-{number}" for number in range(1, 41)]
    assert result.items_written == 40
    check_parts(result)


def test_an_item_bigger_than_the_split_size_gets_a_part_of_its_own(tmp_path: Path) -> None:
    products = [product(1), product(2, description="x" * 3000), product(3)]

    result = write("klaviyo_xml", products, tmp_path, split_bytes=1024)

    assert [part.items for part in result.parts] == [1, 1, 1]
    assert result.parts[1].bytes > 1024
    assert "1 item(s) larger than the split size got a part of their own" in result.report["warnings"]
    assert all(parse_xml(part.path).tag == "Products" for part in result.parts)


@pytest.mark.parametrize("fmt", ["klaviyo_xml", "klaviyo_json"])
def test_an_empty_catalog_still_gives_one_valid_empty_document(fmt: str, tmp_path: Path) -> None:
    result = write(fmt, [], tmp_path)

    assert len(result.parts) == 1 and result.parts[0].items == 0
    assert _records(fmt, result.parts[0].path) == []
    assert result.report["fill_rates"]["title"] == 0.0


def test_overrides_rewrite_fields_from_the_original_values(tmp_path: Path) -> None:
    overrides = {"title": "{brand} {title}", "link": "{link}?utm_source=klaviyo",
                 "description": "{title}", "extras.badge": "{{{extras.color}}}"}
    products = [product(1, brand="Acme", description=None, extras={"color": "red"})]

    result = write("klaviyo_json", products, tmp_path, overrides=overrides)

    [item] = parse_json(result.parts[0].path)
    assert item["title"] == "Acme Product 1"
    assert item["link"] == "https://shop.example/p/1?utm_source=klaviyo"
    assert item["description"] == "Product 1"  # templates read the row before any override
    assert item["badge"] == "{red}"


def test_overrides_render_numbers_lists_and_missing_values_as_text() -> None:
    apply = compile_overrides({"description": "{price} | {categories} | {mpn} | {extras.size} | {id}"})
    item = product(price=Decimal("9.90"), categories=["A", "B"], extras={"size": 42})

    apply(item)

    assert item["description"] == "9.90 | A, B |  | 42 | 1001"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"price": "{price}"}, "override 'price': only text fields"),
    ({"title": "{nope}"}, "unknown field {nope}"),
    ({"title": "{title.__class__}"}, "unknown field {title.__class__}"),
    ({"title": "{extras}"}, "unknown field {extras}"),
    ({"title": "oops }"}, "unbalanced brace"),
    ({"title": "{title"}, "unbalanced brace"),
    ({"title": 5}, "the template must be text"),
])
def test_bad_overrides_are_refused_with_a_message(overrides: dict, message: str, tmp_path: Path) -> None:
    assert any(message in error for error in validate_overrides(overrides))
    with pytest.raises(ValueError, match="override"):
        write("klaviyo_xml", [product()], tmp_path, overrides=overrides)


def test_the_input_products_are_not_modified(tmp_path: Path) -> None:
    products = [product(1, title="  padded  ", price="5"), product(2, description="")]
    before = copy.deepcopy(products)

    write("klaviyo_xml", products, tmp_path, overrides={"title": "{title}!"})

    assert products == before


def test_progress_is_reported_with_the_number_of_products_consumed(tmp_path: Path) -> None:
    seen: list[int] = []
    products = [product(number) for number in range(1, 10_004)] + [product(1)]

    write_feed("klaviyo_json", products, tmp_path, basename="feed", on_progress=seen.append)

    assert seen == [10_000, 10_004]


def test_a_failing_product_stream_leaves_no_partial_files(tmp_path: Path) -> None:
    def products() -> Iterator[dict[str, Any]]:
        for number in range(1, 30):
            yield product(number)
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError, match="database went away"):
        write("klaviyo_xml", products(), tmp_path, split_bytes=1024)

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("fmt", "options", "message"), [
    ("klaviyo_yaml", {}, "unknown feed format 'klaviyo_yaml'"),
    ("klaviyo_xml", {"split_bytes": 0}, "split_bytes must be positive"),
])
def test_bad_arguments_are_refused(fmt: str, options: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        write(fmt, [product()], tmp_path, **options)


def _records(fmt: str, path: Path) -> list[dict[str, Any]]:
    if fmt == "klaviyo_json":
        return parse_json(path)
    return [{child.tag: child.text for child in node} for node in parse_xml(path)]
