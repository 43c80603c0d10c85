"""Only web links where links belong (issue 19): every URL the store sends us to show or forward (item and
image URLs, checkout URLs, product links) is an absolute http(s) URL, or it is dropped.

A `javascript:` or `data:` link would otherwise reach customers' emails through the platforms and the
dashboard as a clickable link. Dropping the field keeps the rest of the input (the order is still stored)
and the answer carries a warning naming the field. Templates use the same test (`web_link` filter).
"""

from __future__ import annotations

import functools
import re
import typing
from typing import Any

from pydantic import BaseModel

from feeds.validation import ADDITIONAL_IMAGE_KEYS, is_absolute_url
from webapp.schemas.canonical.checkouts import CanonicalCheckout
from webapp.schemas.canonical.orders import OrderItem
from webapp.schemas.canonical.products import ProductIn

DROPPED = "must be an absolute http:// or https:// URL; it was dropped and the rest was kept"

# The URL fields of each canonical model; nested models and lists of them are walked.
LINK_FIELDS: dict[type[BaseModel], tuple[str, ...]] = {
    OrderItem: ("url", "image_url"),
    CanonicalCheckout: ("checkout_url",),
    ProductIn: ("link", "image_link"),
}
# Product extras are free-form: a key named like a link holds links (additional_image_links, variant_url...).
_LINK_KEY = re.compile(r"(?:^|_)(?:url|link)s?$", re.IGNORECASE)

Warnings = list[dict[str, str]]


def web_url(value: Any) -> str | None:
    """`value` (trimmed) when it is an absolute http(s) URL with a host and no whitespace, else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if is_absolute_url(text) else None


def clean_links(model: BaseModel, prefix: tuple[str | int, ...] = ()) -> Warnings:
    """Drop every non-web URL of a validated CanonicalOrder, CanonicalCheckout or ProductPush, in place.

    Returns one warning (`{"path", "message"}`, dotted path under `prefix`) per dropped link.
    """
    warnings: Warnings = []
    _walk(model, prefix, warnings)
    return warnings


def _walk(node: Any, path: tuple[str | int, ...], warnings: Warnings) -> None:
    if isinstance(node, BaseModel):
        for name in LINK_FIELDS.get(type(node), ()):
            value = getattr(node, name)
            if value is not None:
                kept = web_url(value)
                setattr(node, name, kept)
                if kept is None:
                    warnings.append(_warning((*path, name)))
        if isinstance(node, ProductIn):
            _clean_extras(node.extras, (*path, "extras"), warnings)
        for name in _nested(type(node)):
            _walk(getattr(node, name), (*path, name), warnings)
    elif isinstance(node, list) and node and isinstance(node[0], BaseModel):
        for index, item in enumerate(node):
            _walk(item, (*path, index), warnings)


@functools.cache
def _nested(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of `model` that may hold models (an order's customer, addresses, items): the rest is skipped."""
    return tuple(name for name, info in model.model_fields.items() if _holds_model(info.annotation))


def _holds_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_model(arg) for arg in typing.get_args(annotation))


def _clean_extras(extras: dict[str, Any], path: tuple[str | int, ...], warnings: Warnings) -> None:
    """Link-named keys anywhere in the extras (nested objects and lists included) keep only web links."""
    for key, value in list(extras.items()):
        where = (*path, key)
        if isinstance(value, dict):
            _clean_extras(value, where, warnings)
        elif isinstance(value, list):
            extras[key] = _clean_list(value, where, warnings, links=bool(_LINK_KEY.search(key)))
        elif isinstance(value, str) and _LINK_KEY.search(key):
            extras[key] = _clean_text(value, where, warnings, several=key in ADDITIONAL_IMAGE_KEYS)


def _clean_list(values: list[Any], path: tuple[str | int, ...], warnings: Warnings, *, links: bool) -> list[Any]:
    kept = []
    for index, value in enumerate(values):
        if isinstance(value, dict):
            _clean_extras(value, (*path, index), warnings)
        elif links and isinstance(value, str) and web_url(value) is None:
            warnings.append(_warning((*path, index)))
            continue
        kept.append(value)
    return kept


def _clean_text(value: str, path: tuple[str | int, ...], warnings: Warnings, *, several: bool) -> str | None:
    """One link, or (additional image keys) a comma-separated list of them, split the way feeds split it."""
    if not value.strip():
        return value
    parts = value.split(",") if several else [value]
    kept = [web_url(part) for part in parts]
    good = [part for part in kept if part]
    if len(good) < len(kept):
        warnings.append(_warning(path))
    return ",".join(good) or None


def _warning(path: tuple[str | int, ...]) -> dict[str, str]:
    return {"path": ".".join(str(part) for part in path), "message": DROPPED}
