"""Small JSON helpers shared by every serialiser."""

from __future__ import annotations

from datetime import datetime


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, the form the API accepts and returns."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None
