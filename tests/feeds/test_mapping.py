from decimal import Decimal

from feeds.mapping import PRODUCT_TARGETS, apply_mapping, detect_mapping, html_to_text
from feeds.product import Product, RowProblem

MAPPING = {"external_id": "id", "title": "name", "price": "price", "sale_price": "sale", "categories": "cats",
           "image_link": "images", "inventory_quantity": "stock", "description": "desc", "link": "url",
           "availability": "avail", "currency": "cur"}


def product(row, mapping=MAPPING, defaults=None) -> Product:
    result = apply_mapping({"id": "1", "name": "Tee", **row}, mapping, 7, defaults)
    assert isinstance(result, Product), result
    return result


def test_targets_cover_every_product_field_a_source_can_feed():
    assert set(PRODUCT_TARGETS) >= {"external_id", "item_group_id", "title", "description", "link",
                                    "image_link", "price", "compare_at_price", "currency", "brand",
                                    "categories", "inventory_quantity", "inventory_policy", "sku", "gtin",
                                    "mpn", "condition"}


def test_detects_common_column_names_ignoring_case_spaces_and_underscores():
    mapping = detect_mapping(["Product_ID", "TITLE", "Regular price", "Sale price", "Permalink", "image url",
                              "Categories", "Stock", "SKU", "GTIN, UPC, EAN, or ISBN", "Brands", "Parent",
                              "Something else"])
    assert mapping == {
        "external_id": "Product_ID", "title": "TITLE", "price": "Regular price", "sale_price": "Sale price",
        "link": "Permalink", "image_link": "image url", "categories": "Categories",
        "inventory_quantity": "Stock", "sku": "SKU", "gtin": "GTIN, UPC, EAN, or ISBN", "brand": "Brands",
        "item_group_id": "Parent",
    }


def test_detects_google_prefixed_and_alternative_names():
    mapping = detect_mapping(["g:id", "name", "url", "images", "EAN", "vendor", "g:price", "qty"])
    assert mapping == {"external_id": "g:id", "title": "name", "link": "url", "image_link": "images",
                       "gtin": "EAN", "brand": "vendor", "price": "g:price", "inventory_quantity": "qty"}


def test_sku_stands_in_for_a_missing_id_column():
    assert detect_mapping(["SKU", "Name"])["external_id"] == "SKU"


def test_sale_price_becomes_price_and_regular_moves_to_compare_at():
    item = product({"price": "20", "sale": "18"})
    assert (item.price, item.compare_at_price) == (Decimal("18"), Decimal("20"))
    plain = product({"price": "1.299,00 EUR", "sale": ""})
    assert (plain.price, plain.compare_at_price, plain.currency) == (Decimal("1299.00"), None, "EUR")


def test_currency_column_wins_and_defaults_fill_in():
    assert product({"price": "5 USD", "cur": "eur"}).currency == "EUR"
    assert product({"price": "5"}, defaults={"currency": "GBP"}).currency == "GBP"


def test_woocommerce_category_hierarchy_and_escaped_commas():
    item = product({"cats": "Clothing > Hoodies, Music|Sale\\, Summer"})
    assert item.categories == ["Clothing", "Hoodies", "Music", "Sale, Summer"]
    assert item.extras["category_paths"] == ["Clothing > Hoodies", "Music", "Sale, Summer"]


def test_images_first_is_main_rest_are_additional():
    item = product({"images": "a.jpg, b.jpg|https://x.test/w_200,h_100/c.jpg"})
    assert item.image_link == "a.jpg"
    assert item.extras["additional_image_links"] == ["b.jpg", "https://x.test/w_200,h_100/c.jpg"]
    listed = product({"images": [{"src": "https://x.test/1.jpg"}, {"src": "https://x.test/2.jpg"}]})
    assert listed.image_link == "https://x.test/1.jpg"


def test_html_descriptions_become_plain_text():
    item = product({"desc": "<p>Soft &amp; warm</p><ul><li>Cotton</li><li>Hood</li></ul><script>x()</script>"})
    assert item.description == "Soft & warm\n\nCotton\n\nHood"
    assert html_to_text("Tom &amp; Jerry") == "Tom & Jerry"
    assert html_to_text("5 < 6 and 7 > 3") == "5 < 6 and 7 > 3"


def test_stock_is_an_integer_and_out_of_stock_means_zero():
    assert product({"stock": "12.0"}).inventory_quantity == 12
    assert product({"stock": ""}).inventory_quantity is None
    sold_out = product({"avail": "out of stock"})
    assert (sold_out.inventory_quantity, sold_out.extras["availability"]) == (0, "out_of_stock")


def test_unmapped_columns_land_flat_in_extras():
    item = product({"color": "Blue", "empty": "", "dims": {"w": 2, "h": {"cm": 3}}, "tags": ["a", "b"]})
    assert item.extras == {"color": "Blue", "dims.w": 2, "dims.h.cm": 3, "tags": ["a", "b"]}


def test_relative_links_resolve_against_the_store_url():
    assert product({"url": "/p/tee"}, defaults={"base_url": "https://shop.test"}).link == "https://shop.test/p/tee"
    assert product({"url": "https://other.test/x"}, defaults={"base_url": "https://shop.test"}).link == \
        "https://other.test/x"


def test_missing_id_or_title_is_a_row_problem():
    no_id = apply_mapping({"id": " ", "name": "Tee"}, MAPPING, 3, None)
    assert isinstance(no_id, RowProblem)
    assert (no_id.row, no_id.field) == (3, "external_id")
    no_title = apply_mapping({"id": "9", "name": ""}, MAPPING, 4, None)
    assert isinstance(no_title, RowProblem)
    assert (no_title.field, no_title.external_id) == ("title", "9")


def test_bad_values_are_row_problems_naming_the_field():
    bad_price = apply_mapping({"id": "1", "name": "Tee", "price": "call us"}, MAPPING, 5, None)
    assert isinstance(bad_price, RowProblem)
    assert bad_price.field == "price" and "call us" in bad_price.message
    negative = apply_mapping({"id": "1", "name": "Tee", "price": "-3"}, MAPPING, 5, None)
    assert isinstance(negative, RowProblem) and "negative" in negative.message
    bad_stock = apply_mapping({"id": "1", "name": "Tee", "stock": "lots"}, MAPPING, 5, None)
    assert isinstance(bad_stock, RowProblem) and bad_stock.field == "inventory_quantity"


def test_json_numbers_as_ids_and_parent_references():
    item = apply_mapping({"id": 42.0, "name": "Tee", "parent": "id:7"},
                         {"external_id": "id", "title": "name", "item_group_id": "parent"}, 1, None)
    assert isinstance(item, Product)
    assert (item.external_id, item.item_group_id) == ("42", "7")
