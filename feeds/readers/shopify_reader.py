"""Shopify-style products.json: every variant becomes its own item grouped under its product.

The file is either one `{"products": [...]}` document or, as `fetch_shopify_pages` writes it, one such
page object per line (read page by page).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from feeds.mapping import text
from feeds.product import RowProblem
from feeds.readers import json_reader

BUILTIN_MAPPING: dict[str, str] = {
    "external_id": "id", "item_group_id": "product_id", "title": "title", "description": "body_html",
    "link": "link", "image_link": "images", "price": "price", "compare_at_price": "compare_at_price",
    "brand": "vendor", "categories": "product_type", "inventory_quantity": "inventory_quantity",
    "inventory_policy": "inventory_policy", "sku": "sku", "gtin": "barcode", "availability": "available",
}
DEFAULT_VARIANT_TITLE = "Default Title"


def detect_options(path: Path, options: dict[str, Any]) -> dict[str, Any]:
    return json_reader.detect_options(path, options)


def product_link(store_url: str | None, handle: str | None, variant_id: str | None = None) -> str | None:
    """Storefront URL of a product, pointing at the variant when there is one."""
    if not store_url or not handle:
        return None
    link = f"{store_url.rstrip('/')}/products/{handle}"
    return f"{link}?variant={variant_id}" if variant_id else link


def variant_rows(product: dict[str, Any], store_url: str | None) -> list[dict[str, Any]]:
    """One row per variant, carrying what the variant inherits from its product."""
    product_title = text(product.get("title")) or ""
    images = _dicts(product.get("images"))
    option_names = {f"option{o.get('position', i + 1)}": text(o.get("name"))
                    for i, o in enumerate(_dicts(product.get("options")))}
    tags = product.get("tags")
    if isinstance(tags, str):
        tags = [tag.strip() for tag in tags.split(",") if tag.strip()]
    variants = _dicts(product.get("variants")) or [{"id": product.get("id"), "title": DEFAULT_VARIANT_TITLE}]
    rows = []
    for variant in variants:
        variant_title = text(variant.get("title")) or DEFAULT_VARIANT_TITLE
        variant_id = text(variant.get("id"))
        row: dict[str, Any] = {
            "id": variant_id, "product_id": text(product.get("id")),
            "title": product_title if variant_title == DEFAULT_VARIANT_TITLE
            else f"{product_title} - {variant_title}",
            "body_html": product.get("body_html"), "vendor": product.get("vendor"),
            "product_type": product.get("product_type"), "handle": product.get("handle"),
            "link": product_link(store_url, text(product.get("handle")),
                                 variant_id if len(variants) > 1 else None),
            "images": _variant_images(variant, images),
            "price": variant.get("price"), "compare_at_price": variant.get("compare_at_price"),
            "inventory_quantity": variant.get("inventory_quantity"),
            "inventory_policy": variant.get("inventory_policy"),
            "sku": variant.get("sku"), "barcode": variant.get("barcode"),
            "available": variant.get("available"), "tags": tags or None,
        }
        for key, name in option_names.items():
            if name and variant.get(key) and name not in row:
                row[name] = variant[key]
        rows.append(row)
    return rows


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON list (a file from elsewhere may put anything where Shopify puts a list)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _variant_images(variant: dict[str, Any], images: list[Any]) -> list[str]:
    """The variant's own image first, then the product's images."""
    srcs = [image.get("src") for image in images if isinstance(image, dict) and image.get("src")]
    own = (variant.get("featured_image") or {}).get("src") if isinstance(variant.get("featured_image"),
                                                                         dict) else None
    if own is None and variant.get("image_id"):
        own = next((image.get("src") for image in images if isinstance(image, dict)
                    and image.get("id") == variant["image_id"]), None)
    return list(dict.fromkeys(src for src in [own, *srcs] if isinstance(src, str) and src))


def _skip_reason(product: dict[str, Any]) -> str | None:
    status = product.get("status")
    if status is not None and status != "active":
        return f"status {status}"
    if "published_at" in product and product["published_at"] is None:
        return "unpublished"
    return None


def iter_rows(path: Path, options: dict[str, Any],
              stats: Any = None) -> Iterator[tuple[int, dict[str, Any] | RowProblem]]:
    number = 0
    for product_number, product in json_reader.iter_items(path, options, stats):
        if not isinstance(product, dict):
            number += 1
            yield number, (product if isinstance(product, RowProblem)
                           else RowProblem(number, f"product {product_number} is not an object"))
            continue
        if isinstance(product.get("product"), dict):
            product = product["product"]  # a single-product document: {"product": {...}}
        reason = _skip_reason(product)
        if reason is not None:
            if stats is not None:
                stats.skip(reason)
            continue
        for row in variant_rows(product, options.get("store_url")):
            number += 1
            yield number, row
