"""Canonical input that is accepted but partly unusable: cleaned between validation and storage, with a
warning naming each field (DESIGN.md, "Warnings"). One call for every path orders and checkouts come in by."""

from __future__ import annotations

from pydantic import BaseModel

from webapp.schemas.canonical.phones import clean_phones
from webapp.schemas.canonical.web_links import clean_links


def clean_canonical(model: BaseModel, default_region: str | None = None,
                    prefix: tuple[str | int, ...] = ()) -> list[dict[str, str]]:
    """Drop non-web links and write phones in E.164 in a validated CanonicalOrder or CanonicalCheckout,
    in place; returns the warnings (`{"path", "message"}`, dotted paths under `prefix`)."""
    return clean_links(model, prefix) + clean_phones(model, default_region, prefix)
