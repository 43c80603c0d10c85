"""Sendlane's catalog bodies from the reconcile's plan: categories with their parents, one product per item
with its variants, skips named."""

from __future__ import annotations

from webapp.services.platform_catalogs.plan import category_id
from workers.destinations import sendlane_catalog
from workers.destinations.klaviyo_catalog import Entity


def _category(name: str) -> Entity:
    return Entity("category", category_id(name), {"name": name})


def test_nested_categories_bring_their_parents_first() -> None:
    shaped = sendlane_catalog.categories([_category("Clothing > Tshirts"), _category("Clothing > Hoodies > Zip"),
                                          _category("Music")], category_id)
    bodies = [entity.attributes for entity in shaped]
    assert bodies[:2] == [{"category_id": "clothing", "name": "Clothing"}, {"category_id": "music", "name": "Music"}]
    assert {"category_id": "clothing-hoodies-zip", "name": "Zip", "parent_id": "clothing-hoodies"} in bodies
    order = [body["category_id"] for body in bodies]
    assert all(order.index(body["parent_id"]) < order.index(body["category_id"]) for body in bodies
               if "parent_id" in body)
    assert len(order) == len(set(order)) == 5


def _variant(external_id: str, item: str, quantity: int, image: str | None = None) -> Entity:
    attributes = {"title": f"Tee {external_id}", "sku": external_id, "price": 10.0, "url": "https://s.test/p",
                  "inventory_quantity": quantity, "image_full_url": image}
    return Entity("variant", external_id, {k: v for k, v in attributes.items() if v is not None}, {"item": item})


def test_an_item_and_its_variants_become_one_product() -> None:
    item = Entity("item", "G1", {"title": "Tee", "price": 10.0, "url": "https://s.test/p",
                                 "image_full_url": "https://s.test/i.png", "custom_metadata": {"brand": "B"}},
                  {"categories": ["clothing-tshirts"]}, product_key="1:V1")
    lonely = Entity("item", "P9", {"title": "No image", "price": 3.0, "url": "https://s.test/9"}, {},
                    product_key="1:P9")
    skipped: list[tuple[str, str]] = []
    (product,) = sendlane_catalog.products(
        [item, _variant("V1", "G1", 3), _variant("V2", "G1", 0, "https://s.test/v2.png"), lonely,
         _variant("P9", "P9", 1)], {"clothing-tshirts": "Clothing > Tshirts"},
        lambda reason, key: skipped.append((reason, key)))
    assert product.attributes == {
        "product_id": "G1", "product_name": "Tee", "item_price": 10.0, "product_url": "https://s.test/p",
        "image_url": "https://s.test/i.png", "categories": ["Clothing > Tshirts"], "brand": "B",
        "variants": [{"id": "V1", "name": "Tee V1", "sku": "V1", "price": 10.0, "image_url": "https://s.test/i.png",
                      "inventory_level": 3},
                     {"id": "V2", "name": "Tee V2", "sku": "V2", "price": 10.0, "image_url": "https://s.test/v2.png",
                      "inventory_level": 0}]}
    assert skipped == [("no image URL (Sendlane needs one)", "1:P9")]
    assert sendlane_catalog.request(product) == ("/tracking/product-added", product.attributes)
    again = sendlane_catalog.products([item, _variant("V1", "G1", 4), _variant("V2", "G1", 0, "https://s.test/v2.png")],
                                      {"clothing-tshirts": "Clothing > Tshirts"}, lambda *_: None)
    assert again[0].digest != product.digest  # an inventory change is a change to send
