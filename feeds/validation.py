"""Per-item checks every feed writer shares, and the validation report they produce.

A feed is fetched by a platform that rejects or silently drops bad items, so each item is checked
here first: items that cannot be published are skipped with a reason the user can act on, values
that can be repaired (too long, unknown condition) are repaired and counted as warnings.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from operator import is_not
from typing import Any

from feeds.product import PRODUCT_FIELDS

MAX_ISSUES = 200
# Fields whose share of written items is reported (extras are free-form, so not counted).
FILL_FIELDS: tuple[str, ...] = tuple(name for name in PRODUCT_FIELDS if name != "extras")
# Numbers count as present even when zero; text and lists only when not empty.
_NUMBER_FILL = ("price", "compare_at_price", "inventory_quantity", "inventory_policy")
_TEXT_FILL = tuple(name for name in FILL_FIELDS if name not in _NUMBER_FILL)
_NONES = (None,) * len(_NUMBER_FILL)
# Where a reader may put a product's further images (a list, or one comma-separated string).
ADDITIONAL_IMAGE_KEYS = ("additional_image_links", "additional_image_link")

_CONDITIONS = frozenset({"new", "refurbished", "used"})
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class FieldRules:
    """What one feed format demands of an item (field names are product field names)."""

    required: tuple[str, ...]  # text fields that must be present and not blank
    price_required: bool = False
    urls: tuple[str, ...] = ("link", "image_link")  # absolute http(s) URLs when present
    max_length: Mapping[str, int] = field(default_factory=dict)  # longer: item skipped (ids can't be cut)
    truncate: Mapping[str, int] = field(default_factory=dict)  # longer: cut, counted as a warning
    allowed: Mapping[str, frozenset] = field(default_factory=dict)  # other values dropped, warned
    any_of: tuple[str, ...] = ()  # at least one must be non-blank
    max_additional_images: int = 0


_BASE = ("external_id", "title", "link", "description", "image_link")
KLAVIYO_RULES = FieldRules(required=_BASE, allowed={"inventory_policy": frozenset({1, 2})})
GOOGLE_RULES = FieldRules(
    required=_BASE, price_required=True, max_length={"external_id": 50},
    truncate={"title": 150, "description": 5000}, allowed={"condition": _CONDITIONS},
    max_additional_images=10)
META_RULES = FieldRules(
    required=_BASE, price_required=True, max_length={"external_id": 100},
    truncate={"title": 200, "description": 9999}, allowed={"condition": _CONDITIONS},
    any_of=("brand", "gtin", "mpn"), max_additional_images=20)


class FeedValidator:
    """Checks items one at a time and keeps the counts for the build's report.

    Memory stays flat except for the set of seen ids, which is fine up to millions of items.
    """

    def __init__(self, rules: FieldRules, *, track_duplicates: bool = True) -> None:
        self.rules = rules
        self.track_duplicates = track_duplicates  # off when the caller guarantees unique ids (saves ~90 MB/1M)
        self.skipped: Counter[str] = Counter()
        self.warning_counts: Counter[str] = Counter()
        self.notes: list[str] = []
        self.issues: list[dict[str, Any]] = []
        self.written = 0
        self._fill_patterns: dict[tuple[bool, ...], int] = {}
        self._seen: set[str] = set()
        # Imported here: feeds.writers imports this module, so a top-level import would be circular.
        from feeds.writers.xml_escape import clean_text, has_forbidden

        self._clean, self._has_forbidden = clean_text, has_forbidden

    def check(self, item: dict[str, Any]) -> bool:
        """Normalise `item` in place; False (with the reason recorded) when it must be skipped."""
        rules = self.rules
        values = [item.get(name) for name in rules.required]
        # Usually every required field is clean text: one scan of them joined replaces a clean() per field.
        try:
            dirty = self._has_forbidden("".join(values))
        except TypeError:  # a missing or non-text value: clean them one by one
            dirty = True
        for name, value in zip(rules.required, values, strict=True):
            if dirty:
                if type(value) is not str:
                    value = "" if value is None else str(value)
                value = self._clean(value)
            text = value.strip()
            if not text:
                return self._skip(item, "missing_required", name)
            item[name] = text
        if rules.any_of and not any(_present(item.get(name)) for name in rules.any_of):
            return self._skip(item, "missing_required", rules.any_of[0])
        for name in rules.urls:
            value = item.get(name)
            if value is not None and not is_absolute_url(value):
                return self._skip(item, "bad_url", name)
        for name, limit in rules.max_length.items():
            if len(item[name]) > limit:
                return self._skip(item, "too_long", name)
        if not self._check_numbers(item):
            return False
        if self.track_duplicates:
            external_id = item["external_id"]
            if external_id in self._seen:
                return self._skip(item, "duplicate_id", "external_id")
            self._seen.add(external_id)
        self._repair(item)
        return True

    def count_written(self, item: dict[str, Any]) -> None:
        """Count a written item towards the fill rates.

        Catalogs are uniform, so the item's filled/empty pattern is tallied (a few C-level calls)
        and expanded into per-field counts only when the report is made.
        """
        get = item.get
        pattern = (*map(bool, map(get, _TEXT_FILL)), *map(is_not, map(get, _NUMBER_FILL), _NONES))
        self._fill_patterns[pattern] = self._fill_patterns.get(pattern, 0) + 1
        self.written += 1

    def fill_rates(self) -> dict[str, float]:
        """Share of written items (0.0-1.0) that have each product field."""
        counts = dict.fromkeys(FILL_FIELDS, 0)
        for pattern, times in self._fill_patterns.items():
            for name, filled in zip(_TEXT_FILL + _NUMBER_FILL, pattern, strict=True):
                if filled:
                    counts[name] += times
        written = self.written
        return {name: round(count / written, 4) if written else 0.0 for name, count in counts.items()}

    def warn(self, code: str, name: str) -> None:
        self.warning_counts[f"{code}:{name}"] += 1

    def report(self) -> dict[str, Any]:
        """The JSON-serialisable validation report shown after a build."""
        return {
            "skipped": dict(self.skipped),
            "issues": self.issues,
            "fill_rates": self.fill_rates(),
            "warnings": [_warning_message(key, count, self.rules)
                         for key, count in sorted(self.warning_counts.items())] + self.notes,
            "warning_counts": dict(self.warning_counts),
        }

    def _check_numbers(self, item: dict[str, Any]) -> bool:
        price = item.get("price")
        if type(price) is Decimal and price.is_finite():  # the usual case, from a Numeric column
            if price < 0:
                return self._skip(item, "negative_price", "price")
        elif price is not None or self.rules.price_required:
            amount = to_decimal(price)
            if amount is None:
                reason = "missing_required" if price is None or price == "" else "bad_number"
                return self._skip(item, reason, "price")
            if amount < 0:
                return self._skip(item, "negative_price", "price")
            item["price"] = amount
        compare_at = item.get("compare_at_price")
        if compare_at is not None:
            amount = to_decimal(compare_at)
            if amount is None or amount < 0:
                self.warn("bad_number", "compare_at_price")
            item["compare_at_price"] = amount if amount is not None and amount >= 0 else None
        for name in ("inventory_quantity", "inventory_policy"):
            value = item.get(name)
            if value is not None:
                number = to_int(value)
                if number is None:
                    self.warn("bad_number", name)
                item[name] = number
        return True

    def _repair(self, item: dict[str, Any]) -> None:
        rules = self.rules
        for name, limit in rules.truncate.items():
            value = item.get(name)
            if isinstance(value, str) and len(value) > limit:
                item[name] = value[:limit].rstrip()
                self.warn("truncated", name)
        for name, allowed in rules.allowed.items():
            value = item.get(name)
            if isinstance(value, str):
                value = value.strip().lower() or None
            if value is not None and value not in allowed:
                self.warn("invalid_value", name)
                value = None
            item[name] = value
        if rules.max_additional_images:
            item["additional_image_link"] = self._additional_images(item)

    def _additional_images(self, item: dict[str, Any]) -> list[str]:
        extras = item.get("extras") or {}
        raw = next((extras[key] for key in ADDITIONAL_IMAGE_KEYS if extras.get(key)), None)
        if raw is None:
            return []
        candidates = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else []
        links = []
        for link in candidates:
            link = link.strip() if isinstance(link, str) else link
            if not is_absolute_url(link):
                self.warn("bad_url", "additional_image_link")
            elif len(links) == self.rules.max_additional_images:
                self.warn("too_many", "additional_image_link")
                break
            else:
                links.append(link)
        return links

    def _skip(self, item: dict[str, Any], reason: str, name: str) -> bool:
        key = reason if reason in ("negative_price", "duplicate_id") else f"{reason}:{name}"
        self.skipped[key] += 1
        if len(self.issues) < MAX_ISSUES:
            external_id = item.get("external_id")
            self.issues.append({
                "external_id": None if external_id is None else str(external_id),
                "id": item.get("id"), "reason": reason, "field": name})
        return False


# scheme, optional userinfo, a host (name, IPv4 or [IPv6]), optional port, then no whitespace,
# control character or other character that XML forbids (so a valid URL needs no cleaning).
_URL_CHAR = r"[^\s\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]"
_ABSOLUTE_URL = re.compile(
    rf"(?i:https?)://(?:[^\s/?#@\x00-\x1f]*@)?(?:\[[0-9A-Fa-f:.]+\]|[^\s/?#@:\[\]\x00-\x1f\x7f]+)"
    rf"(?::[0-9]*)?(?:[/?#]{_URL_CHAR}*)?\Z")


def is_absolute_url(value: Any) -> bool:
    """An http(s) URL with a host and no whitespace: what platforms can fetch."""
    return isinstance(value, str) and _ABSOLUTE_URL.match(value) is not None


def to_decimal(value: Any) -> Decimal | None:
    """A finite Decimal from a Decimal, int, float or numeric string; None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        return Decimal(value)
    elif isinstance(value, float | str):
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            return None
    else:
        return None
    return amount if amount.is_finite() else None


def to_int(value: Any) -> int | None:
    """A whole number from an int, an integral Decimal/float or a numeric string; None otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    amount = to_decimal(value)
    if amount is None or amount != amount.to_integral_value():
        return None
    return int(amount)


def in_stock(item: Mapping[str, Any]) -> bool:
    """Unknown stock counts as available: stores that do not track stock still sell."""
    quantity = item.get("inventory_quantity")
    if quantity is None:
        return True
    if not isinstance(quantity, int):
        quantity = to_int(quantity)
    return quantity is None or quantity > 0


def sale_pricing(item: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    """(regular price, sale price or None): a compare-at price above the price means a sale."""
    price, compare_at = item.get("price"), item.get("compare_at_price")
    if price is not None and compare_at is not None and compare_at > price:
        return compare_at, price
    return price, None


def format_money(amount: Decimal, currency: str) -> str:
    """`"15.00 USD"` as Google and Meta expect: two decimals, ISO 4217 code."""
    return f"{amount.quantize(_CENT, rounding=ROUND_HALF_UP)} {currency}"


def category_names(value: Any) -> list[str]:
    """The non-blank category names of a product (a bare string counts as one category)."""
    if not value:
        return []
    names = [value] if isinstance(value, str) else value
    return [name.strip() for name in names if isinstance(name, str) and name.strip()]


def optional_text(value: Any) -> str:
    """An optional field as stripped text ("" when absent)."""
    if value is None:
        return ""
    return (value if isinstance(value, str) else str(value)).strip()


def item_currency(item: Mapping[str, Any], default: str) -> str:
    """The item's ISO 4217 code, or the feed's default when the source gave none."""
    currency = item.get("currency")
    return currency.strip().upper() if isinstance(currency, str) and currency.strip() else default


def _present(value: Any) -> bool:
    return value is not None and (not isinstance(value, str) or bool(value.strip()))


def _warning_message(key: str, count: int, rules: FieldRules) -> str:
    code, _, name = key.partition(":")
    items = "1 item" if count == 1 else f"{count} items"
    if code == "truncated":
        return f"{name} cut to {rules.truncate[name]} characters on {items}"
    if code == "invalid_value":
        return f"{name} left out on {items}: not one of {', '.join(map(str, sorted(rules.allowed[name])))}"
    if code == "bad_number":
        return f"{name} left out on {items}: not a valid number"
    if code == "bad_url":
        return f"{count} {name} value(s) left out: not an absolute http(s) URL"
    if code == "too_many":
        return f"{name} limited to {rules.max_additional_images} on {items}"
    return f"{key} on {items}"
