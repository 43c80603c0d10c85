"""Google Merchant Center RSS 2.0 feed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from tests.feeds.writer_helpers import check_parts, parse_xml, product, write

G = "{http://base.google.com/ns/1.0}"


def items(path: Path) -> list[dict[str, list[str]]]:
    """Each <item> as {local name: [texts]} (repeatable fields such as additional_image_link)."""
    result = []
    for node in parse_xml(path).iterfind("channel/item"):
        fields: dict[str, list[str]] = {}
        for child in node:
            assert child.tag.startswith(G), child.tag
            fields.setdefault(child.tag[len(G):], []).append(child.text)
        result.append(fields)
    return result


def only(path: Path) -> dict[str, str]:
    [item] = items(path)
    return {name: values[0] if len(values) == 1 else values for name, values in item.items()}


def test_every_field_is_written_in_the_g_namespace(tmp_path: Path) -> None:
    row = product(3, title="Hoodie", description="Warm & cosy", price=Decimal("49.5"), brand="Acme",
                  gtin="0012345678905", mpn="H-3", item_group_id="H", condition="Refurbished",
                  categories=["Clothing", "Hoodies"], inventory_quantity=2,
                  extras={"additional_image_links": ["https://shop.example/i/3b.png", "https://shop.example/i/3c.png"],
                          "google_product_category": "Apparel & Accessories > Clothing"})

    result = write("google_rss", [row], tmp_path)

    assert only(result.parts[0].path) == {
        "id": "SKU-3", "title": "Hoodie", "description": "Warm & cosy", "link": "https://shop.example/p/3",
        "image_link": "https://shop.example/i/3.png",
        "additional_image_link": ["https://shop.example/i/3b.png", "https://shop.example/i/3c.png"],
        "availability": "in_stock", "price": "49.50 USD", "brand": "Acme", "gtin": "0012345678905",
        "mpn": "H-3", "item_group_id": "H", "condition": "refurbished", "product_type": "Clothing > Hoodies",
        "google_product_category": "Apparel & Accessories > Clothing",
    }
    check_parts(result)


def test_namespace_is_declared_once_on_the_root_and_channel_comes_from_the_caller(tmp_path: Path) -> None:
    channel = {"title": "Acme & Co", "link": "https://shop.example/", "description": "All products"}

    result = write("google_rss", [product(number) for number in range(1, 6)], tmp_path, channel=channel)

    data = result.parts[0].path.read_bytes()
    assert data.count(b"xmlns:g=") == 1
    root = parse_xml(result.parts[0].path)
    assert root.tag == "rss" and root.get("version") == "2.0"
    assert root.nsmap == {"g": "http://base.google.com/ns/1.0"}
    assert all(node.nsmap == root.nsmap for node in root.iter())  # nothing re-declared below the root
    assert [root.findtext(f"channel/{name}") for name in ("title", "link", "description")] == [
        "Acme & Co", "https://shop.example/", "All products"]
    assert len(items(result.parts[0].path)) == 5


@pytest.mark.parametrize(("price", "currency", "expected"), [
    (Decimal("15"), "USD", "15.00 USD"),
    (Decimal("9.9"), "eur", "9.90 EUR"),
    (Decimal("0.125"), "USD", "0.13 USD"),
    (Decimal("1E+3"), "GBP", "1000.00 GBP"),
    (Decimal("12.345"), None, "12.35 CAD"),  # no currency on the product: the feed's default
])
def test_price_has_two_decimals_and_a_currency(price: Decimal, currency: str | None, expected: str,
                                               tmp_path: Path) -> None:
    result = write("google_rss", [product(price=price, currency=currency)], tmp_path, default_currency="CAD")

    assert only(result.parts[0].path)["price"] == expected


def test_compare_at_price_above_the_price_makes_a_sale(tmp_path: Path) -> None:
    products = [product(1, price=Decimal("15"), compare_at_price=Decimal("20")),
                product(2, price=Decimal("15"), compare_at_price=Decimal("15")),
                product(3, price=Decimal("15"), compare_at_price=Decimal("-3"))]

    result = write("google_rss", products, tmp_path)

    sale, same, negative = items(result.parts[0].path)
    assert (sale["price"], sale["sale_price"]) == (["20.00 USD"], ["15.00 USD"])
    assert same["price"] == ["15.00 USD"] and "sale_price" not in same
    assert negative["price"] == ["15.00 USD"] and "sale_price" not in negative
    assert result.report["warning_counts"] == {"bad_number:compare_at_price": 1}


@pytest.mark.parametrize(("quantity", "availability"), [
    (3, "in_stock"), (0, "out_of_stock"), (-2, "out_of_stock"), (None, "in_stock"), ("4", "in_stock")])
def test_availability_follows_stock(quantity: object, availability: str, tmp_path: Path) -> None:
    result = write("google_rss", [product(inventory_quantity=quantity)], tmp_path)

    assert only(result.parts[0].path)["availability"] == availability


def test_identifier_exists_is_no_only_without_gtin_and_mpn(tmp_path: Path) -> None:
    products = [product(1), product(2, gtin="0012345678905"), product(3, mpn="M-3", brand="Acme")]

    result = write("google_rss", products, tmp_path)

    plain, with_gtin, with_mpn = items(result.parts[0].path)
    assert plain["identifier_exists"] == ["no"]
    assert "identifier_exists" not in with_gtin and "identifier_exists" not in with_mpn


def test_condition_defaults_to_new_and_unknown_values_are_replaced(tmp_path: Path) -> None:
    products = [product(1), product(2, condition=" USED "), product(3, condition="broken")]

    result = write("google_rss", products, tmp_path)

    assert [item["condition"] for item in items(result.parts[0].path)] == [["new"], ["used"], ["new"]]
    assert result.report["warnings"] == ["condition left out on 1 item: not one of new, refurbished, used"]


def test_google_limits_skip_long_ids_and_cut_long_text(tmp_path: Path) -> None:
    products = [product(1, external_id="x" * 51), product(2, external_id="y" * 50, title="t" * 200,
                                                          description="d" * 6000)]

    result = write("google_rss", products, tmp_path)

    [item] = items(result.parts[0].path)
    assert item["id"] == ["y" * 50]
    assert len(item["title"][0]) == 150 and len(item["description"][0]) == 5000
    assert result.report["skipped"] == {"too_long:external_id": 1}
    assert result.report["warning_counts"] == {"truncated:title": 1, "truncated:description": 1}
    assert "title cut to 150 characters on 1 item" in result.report["warnings"]


def test_price_is_required(tmp_path: Path) -> None:
    result = write("google_rss", [product(1, price=None), product(2)], tmp_path)

    assert result.report["skipped"] == {"missing_required:price": 1}
    assert [item["id"] for item in items(result.parts[0].path)] == [["SKU-2"]]


def test_additional_images_drop_bad_links_and_keep_at_most_ten(tmp_path: Path) -> None:
    links = ",".join(f"https://shop.example/i/{number}.png" for number in range(12))
    products = [product(1, extras={"additional_image_link": links}),
                product(2, extras={"additional_image_links": ["/relative.png", "https://shop.example/ok.png"]})]

    result = write("google_rss", products, tmp_path)

    first, second = items(result.parts[0].path)
    assert first["additional_image_link"] == [f"https://shop.example/i/{number}.png" for number in range(10)]
    assert second["additional_image_link"] == ["https://shop.example/ok.png"]
    assert result.report["warning_counts"] == {"too_many:additional_image_link": 1,
                                               "bad_url:additional_image_link": 1}


def test_split_parts_each_repeat_the_channel_and_hold_every_item_once(tmp_path: Path) -> None:
    products = [product(number) for number in range(1, 31)]

    result = write("google_rss", products, tmp_path, basename="google", split_bytes=2048,
                   channel={"title": "Shop"})

    assert len(result.parts) > 3
    ids = []
    for part in result.parts:
        assert part.bytes <= 2048
        assert parse_xml(part.path).findtext("channel/title") == "Shop"
        ids += [item["id"][0] for item in items(part.path)]
    assert ids == [f"SKU-{number}" for number in range(1, 31)]
    check_parts(result)


def test_hostile_text_in_every_field_still_parses(tmp_path: Path) -> None:
    hostile = "]]> & <b>\"'\x00\x0b\x1f\ud800 😀 עברית\r\n"
    row = product(title=hostile, description=hostile, brand=hostile, mpn=hostile, item_group_id=hostile,
                  categories=[hostile], extras={"google_product_category": hostile})

    result = write("google_rss", [row], tmp_path, channel={"title": hostile, "description": hostile})

    item = only(result.parts[0].path)
    expected = "]]> & <b>\"' 😀 עברית\r\n"
    assert item["description"] == expected.strip()
    assert item["brand"] == expected.strip() and item["product_type"] == expected.strip()
    assert parse_xml(result.parts[0].path).findtext("channel/title") == expected
    assert etree.tostring(parse_xml(result.parts[0].path))  # serialisable again
