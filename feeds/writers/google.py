"""Google Merchant Center product feed: RSS 2.0 with the `g:` namespace declared once on the root.

Declaring the namespace on `<rss>` only (not per item, as writing whole lxml Elements does) keeps
the file small; prices are "15.00 USD" and a compare-at price above the price becomes a sale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from feeds import validation
from feeds.validation import category_names, format_money, optional_text
from feeds.writers.xml_escape import escape_markup, escape_text

GOOGLE_NAMESPACE = "http://base.google.com/ns/1.0"


class GoogleRss:
    """Renders `<item>` elements inside `<rss><channel>`; every part repeats the channel header."""

    rules = validation.GOOGLE_RULES
    footer = b"</channel>\n</rss>\n"
    separator = b""

    def __init__(self, channel: Mapping[str, Any], default_currency: str) -> None:
        self.default_currency = default_currency
        self.header = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<rss version="2.0" xmlns:g="{GOOGLE_NAMESPACE}">\n<channel>\n'
            f"<title>{escape_text(str(channel.get('title') or 'Products'))}</title>\n"
            f"<link>{escape_text(str(channel.get('link') or ''))}</link>\n"
            f"<description>{escape_text(str(channel.get('description') or ''))}</description>\n"
        ).encode()

    def prepare(self, item: dict[str, Any]) -> None:
        """Nothing to fill in: Google reports missing brands itself."""

    def render(self, item: Mapping[str, Any]) -> bytes:
        currency = validation.item_currency(item, self.default_currency)
        price, sale_price = validation.sale_pricing(item)
        parts = [
            "<item>\n<g:id>", escape_markup(item["external_id"]),
            "</g:id>\n<g:title>", escape_markup(item["title"]),
            "</g:title>\n<g:description>", escape_markup(item["description"]),
            "</g:description>\n<g:link>", escape_markup(item["link"]),
            "</g:link>\n<g:image_link>", escape_markup(item["image_link"]), "</g:image_link>\n",
        ]
        for link in item.get("additional_image_link") or ():
            parts.append(f"<g:additional_image_link>{escape_text(link)}</g:additional_image_link>\n")
        availability = "in_stock" if validation.in_stock(item) else "out_of_stock"
        parts.append(f"<g:availability>{availability}</g:availability>\n")
        parts.append(f"<g:price>{escape_text(format_money(price, currency))}</g:price>\n")
        if sale_price is not None:
            parts.append(f"<g:sale_price>{escape_text(format_money(sale_price, currency))}"
                         "</g:sale_price>\n")
        gtin, mpn = optional_text(item.get("gtin")), optional_text(item.get("mpn"))
        for name, value in (("brand", optional_text(item.get("brand"))), ("gtin", gtin), ("mpn", mpn),
                            ("item_group_id", optional_text(item.get("item_group_id")))):
            if value:
                parts.append(f"<g:{name}>{escape_text(value)}</g:{name}>\n")
        if not gtin and not mpn:
            parts.append("<g:identifier_exists>no</g:identifier_exists>\n")
        parts.append(f"<g:condition>{item.get('condition') or 'new'}</g:condition>\n")
        product_type = " > ".join(category_names(item.get("categories")))
        if product_type:
            parts.append(f"<g:product_type>{escape_text(product_type)}</g:product_type>\n")
        google_category = optional_text((item.get("extras") or {}).get("google_product_category"))
        if google_category:
            parts.append(f"<g:google_product_category>{escape_text(google_category)}"
                         "</g:google_product_category>\n")
        parts.append("</item>\n")
        return "".join(parts).encode()

