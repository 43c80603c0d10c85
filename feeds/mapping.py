"""Turn one raw source row (a dict of column -> value) into a normalised Product.

A mapping says which source column feeds which product field ("target"). `detect_mapping` guesses it
from column names; the dashboard lets the user correct it; `apply_mapping` applies it row by row.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import orjson

from feeds.money import parse_money
from feeds.product import Product, RowProblem

# Product fields a column can feed. `sale_price` and `availability` are inputs only: a sale price becomes
# the price (the regular one moves to compare_at_price); "out of stock" means a quantity of 0 when none is given.
PRODUCT_TARGETS: tuple[str, ...] = (
    "external_id", "item_group_id", "title", "description", "link", "image_link", "price",
    "compare_at_price", "currency", "brand", "categories", "inventory_quantity", "inventory_policy",
    "sku", "gtin", "mpn", "condition", "sale_price", "availability",
)
REQUIRED_TARGETS: tuple[str, ...] = ("external_id", "title")

# Normalised column names (see `normalise_column`) each target answers to, best first.
_CANDIDATES: dict[str, tuple[str, ...]] = {
    "external_id": ("id", "productid", "itemid", "offerid", "variantid", "uniqueid", "sku"),
    "item_group_id": ("itemgroupid", "groupid", "parentid", "parent", "parentsku", "productgroupid"),
    "title": ("title", "name", "productname", "producttitle", "itemname"),
    "description": ("description", "productdescription", "longdescription", "bodyhtml", "body",
                    "shortdescription", "summary"),
    "link": ("link", "url", "permalink", "producturl", "productlink", "pageurl", "canonicalurl"),
    "image_link": ("imagelink", "image", "images", "imageurl", "imageurls", "mainimage", "picture",
                   "imagesrc", "thumbnail", "photo"),
    "price": ("price", "regularprice", "listprice", "baseprice", "priceamount"),
    "sale_price": ("saleprice", "specialprice", "discountprice", "discountedprice", "offerprice"),
    "compare_at_price": ("compareatprice", "compareprice", "originalprice", "oldprice", "msrp", "rrp"),
    "currency": ("currency", "currencycode", "pricecurrency"),
    "brand": ("brand", "brands", "vendor", "manufacturer", "brandname"),
    "categories": ("categories", "category", "producttype", "categorypath", "collections",
                   "googleproductcategory"),
    "inventory_quantity": ("inventoryquantity", "quantity", "stock", "stockquantity", "qty", "inventory",
                           "stocklevel"),
    "inventory_policy": ("inventorypolicy",),
    "sku": ("sku", "productsku", "itemsku", "articlenumber"),
    "gtin": ("gtin", "gtinupceanorisbn", "ean", "upc", "isbn", "barcode", "gtin13", "ean13", "gtin14",
             "gtin12", "gtin8", "jan"),
    "mpn": ("mpn", "manufacturerpartnumber", "partnumber"),
    "condition": ("condition", "itemcondition"),
    "availability": ("availability", "instock", "stockstatus", "isinstock", "available"),
}

_AVAILABILITY = {
    "instock": "in_stock", "1": "in_stock", "yes": "in_stock", "true": "in_stock", "available": "in_stock",
    "outofstock": "out_of_stock", "0": "out_of_stock", "no": "out_of_stock", "false": "out_of_stock",
    "soldout": "out_of_stock", "unavailable": "out_of_stock", "preorder": "preorder",
    "backorder": "backorder", "onbackorder": "backorder",
}
_POLICIES = {"1": 1, "2": 2, "deny": 1, "hide": 1, "continue": 2, "show": 2}
_IMAGE_SPLIT = re.compile(r"\s*\|\s*|\s*,(?:\s+|(?=(?:https?:)?//))")
_PATH_SPLIT = re.compile(r"\s*(?<!\\)[,|]\s*")
_LEVEL_SPLIT = re.compile(r"\s*>\s*")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>|<!--")


def normalise_column(name: str) -> str:
    """Column name reduced for matching: case, spaces, punctuation and a `g:` / `$` prefix ignored."""
    lowered = name.strip().lower()
    for prefix in ("g:", "$"):
        lowered = lowered.removeprefix(prefix)
    return re.sub(r"[^0-9a-z]", "", lowered)


def column_names(row: Mapping[str, Any], prefix: str = "") -> list[str]:
    """A row's mappable columns: nested JSON objects are reached by dotted names ("price.amount")."""
    names: list[str] = []
    for key, value in row.items():
        if isinstance(value, Mapping) and value:
            names.extend(column_names(value, f"{prefix}{key}."))
        elif key is not None:
            names.append(f"{prefix}{key}")
    return names


def detect_mapping(columns: Iterable[str]) -> dict[str, str]:
    """Guess target -> source column from the names a source uses."""
    by_name: dict[str, str] = {}
    columns = list(columns)
    for column in columns:
        by_name.setdefault(normalise_column(column), column)
    for column in columns:  # nested JSON/XML names ("images.image") also answer to their first part
        if "." in column:
            by_name.setdefault(normalise_column(column.split(".", 1)[0]), column)
    mapping: dict[str, str] = {}
    for target, candidates in _CANDIDATES.items():
        column = next((by_name[c] for c in candidates if c in by_name), None)
        if column is not None:
            mapping[target] = column
    if mapping.get("price") and mapping.get("price") == mapping.get("sale_price"):
        del mapping["sale_price"]
    return mapping


def defaults_from(options: Mapping[str, Any]) -> dict[str, Any]:
    """Fallback values for every row: `options["defaults"]` plus the `currency` and `store_url` options."""
    defaults = dict(options.get("defaults") or {})
    if options.get("currency"):
        defaults.setdefault("currency", options["currency"])
    if options.get("store_url"):
        defaults.setdefault("base_url", options["store_url"])
    return defaults


class _FieldError(Exception):
    def __init__(self, target: str, message: str) -> None:
        super().__init__(message)
        self.target = target


def apply_mapping(row: Mapping[str, Any], mapping: Mapping[str, str], row_number: int,
                  defaults: Mapping[str, Any] | None = None) -> Product | RowProblem:
    """Build a Product from `row`, or say what is wrong with the row.

    Args:
        row: column -> raw value (text from CSV/XML; any JSON value from JSON sources).
        mapping: target -> column; targets not mapped are left empty.
        row_number: where the row sits in the source, for the user.
        defaults: target -> value used when the row has none (e.g. "currency"), and "base_url"
            against which relative links are resolved.
    """
    defaults = defaults or {}

    def value(target: str) -> Any:
        column = mapping.get(target)
        found = lookup(row, column) if column else None
        return defaults.get(target) if _blank(found) else found

    external_id = _id_text(value("external_id"))
    if not external_id:
        return RowProblem(row_number, f"no id (column {mapping.get('external_id') or 'not mapped'})",
                          None, "external_id")
    try:
        product = _build(value, external_id, defaults)
    except _FieldError as exc:
        return RowProblem(row_number, str(exc), external_id, exc.target)
    if not product.title:
        return RowProblem(row_number, f"no title (column {mapping.get('title') or 'not mapped'})",
                          external_id, "title")
    used = {column for column in mapping.values() if column}
    product.extras.update((k, v) for k, v in flatten_extras(row).items() if k not in used)
    return product


def _build(value: Any, external_id: str, defaults: Mapping[str, Any]) -> Product:
    price, price_currency = _money(value("price"), "price", None)
    sale, sale_currency = _money(value("sale_price"), "sale_price", None)
    compare, _ = _money(value("compare_at_price"), "compare_at_price", None)
    if sale is not None:
        if price is not None and price > sale:
            compare = price
        price = sale
    if compare is not None and (price is None or compare <= price):
        compare = None  # a "was" price is only meaningful above the price
    images = image_list(value("image_link"))
    paths = category_paths(value("categories"))
    product = Product(
        external_id=external_id,
        item_group_id=(_id_text(value("item_group_id")) or "").removeprefix("id:") or None,
        title=html_to_text(text(value("title")) or ""),
        description=html_to_text(text(value("description")) or ""),
        link=_link(text(value("link")), defaults.get("base_url")),
        image_link=images[0] if images else None,
        price=price, compare_at_price=compare,
        currency=_currency(value("currency")) or price_currency or sale_currency,
        brand=text(value("brand")),
        categories=list(dict.fromkeys(level for path in paths for level in _LEVEL_SPLIT.split(path))),
        inventory_quantity=_int(value("inventory_quantity"), "inventory_quantity"),
        inventory_policy=_policy(value("inventory_policy")),
        sku=_id_text(value("sku")), gtin=_id_text(value("gtin")), mpn=_id_text(value("mpn")),
        condition=(text(value("condition")) or "").lower() or None,
    )
    if len(images) > 1:
        product.extras["additional_image_links"] = images[1:]
    if any(">" in path for path in paths):
        product.extras["category_paths"] = paths
    availability = text(value("availability"))
    if availability:
        state = _AVAILABILITY.get(re.sub(r"[^0-9a-z]", "", availability.lower()), availability.lower())
        product.extras["availability"] = state
        if state == "out_of_stock" and product.inventory_quantity is None:
            product.inventory_quantity = 0
    return product


def lookup(row: Mapping[str, Any], column: str) -> Any:
    """Value of `column`; a dotted name reaches into nested JSON objects ("price.amount")."""
    if column in row:
        return row[column]
    current: Any = row
    for part in column.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def text(value: Any) -> str | None:
    """A raw value as trimmed text (None when blank); lists become "a, b"."""
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, list):
        return ", ".join(filter(None, (text(v) for v in value))) or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip() or None


def _id_text(value: Any) -> str | None:
    return text(value[0] if isinstance(value, list) and value else value)


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or (isinstance(value, str) and not value.strip())


def _money(raw: Any, target: str, default_currency: str | None) -> tuple[Decimal | None, str | None]:
    if isinstance(raw, dict | list):
        raise _FieldError(target, f"{target}: expected a price, found a JSON {type(raw).__name__}; "
                                  f"map a field inside it (e.g. {target}.amount)")
    try:
        amount, currency = parse_money(raw, default_currency)
    except ValueError as exc:
        raise _FieldError(target, f"{target}: {exc}") from None
    if amount is not None and amount < 0:
        raise _FieldError(target, f"{target} must not be negative ({raw})")
    return amount, currency


def _currency(raw: Any) -> str | None:
    code = text(raw)
    if code is None:
        return None
    if not re.fullmatch(r"[A-Za-z]{3}", code):
        raise _FieldError("currency", f"currency {code!r} is not a 3-letter ISO 4217 code")
    return code.upper()


def _int(raw: Any, target: str) -> int | None:
    value = text(raw)
    if value is None:
        return None
    try:
        number = Decimal(value.replace(",", ""))
    except ArithmeticError:
        raise _FieldError(target, f"{target}: {value!r} is not a number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise _FieldError(target, f"{target}: {value!r} is not a whole number")
    return int(number)


def _policy(raw: Any) -> int | None:
    value = text(raw)
    if value is None:
        return None
    if value.lower() not in _POLICIES:
        raise _FieldError("inventory_policy", f"inventory_policy {value!r} is not 1, 2, deny or continue")
    return _POLICIES[value.lower()]


def _link(link: str | None, base_url: str | None) -> str | None:
    if link and base_url and "://" not in link:
        return urljoin(base_url.rstrip("/") + "/", link)
    return link


def image_list(raw: Any) -> list[str]:
    """Image URLs from "a.jpg, b.jpg", "a|b", a JSON list of URLs or of {"src": ...} objects."""
    if isinstance(raw, list):
        urls = [_image_url(item) for item in raw]
    elif isinstance(raw, dict):
        urls = [_image_url(raw)]
    else:
        urls = _IMAGE_SPLIT.split(text(raw) or "")
    return list(dict.fromkeys(url.strip() for url in urls if url and url.strip()))


def _image_url(item: Any) -> str | None:
    if isinstance(item, dict):
        return next((text(item[k]) for k in ("src", "url", "href", "link") if text(item.get(k))), None)
    return text(item)


def category_paths(raw: Any) -> list[str]:
    """Category paths from "A > B, C" (WooCommerce; "\\," escapes a comma), "A|B" or a list."""
    items = raw if isinstance(raw, list) else [raw]
    paths: list[str] = []
    for item in items:
        for path in _PATH_SPLIT.split(text(item) or ""):
            path = _LEVEL_SPLIT.sub(" > ", path.replace("\\,", ",").strip(" >"))
            if path and path not in paths:
                paths.append(path)
    return paths


def flatten_extras(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Unmapped columns as one flat level (feeds must be one node deep); blanks dropped."""
    flat: dict[str, Any] = {}
    for key, raw in values.items():
        if key is None or _blank(raw):
            continue
        name = f"{prefix}{key}"
        if isinstance(raw, dict):
            flat.update(flatten_extras(raw, f"{name}."))
        elif isinstance(raw, list) and any(isinstance(v, dict | list) for v in raw):
            flat[name] = orjson.dumps(raw).decode()
        elif isinstance(raw, str):
            flat[name] = raw.strip()
        else:
            flat[name] = raw
    return flat


class _TextExtractor(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5",
                         "h6", "section", "article", "blockquote", "hr", "dd", "dt"})
    _HIDDEN = frozenset({"script", "style", "template", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self.hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data.replace("\n", " "))  # source line breaks are spaces in HTML


def html_to_text(value: str) -> str:
    """Plain text from an HTML fragment: tags dropped, entities decoded, blocks on their own lines."""
    if not _HTML_TAG.search(value):
        return (html.unescape(value) if "&" in value else value).strip()
    extractor = _TextExtractor()
    extractor.feed(value)
    extractor.close()
    lines = (re.sub(r"[ \t\r\f\v\u00a0]+", " ", line).strip() for line in "".join(extractor.parts).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
