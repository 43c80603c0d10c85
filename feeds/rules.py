"""Feed product filters: which products of the sources a feed publishes.

A rule is `{"action": "include"|"exclude", "field": ..., "op": ..., "value": ...}`. When any include
rule exists a product must match at least one of them; any matching exclude rule removes it. Rules
are checked once (`validate_rules`) and compiled into one predicate, which stays the source of truth
even if simple rules are later translated to SQL.

Fields: `category` (any of the product's categories), `in_stock` (derived from the stock quantity),
any product field, or `extras.<key>`. Text comparisons ignore case and surrounding spaces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from feeds.product import PRODUCT_FIELDS
from feeds.validation import in_stock, to_decimal

ACTIONS = ("include", "exclude")
OPS = ("eq", "ne", "contains", "in", "gt", "gte", "lt", "lte", "is_true", "is_false", "empty", "not_empty")
_VALUELESS = frozenset(("is_true", "is_false", "empty", "not_empty"))
_NUMERIC = frozenset(("gt", "gte", "lt", "lte"))
_FIELDS = frozenset((*PRODUCT_FIELDS, "id", "category", "in_stock")) - {"extras"}
_TRUE_WORDS = frozenset(("true", "yes", "y", "1", "on"))

Predicate = Callable[[Mapping[str, Any]], bool]


def validate_rules(rules: Any) -> list[str]:
    """Every problem with a rule list, each naming the rule (1-based) and its field."""
    if not isinstance(rules, list):
        return ["rules must be a list"]
    errors = []
    for number, rule in enumerate(rules, start=1):
        if not isinstance(rule, Mapping):
            errors.append(f"rule {number}: must be an object with action, field, op and value")
            continue
        name = rule.get("field")
        where = f"rule {number} ({name})" if isinstance(name, str) else f"rule {number}"
        if rule.get("action") not in ACTIONS:
            errors.append(f"{where}: action must be one of {', '.join(ACTIONS)}")
        if not isinstance(name, str) or not _known_field(name):
            errors.append(f"{where}: unknown field; use category, brand, in_stock, price, another "
                          "product field or extras.<key>")
        op = rule.get("op")
        if op not in OPS:
            errors.append(f"{where}: op must be one of {', '.join(OPS)}")
            continue
        problem = _value_problem(op, rule.get("value"))
        if problem:
            errors.append(f"{where}: {problem}")
    return errors


def compile_rules(rules: list[dict[str, Any]]) -> Predicate:
    """A fast predicate over product dicts: True when the product stays in the feed.

    Raises ValueError (listing every problem) when the rules are invalid.
    """
    errors = validate_rules(rules)
    if errors:
        raise ValueError("; ".join(errors))
    includes = tuple(_compile(rule) for rule in rules if rule["action"] == "include")
    excludes = tuple(_compile(rule) for rule in rules if rule["action"] == "exclude")
    if not includes and not excludes:
        return lambda product: True

    def keep(product: Mapping[str, Any]) -> bool:
        if includes and not any(matches(product) for matches in includes):
            return False
        return not any(matches(product) for matches in excludes)

    return keep


def count_matches(rules: list[dict[str, Any]], products: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """(kept, dropped) for a preview of what the rules do to a catalog."""
    keep = compile_rules(rules)
    kept = dropped = 0
    for product in products:
        if keep(product):
            kept += 1
        else:
            dropped += 1
    return kept, dropped


def _known_field(name: str) -> bool:
    return name in _FIELDS or name == "categories" or (name.startswith("extras.") and len(name) > 7)


def _value_problem(op: str, value: Any) -> str | None:
    if op in _VALUELESS:
        return None
    if op in _NUMERIC:
        if isinstance(value, bool) or to_decimal(value) is None:
            return f"{op!r} needs a number, got {value!r}"
        return None
    if op == "in":
        if not isinstance(value, list) or not value or not all(_is_scalar(element) for element in value):
            return f"'in' needs a non-empty list of values, got {value!r}"
        return None
    if not _is_scalar(value) or (op == "contains" and not str(value).strip()):
        return f"{op!r} needs a text or number value, got {value!r}"
    return None


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | Decimal)


def _compile(rule: Mapping[str, Any]) -> Predicate:
    read = _reader(rule["field"])
    test = _test(rule["op"], rule.get("value"))
    return lambda product: test(read(product))


def _reader(name: str) -> Callable[[Mapping[str, Any]], Any]:
    if name in ("category", "categories"):
        return lambda product: product.get("categories") or []
    if name == "in_stock":
        return in_stock
    if name.startswith("extras."):
        key = name[len("extras."):]
        return lambda product: (product.get("extras") or {}).get(key)
    return lambda product: product.get(name)


def _test(op: str, value: Any) -> Callable[[Any], bool]:
    """The check for one value; a list (categories) matches when any element does."""
    if op == "empty":
        return _is_empty
    if op == "not_empty":
        return lambda actual: not _is_empty(actual)
    if op == "is_true":
        return _is_true
    if op == "is_false":
        return lambda actual: not _is_true(actual)
    if op == "ne":
        equal = _test("eq", value)
        return lambda actual: not equal(actual)
    if op in _NUMERIC:
        return _any_element(_numeric_test(op, to_decimal(value)))
    if op == "contains":
        wanted_text = _norm(value)
        return _any_element(lambda actual: wanted_text in _norm(actual))
    wanted = value if op == "in" else [value]
    texts = frozenset(_norm(element) for element in wanted)
    numbers = frozenset(number for element in wanted
                        if not isinstance(element, bool) and (number := to_decimal(element)) is not None)

    def equal(actual: Any) -> bool:
        # A number on the product compares as a number (10 == Decimal("10.00")); text ignores case.
        number = _number(actual)
        if number is not None:
            return number in numbers
        return _norm(actual) in texts

    return _any_element(equal)


def _numeric_test(op: str, limit: Decimal) -> Callable[[Any], bool]:
    compare = {
        "gt": lambda number: number > limit, "gte": lambda number: number >= limit,
        "lt": lambda number: number < limit, "lte": lambda number: number <= limit,
    }[op]

    def test(actual: Any) -> bool:
        number = None if isinstance(actual, bool) else to_decimal(actual)
        return number is not None and compare(number)

    return test


def _any_element(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def check(actual: Any) -> bool:
        if isinstance(actual, list | tuple | set | frozenset):
            return any(actual_element is not None and test(actual_element) for actual_element in actual)
        return actual is not None and test(actual)

    return check


def _number(value: Any) -> Decimal | None:
    """The numeric value of an int/float/Decimal (not of text or bools: "007" is a code, not 7)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return to_decimal(value)


def _norm(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().casefold()


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict | set):
        return not value
    return False


def _is_true(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().casefold() in _TRUE_WORDS
    if isinstance(value, list | tuple | dict | set):
        return bool(value)
    return value is not None and bool(value)
