"""Removing one person from stored JSON and text, keeping everything that is not about them (pure functions).

Structured data (order data, checkout data, event payloads) loses its personal keys wherever they are, and its
addresses keep only the country: amounts, dates, items and statuses stay, so revenue, charts and aggregates
do not move. Free text (request and response bodies, error messages, import files) has the person's values
replaced by ERASED wherever they appear: a bulk request to a platform carries other people too, and only
this person's values go.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

ERASED = "[erased]"
# Keys whose values are about a person, in any JSON shoprelay stores (orders, checkouts, events, activity).
PERSONAL_KEYS = frozenset({
    "email", "phone", "phone_number", "first_name", "last_name", "company", "address1", "address2", "zip",
    "customer_id", "_kx", "anonymous_id", "ip", "user_agent",
})
ADDRESS_KEYS = frozenset({"address", "billing_address", "shipping_address", "location"})
KEPT_ADDRESS_FIELDS = ("country", "country_code")  # where orders come from stays chartable
# Values shorter than this are not replaced in free text: "7" or "Al" would hit unrelated text.
MIN_VALUE_LENGTH = 3


def scrub_json(value: Any) -> Any:
    """`value` without personal keys; addresses keep their country; a `customer` loses its id too."""
    if isinstance(value, dict):
        cleaned: dict[str, Any] = {}
        for key, item in value.items():
            if key in PERSONAL_KEYS:
                continue
            if key in ADDRESS_KEYS and isinstance(item, dict):
                kept = {name: item[name] for name in KEPT_ADDRESS_FIELDS if item.get(name)}
                cleaned[key] = kept or None
            elif key == "customer" and isinstance(item, dict):
                cleaned[key] = {name: scrub_json(part) for name, part in item.items()
                                if name != "id" and name not in PERSONAL_KEYS}
            else:
                cleaned[key] = scrub_json(item)
        return cleaned
    if isinstance(value, list):
        return [scrub_json(item) for item in value]
    return value


def personal_values(data: Any) -> set[str]:
    """Every personal string in a stored JSON document (to find them again in free text)."""
    found: set[str] = set()

    def walk(value: Any, personal: bool) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                in_address = key in ADDRESS_KEYS and isinstance(item, dict)
                walk(item, personal or key in PERSONAL_KEYS or (key == "id" and personal))
                if in_address:
                    found.update(str(item[name]) for name in item if name in PERSONAL_KEYS and item[name])
                if key == "customer" and isinstance(item, dict) and item.get("id"):
                    found.add(str(item["id"]))
        elif isinstance(value, list):
            for item in value:
                walk(item, personal)
        elif personal and isinstance(value, str | int) and not isinstance(value, bool) and value != "":
            found.add(str(value))

    walk(data, False)
    return found


def spellings(values: Iterable[str]) -> list[str]:
    """The forms a value takes in stored text: as given, JSON-escaped, a phone's digits alone. Longest first,
    so a longer value is replaced before a shorter one inside it."""
    forms: set[str] = set()
    for value in values:
        value = value.strip()
        if len(value) < MIN_VALUE_LENGTH:
            continue
        forms.add(value)
        forms.add(json.dumps(value)[1:-1])
        digits = re.sub(r"\D", "", value)
        if len(digits) >= 7 and re.fullmatch(r"[\d\s()+.\-]+", value):
            forms.add(digits)
    return sorted(forms, key=lambda form: (-len(form), form))


def text_pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for all forms of the person's values (None when there are none)."""
    forms = spellings(values)
    if not forms:
        return None
    return re.compile("|".join(re.escape(form) for form in forms), re.IGNORECASE)


def scrub_text(text: str | None, pattern: re.Pattern[str] | None) -> str | None:
    """`text` with every occurrence of the person's values replaced."""
    if text is None or pattern is None:
        return text
    return pattern.sub(ERASED, text)


def scrub_json_text(value: Any, pattern: re.Pattern[str] | None) -> Any:
    """A JSON value with personal keys removed and the person's values replaced inside every other string."""
    cleaned = scrub_json(value)
    if pattern is None:
        return cleaned

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            return {key: walk(part) for key, part in item.items()}
        if isinstance(item, list):
            return [walk(part) for part in item]
        if isinstance(item, str):
            return pattern.sub(ERASED, item)
        return item

    return walk(cleaned)
