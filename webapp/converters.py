"""URL converters: `<int:...>` ids have at most 18 digits.

Werkzeug's `int` converter takes any number of digits, and SQLite cannot even compare a column with an integer
beyond 64 bits (OverflowError, a 500). No row has such an id, so such a URL matches no route: a 404 like any
other unknown id, in the API's error shape under /api. The bound is in the converter's pattern (not in a range
check after matching, which werkzeug answers with 405 when the path matched but the value did not).
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter, PathConverter

MAX_ID = 10**18 - 1  # 18 digits: below the largest BIGINT / SQLite INTEGER (2**63 - 1)


class DatabaseIdConverter(IntegerConverter):
    """`int` limited to the ids a database row can have."""

    regex = r"\d{1,18}"


class OrderIdConverter(PathConverter):
    """A store's order id, slashes allowed, but not one ending in `/replay`: that URL is the replay action
    (POST /api/v1/orders/<id>/replay), so OPTIONS on it must not also advertise GET."""

    regex = r"[^/](?:(?!/replay$).)*?"


def init_app(app: Flask) -> None:
    """Before any blueprint registers its rules (a rule binds its converter when added)."""
    app.url_map.converters["int"] = DatabaseIdConverter
    app.url_map.converters["order_id"] = OrderIdConverter
