"""Feed product filters: validation messages, every operator, include/exclude semantics."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from feeds.rules import compile_rules, count_matches, validate_rules
from tests.feeds.writer_helpers import product

SHIRT = product(1, title="Blue Shirt", brand="Acme", categories=["Apparel", "Shirts"], price=Decimal("19.99"),
                inventory_quantity=4, sku="007", extras={"color": "Blue", "featured": True, "size": 42})
MUG = product(2, title="Mug", brand="Other", categories=["Home"], price=Decimal("8.00"), inventory_quantity=0,
              sku=None, extras={"color": "white", "featured": False})
POSTER = product(3, title="Poster", brand=None, categories=[], price=Decimal("10"), inventory_quantity=None,
                 extras={})
CATALOG = [SHIRT, MUG, POSTER]


def kept(*rules: dict[str, Any]) -> list[str]:
    keep = compile_rules(list(rules))
    return [item["title"] for item in CATALOG if keep(item)]


def rule(field: str, op: str, value: Any = None, action: str = "include") -> dict[str, Any]:
    return {"action": action, "field": field, "op": op, "value": value}


@pytest.mark.parametrize(("spec", "titles"), [
    (rule("category", "eq", "shirts"), ["Blue Shirt"]),  # any category, case-insensitive
    (rule("category", "ne", "Shirts"), ["Mug", "Poster"]),
    (rule("categories", "contains", "app"), ["Blue Shirt"]),
    (rule("category", "in", ["home", "garden"]), ["Mug"]),
    (rule("category", "empty"), ["Poster"]),
    (rule("category", "not_empty"), ["Blue Shirt", "Mug"]),
    (rule("brand", "eq", " ACME "), ["Blue Shirt"]),
    (rule("brand", "ne", "Acme"), ["Mug", "Poster"]),
    (rule("brand", "in", ["Acme", "Other"]), ["Blue Shirt", "Mug"]),
    (rule("brand", "empty"), ["Poster"]),
    (rule("title", "contains", "SHIRT"), ["Blue Shirt"]),
    (rule("price", "gt", 10), ["Blue Shirt"]),
    (rule("price", "gte", "10"), ["Blue Shirt", "Poster"]),
    (rule("price", "lt", 10), ["Mug"]),
    (rule("price", "lte", 10.0), ["Mug", "Poster"]),
    (rule("price", "eq", 10), ["Poster"]),  # Decimal("10") equals the number 10
    (rule("price", "eq", "8"), ["Mug"]),  # a number typed into a form still compares as a number
    (rule("price", "in", [8, "19.99"]), ["Blue Shirt", "Mug"]),
    (rule("sku", "eq", 7), []),  # "007" is a code, not the number 7
    (rule("sku", "eq", "007"), ["Blue Shirt"]),
    (rule("in_stock", "is_true"), ["Blue Shirt", "Poster"]),  # unknown stock counts as available
    (rule("in_stock", "is_false"), ["Mug"]),
    (rule("in_stock", "eq", True), ["Blue Shirt", "Poster"]),
    (rule("inventory_quantity", "gt", 0), ["Blue Shirt"]),
    (rule("inventory_quantity", "empty"), ["Poster"]),
    (rule("extras.color", "eq", "blue"), ["Blue Shirt"]),
    (rule("extras.featured", "is_true"), ["Blue Shirt"]),
    (rule("extras.featured", "is_false"), ["Mug", "Poster"]),
    (rule("extras.size", "gte", 40), ["Blue Shirt"]),
    (rule("extras.color", "not_empty"), ["Blue Shirt", "Mug"]),
])
def test_each_operator(spec: dict[str, Any], titles: list[str]) -> None:
    assert kept(spec) == titles


def test_without_rules_everything_is_kept() -> None:
    assert kept() == ["Blue Shirt", "Mug", "Poster"]


def test_an_item_must_match_at_least_one_include_rule() -> None:
    assert kept(rule("brand", "eq", "Acme"), rule("category", "eq", "Home")) == ["Blue Shirt", "Mug"]


def test_any_matching_exclude_rule_removes_an_item_even_when_included() -> None:
    assert kept(rule("price", "gt", 0), rule("in_stock", "is_false", action="exclude")) == ["Blue Shirt", "Poster"]
    assert kept(rule("brand", "empty", action="exclude")) == ["Blue Shirt", "Mug"]
    assert kept(rule("brand", "eq", "Acme"), rule("title", "contains", "shirt", action="exclude")) == []


def test_count_matches_gives_kept_and_dropped() -> None:
    assert count_matches([rule("price", "lt", 15)], CATALOG) == (2, 1)
    assert count_matches([], iter(CATALOG)) == (3, 0)


def test_string_values_in_text_fields_with_spaces_and_case() -> None:
    keep = compile_rules([rule("title", "in", ["  blue shirt "])])
    assert keep(SHIRT) and not keep(MUG)


@pytest.mark.parametrize(("rules", "messages"), [
    ("nope", ["rules must be a list"]),
    ([42], ["rule 1: must be an object with action, field, op and value"]),
    ([rule("brand", "eq", "x", action="keep")], ["rule 1 (brand): action must be one of include, exclude"]),
    ([rule("colour", "eq", "x")], ["rule 1 (colour): unknown field; use category, brand, in_stock, price, "
                                   "another product field or extras.<key>"]),
    ([rule("extras.", "eq", "x")], ["rule 1 (extras.): unknown field; use category, brand, in_stock, price, "
                                    "another product field or extras.<key>"]),
    ([rule("brand", "eq", "x"), rule("price", "like", "x")],
     ["rule 2 (price): op must be one of eq, ne, contains, in, gt, gte, lt, lte, is_true, is_false, empty, "
      "not_empty"]),
    ([rule("price", "gt", "cheap")], ["rule 1 (price): 'gt' needs a number, got 'cheap'"]),
    ([rule("price", "lte", True)], ["rule 1 (price): 'lte' needs a number, got True"]),
    ([rule("brand", "in", [])], ["rule 1 (brand): 'in' needs a non-empty list of values, got []"]),
    ([rule("brand", "in", "Acme")], ["rule 1 (brand): 'in' needs a non-empty list of values, got 'Acme'"]),
    ([rule("brand", "eq", None)], ["rule 1 (brand): 'eq' needs a text or number value, got None"]),
    ([rule("title", "contains", "  ")], ["rule 1 (title): 'contains' needs a text or number value, got '  '"]),
    ([{"action": "include", "op": "empty"}], ["rule 1: unknown field; use category, brand, in_stock, price, "
                                              "another product field or extras.<key>"]),
])
def test_validate_rules_names_the_rule_and_field(rules: Any, messages: list[str]) -> None:
    assert validate_rules(rules) == messages


def test_valueless_operators_need_no_value() -> None:
    assert validate_rules([{"action": "exclude", "field": "brand", "op": "empty"}]) == []


def test_compile_rules_refuses_invalid_rules() -> None:
    with pytest.raises(ValueError, match=r"rule 1 \(price\): 'gt' needs a number"):
        compile_rules([rule("price", "gt", "x")])
