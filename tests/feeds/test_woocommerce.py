from decimal import Decimal
from pathlib import Path

from feeds.product import Product, RowProblem
from feeds.readers import inspect_source, read_products
from tests.fixtures import WOOCOMMERCE_SAMPLE

HEADER = ("ID,Type,SKU,Name,Published,Description,\"Short description\",\"Date sale price starts\","
          "\"Date sale price ends\",\"In stock?\",Stock,\"Sale price\",\"Regular price\",Categories,Images,"
          "Parent,Brands,\"Attribute 1 name\",\"Attribute 1 value(s)\"\n")


def read(path: Path, **options):
    stream = read_products("woocommerce", path, options={"store_url": "https://shop.test", **options})
    items = list(stream)
    return items, stream.stats


def by_id(items) -> dict[str, Product]:
    return {item.external_id: item for item in items if isinstance(item, Product)}


def test_sample_export_counts():
    items, stats = read(WOOCOMMERCE_SAMPLE)
    # The sample repeats the 25-product WooCommerce demo 16 times: 2 variable parents and 1 grouped
    # product per copy are not sellable items.
    assert stats.rows_read == 400
    assert stats.skipped == {"variable parent": 32, "grouped": 16}
    assert len(items) == 352 and all(isinstance(item, Product) for item in items)
    assert len(by_id(items)) == 22


def test_sample_variation_inherits_from_its_parent():
    items = by_id(read(WOOCOMMERCE_SAMPLE)[0])
    red_hoodie = items["79"]
    assert (red_hoodie.title, red_hoodie.item_group_id, red_hoodie.sku) == ("Hoodie - Red, No", "45", "woo-hoodie-red")
    assert red_hoodie.categories == ["Clothing", "Hoodies"]  # the variation row has no categories of its own
    assert (red_hoodie.price, red_hoodie.compare_at_price) == (Decimal("42"), Decimal("45"))
    assert red_hoodie.image_link.endswith("/hoodie-2.jpg")
    assert red_hoodie.link == "https://shop.test/?post_type=product&p=45"
    assert red_hoodie.extras["Color"] == "Red" and red_hoodie.extras["type"] == "variation"
    vneck = items["78"]
    assert (vneck.item_group_id, vneck.price, vneck.categories) == ("44", Decimal("15"), ["Clothing", "Tshirts"])


def test_sample_simple_and_external_products():
    items = by_id(read(WOOCOMMERCE_SAMPLE)[0])
    beanie = items["48"]
    assert (beanie.title, beanie.item_group_id, beanie.price, beanie.compare_at_price) == (
        "Beanie", None, Decimal("18"), Decimal("20"))
    assert beanie.extras["availability"] == "in_stock" and beanie.link == "https://shop.test/?post_type=product&p=48"
    pennant = items["89"]
    assert (pennant.price, pennant.extras["type"]) == (Decimal("11.05"), "external")
    assert "44" not in items and "87" not in items  # variable parent, grouped product


def test_parent_by_id_reference_after_its_variations_with_empty_fields(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(HEADER +
                    "11,variation,H-B,,1,,,,,1,3,,30,,,id:10,,Color,Blue\n"
                    "12,variation,H-R,,1,,,2000-01-01,2000-02-01,0,,25,30,,,id:10,,Color,Red\n"
                    "10,variable,H,Hoodie,1,\"<p>Warm<br>and soft</p>\",,,,1,,,,\"Men > Tops, Sale\\, Summer\","
                    "https://x.test/h.jpg,,\"Acme > Apparel\",Color,\"Blue, Red\"\n")
    items, stats = read(path)
    blue, red = items
    assert (blue.title, blue.item_group_id, blue.description) == ("Hoodie - Blue", "10", "Warm\nand soft")
    assert blue.categories == ["Men", "Tops", "Sale, Summer"]
    assert (blue.image_link, blue.brand, blue.inventory_quantity) == ("https://x.test/h.jpg", "Acme", 3)
    # The sale window ended long ago, so the regular price applies; "In stock?" 0 means no stock.
    assert (red.price, red.compare_at_price, red.inventory_quantity) == (Decimal("30"), None, 0)
    assert stats.skipped == {"variable parent": 1}


def test_drafts_private_and_variations_of_drafts_are_skipped_and_counted(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(HEADER +
                    "1,simple,A,Draft,-1,,,,,1,,,5,,,,,,\n"
                    "2,simple,B,Private,0,,,,,1,,,5,,,,,,\n"
                    "3,variable,C,Hidden parent,-1,,,,,1,,,,,,,,,\n"
                    "4,variation,C-1,,1,,,,,1,,,5,,,C,,Size,L\n"
                    "5,simple,D,Live,1,,,,,1,,,5,,,,,,\n")
    items, stats = read(path)
    assert [item.external_id for item in items] == ["5"]
    assert stats.skipped == {"unpublished": 4}


def test_variation_of_an_unknown_parent_without_a_name_is_a_problem(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(HEADER + "7,variation,X,,1,,,,,1,,,5,,,id:999,,Size,L\n")
    (problem,), _ = read(path)
    assert isinstance(problem, RowProblem)
    assert (problem.row, problem.field, problem.external_id) == (2, "title", "7")


def test_inspection_shows_the_export_columns_and_builtin_mapping():
    inspection = inspect_source("woocommerce", WOOCOMMERCE_SAMPLE, {})
    assert inspection.options["delimiter"] == "," and inspection.options["encoding"] == "utf-8-sig"
    assert inspection.columns[:4] == ["ID", "Type", "SKU", "Name"]
    assert inspection.detected_mapping["price"] == "Regular price"
    assert inspection.sample_rows[0]["Name"] == "V-Neck T-Shirt"
