"""The API's error shape: `{"errors": [{"path": "orders.0.items.1.quantity", "message": "..."}]}`.

Store developers read these messages while wiring their backend, so pydantic's wording is replaced
by short, specific sentences, and every problem carries the dotted JSON path it was found at.
"""

from collections.abc import Iterable
from typing import Any

import pydantic

# Pydantic error types and what to tell the store's developer instead of pydantic's wording.
_MESSAGES: dict[str, str] = {
    "missing": "field required",
    "extra_forbidden": "unknown field",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "string_pattern_mismatch": "has the wrong format",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "decimal_type": "must be a number",
    "decimal_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "datetime_type": "must be an ISO 8601 timestamp, e.g. 2026-11-20T10:15:00Z",
    "datetime_parsing": "must be an ISO 8601 timestamp, e.g. 2026-11-20T10:15:00Z",
    "datetime_from_date_parsing": "must be an ISO 8601 timestamp, e.g. 2026-11-20T10:15:00Z",
    "timezone_aware": "timestamp needs a UTC offset, e.g. 2026-11-20T10:15:00Z",
}


class ApiError(Exception):
    """An API failure with its HTTP status and the problems to report; views turn it into JSON."""

    def __init__(self, status: int, errors: list[dict[str, str]]) -> None:
        super().__init__(f"{status}: " + "; ".join(f"{e['path'] or '(body)'}: {e['message']}" for e in errors))
        self.status = status
        self.errors = errors

    def to_json(self) -> dict[str, Any]:
        """The response body, `{"errors": [...]}`."""
        return {"errors": self.errors}


def problem(path: Iterable[str | int], message: str) -> dict[str, str]:
    """One entry of the error list; the empty path means the request body as a whole."""
    return {"path": ".".join(str(part) for part in path), "message": message}


def error_list(exc: pydantic.ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict[str, str]]:
    """Every problem pydantic found, with dotted paths (list indexes included) under `prefix`."""
    return [problem((*prefix, *error["loc"]), _message(error)) for error in exc.errors()]


def _message(error: Any) -> str:
    """Our wording for a known error type; custom errors already carry a message meant for people."""
    error_type = error["type"]
    template = _MESSAGES.get(error_type)
    if template is not None:
        try:
            return template.format(**error.get("ctx", {}))
        except (KeyError, IndexError):
            pass  # a custom error that shares a built-in type name: its own message fits better
    if error_type == "literal_error":
        return "must be one of: " + error.get("ctx", {}).get("expected", "").replace("'", "")
    message = str(error["msg"])
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
