"""Per-item checks and the validation report shared by the feed writers."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from feeds.validation import (
    GOOGLE_RULES,
    KLAVIYO_RULES,
    MAX_ISSUES,
    META_RULES,
    FeedValidator,
    format_money,
    in_stock,
    is_absolute_url,
    sale_pricing,
    to_decimal,
    to_int,
)
from tests.feeds.writer_helpers import product


@pytest.mark.parametrize(("url", "ok"), [
    ("https://shop.example/p/1?x=1#top", True),
    ("http://shop.example", True),
    ("HTTPS://SHOP.EXAMPLE/P", True),
    ("https://user:secret@shop.example:8443/p", True),
    ("http://[2001:db8::1]:8080/p", True),
    ("https://shop.example/ünï", True),
    ("/p/1", False),
    ("shop.example/p/1", False),
    ("//shop.example/p/1", False),
    ("ftp://shop.example/p", False),
    ("javascript:alert(1)", False),
    ("https://", False),
    ("https:///p/1", False),
    ("https://shop.example/a b", False),
    ("https://shop.example/\n", False),
    ("https://shop.example:port/", False),
    ("https://shop.example/a\x00b", False),
    ("https://shop.example/\ud800", False),
    ("", False),
    (None, False),
    (42, False),
])
def test_is_absolute_url(url: object, ok: bool) -> None:
    assert is_absolute_url(url) is ok


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("1.50"), Decimal("1.50")), (3, Decimal(3)), (2.5, Decimal("2.5")), (" 7.25 ", Decimal("7.25")),
    ("abc", None), ("", None), (None, None), (True, None), (Decimal("NaN"), None), (float("inf"), None),
    ([1], None),
])
def test_to_decimal(value: object, expected: Decimal | None) -> None:
    assert to_decimal(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (5, 5), ("12", 12), (Decimal("3.0"), 3), (4.0, 4), (2.5, None), ("x", None), (False, None)])
def test_to_int(value: object, expected: int | None) -> None:
    assert to_int(value) == expected


def test_money_and_sale_helpers() -> None:
    assert format_money(Decimal("2.005"), "USD") == "2.01 USD"
    assert sale_pricing({"price": Decimal("5"), "compare_at_price": Decimal("8")}) == (Decimal("8"), Decimal("5"))
    assert sale_pricing({"price": Decimal("5"), "compare_at_price": None}) == (Decimal("5"), None)
    assert sale_pricing({"price": Decimal("5"), "compare_at_price": Decimal("4")}) == (Decimal("5"), None)
    assert [in_stock({"inventory_quantity": value}) for value in (None, 1, 0, -1, "2", "0")] == [
        True, True, False, False, True, False]


def test_check_normalises_the_item_in_place() -> None:
    validator = FeedValidator(GOOGLE_RULES)
    item = product(title="  Shirt\x00 ", external_id=77, price="3.5", inventory_quantity="4",
                   compare_at_price="oops", condition="Used")

    assert validator.check(item)
    assert item["title"] == "Shirt" and item["external_id"] == "77"
    assert item["price"] == Decimal("3.5") and item["inventory_quantity"] == 4
    assert item["compare_at_price"] is None and item["condition"] == "used"
    assert item["additional_image_link"] == []


@pytest.mark.parametrize("field", ["external_id", "title", "description", "link", "image_link"])
@pytest.mark.parametrize("bad", ["\x00", "\x0b", "\ud800", "\uffff"])
def test_forbidden_characters_are_removed_from_all_text_items(field: str, bad: str) -> None:
    """All required fields are text here, so the one-scan fast path decides whether anything is cleaned."""
    validator = FeedValidator(KLAVIYO_RULES, track_duplicates=False)
    item = product(description="Long text. " * 20)
    clean = dict(item)
    assert validator.check(clean)
    item[field] = item[field][:5] + bad + item[field][5:]
    assert validator.check(item)
    assert item[field] == clean[field] and bad not in item[field]


@pytest.mark.parametrize(("rules", "fields", "reason"), [
    (KLAVIYO_RULES, {"title": None}, "missing_required:title"),
    (KLAVIYO_RULES, {"link": "shop.example/p"}, "bad_url:link"),
    (KLAVIYO_RULES, {"price": Decimal("-0.01")}, "negative_price"),
    (KLAVIYO_RULES, {"price": "ten"}, "bad_number:price"),
    (GOOGLE_RULES, {"external_id": "x" * 51}, "too_long:external_id"),
    (GOOGLE_RULES, {"price": ""}, "missing_required:price"),
    (META_RULES, {"external_id": "x" * 101}, "too_long:external_id"),
    (META_RULES, {"brand": None}, "missing_required:brand"),
])
def test_check_refuses_items_with_a_reason(rules, fields: dict, reason: str) -> None:  # noqa: ANN001
    validator = FeedValidator(rules)
    accepted = validator.check(product(**{"brand": "Acme", **fields}))

    assert not accepted
    assert validator.skipped == {reason: 1}


def test_ids_at_the_limit_are_accepted() -> None:
    assert FeedValidator(GOOGLE_RULES).check(product(external_id="x" * 50))
    assert FeedValidator(META_RULES).check(product(external_id="x" * 100, brand="Acme"))


def test_klaviyo_has_no_length_limits_and_no_required_price() -> None:
    validator = FeedValidator(KLAVIYO_RULES)

    assert validator.check(product(external_id="x" * 500, title="t" * 10_000, price=None))
    assert not validator.warning_counts


def test_duplicate_ids_are_refused_after_the_first_accepted_one() -> None:
    validator = FeedValidator(KLAVIYO_RULES)

    results = [validator.check(product(1)), validator.check(product(1)), validator.check(product(2))]

    assert results == [True, False, True]
    assert validator.skipped == {"duplicate_id": 1}
    assert validator.issues == [{"external_id": "SKU-1", "id": 1001, "reason": "duplicate_id",
                                 "field": "external_id"}]


def test_issues_are_capped_but_counts_are_complete() -> None:
    validator = FeedValidator(KLAVIYO_RULES)

    for number in range(MAX_ISSUES + 50):
        validator.check(product(number, title=""))

    report = validator.report()
    assert len(report["issues"]) == MAX_ISSUES
    assert report["skipped"] == {"missing_required:title": MAX_ISSUES + 50}


def test_fill_rates_count_zero_numbers_but_not_blank_text_or_empty_lists() -> None:
    validator = FeedValidator(KLAVIYO_RULES)
    items = [product(1, price=Decimal(0), brand="", categories=[], inventory_quantity=0),
             product(2, brand="Acme", categories=["A"], inventory_quantity=None, price=None),
             product(3, brand="Acme", sku="S")]
    for item in items:
        assert validator.check(item)
        validator.count_written(item)

    rates = validator.fill_rates()

    assert rates["price"] == round(2 / 3, 4)
    assert rates["inventory_quantity"] == round(2 / 3, 4)
    assert rates["brand"] == round(2 / 3, 4)
    assert rates["categories"] == round(2 / 3, 4)
    assert rates["sku"] == round(1 / 3, 4)
    assert rates["external_id"] == 1.0
    assert rates["mpn"] == 0.0


def test_report_is_json_serialisable_with_readable_warnings() -> None:
    validator = FeedValidator(META_RULES)
    item = product(brand="Acme", title="t" * 201, condition="mint", inventory_quantity="many",
                   extras={"additional_image_link": "not a url"})
    assert validator.check(item)
    validator.count_written(item)

    report = json.loads(json.dumps(validator.report()))

    assert report["warnings"] == [
        "inventory_quantity left out on 1 item: not a valid number",
        "1 additional_image_link value(s) left out: not an absolute http(s) URL",
        "condition left out on 1 item: not one of new, refurbished, used",
        "title cut to 200 characters on 1 item",
    ]
    assert set(report) == {"skipped", "issues", "fill_rates", "warnings", "warning_counts"}
