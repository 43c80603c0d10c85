"""The mapping step: a copy of the source file to look at, its columns, and the first products as stored.

A URL source is fetched into a preview file with a small size cap and a short timeout (the page must
answer quickly); a file the last sync downloaded is used instead when there is one, so a large source
can still be mapped after its first sync. The preview copy is reused for a few minutes so every click
on "Preview" does not download the file again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app

from feeds.fetch import fetch_to_file
from feeds.mapping import PRODUCT_TARGETS, REQUIRED_TARGETS, lookup
from feeds.product import Product, RowProblem, SourceError
from feeds.readers import inspect_source, preview_products
from webapp.models import Source
from webapp.services.platform.crypto import decrypt_json
from webapp.services.platform.outbound_http import outbound_client

PREVIEW_MAX_BYTES = 20 * 1024 * 1024
PREVIEW_TIMEOUT = 15.0
PREVIEW_REUSE_SECONDS = 600
PREVIEW_ROWS = 10
MAPPABLE_KINDS = ("csv", "json", "xml")  # the other kinds have a built-in mapping
TARGET_LABELS: dict[str, str] = {
    "external_id": "ID", "item_group_id": "Item group (parent) ID", "title": "Title",
    "description": "Description", "link": "Product URL", "image_link": "Image URL", "price": "Price",
    "compare_at_price": "Compare-at price", "currency": "Currency", "brand": "Brand",
    "categories": "Categories", "inventory_quantity": "Stock quantity",
    "inventory_policy": "Inventory policy (1 hide / 2 show)", "sku": "SKU", "gtin": "GTIN / EAN / UPC",
    "mpn": "MPN", "condition": "Condition", "sale_price": "Sale price", "availability": "Availability",
}


@dataclass
class MappingView:
    """Everything the mapping page shows; `error` says why the file could not be read."""

    source: Source
    mappable: bool
    columns: list[str] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    detected: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def example(self, column: str | None) -> str:
        """The first sample row's value of `column`, shortened to fit an option label."""
        if not column or not self.samples:
            return ""
        value = lookup(self.samples[0], column)
        text = "" if value is None else str(value)
        return text if len(text) <= 40 else text[:39] + "…"


@dataclass
class Preview:
    products: list[Product] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    error: str | None = None


def _uploads() -> Path:
    return Path(current_app.config["UPLOADS_DIR"])


def _auth(source: Source) -> tuple[tuple[str, str] | None, dict[str, str] | None]:
    credentials = decrypt_json(source.credentials_encrypted)
    auth = (credentials["username"], credentials.get("password", "")) if credentials.get("username") else None
    headers = {credentials["header_name"]: credentials["header_value"]} if credentials.get("header_name") else None
    return auth, headers


def preview_file(source: Source, *, refresh: bool = False) -> Path:
    """The file the preview reads: the upload, the last sync's download, or a fresh capped download.

    For a Shopify URL the fresh download is the first page only: enough to see the products.

    Raises SourceError with a message for the user when there is nothing to read.
    """
    if source.kind == "push":
        raise SourceError("push sources have no file: products arrive through POST /api/v1/products")
    if not source.location:
        if source.upload_path and Path(source.upload_path).is_file():
            return Path(source.upload_path)
        raise SourceError("no file uploaded yet: upload one on the edit page")
    downloaded = _uploads() / f"source-{source.id}.download"
    if downloaded.is_file() and source.content_digest and not refresh:
        return downloaded
    digest = hashlib.sha256(source.location.encode()).hexdigest()[:12]
    path = _uploads() / f"source-{source.id}-preview-{digest}"
    fresh = path.is_file() and time.time() - path.stat().st_mtime < PREVIEW_REUSE_SECONDS
    if fresh and not refresh:
        return path
    try:
        auth, headers = _auth(source)
    except ValueError as exc:
        raise SourceError(str(exc)) from None
    try:
        # For Shopify the first page is enough to see what the products look like.
        with outbound_client(PREVIEW_TIMEOUT) as client:  # no hop may reach an inward address
            fetch_to_file(source.location, path, basic_auth=auth, headers=headers,
                          max_bytes=PREVIEW_MAX_BYTES, timeout=PREVIEW_TIMEOUT, client=client)
    except SourceError as exc:
        if "larger than" in str(exc):
            raise SourceError(f"{exc}. The preview reads at most {PREVIEW_MAX_BYTES // (1024 * 1024)} MB: "
                              "run a sync first, then the preview reads the downloaded file.") from None
        raise
    return path


def _reason(exc: Exception) -> str:
    """What the preview says: a reader's reason, or that the file went while it was read (a new upload or a
    URL replaced it meanwhile; readers open the file more than once)."""
    if isinstance(exc, FileNotFoundError):
        return "the source's file was replaced while the preview read it: open the preview again"
    return str(exc)


def mapping_view(source: Source, *, refresh: bool = False) -> MappingView:
    """Columns, detected and current mapping, sample rows; `error` set when the file cannot be read."""
    view = MappingView(source, mappable=source.kind in MAPPABLE_KINDS)
    try:
        inspection = inspect_source(source.kind, preview_file(source, refresh=refresh), source.options or {},
                                    max_bytes=current_app.config["SOURCE_MAX_BYTES"])
    except (SourceError, FileNotFoundError) as exc:
        view.error = _reason(exc)
        view.mapping = dict(source.mapping or {})
        return view
    view.columns, view.samples, view.options = inspection.columns, inspection.sample_rows, inspection.options
    view.detected = inspection.detected_mapping
    if view.mappable and source.mapping:
        view.mapping = {target: column for target, column in source.mapping.items() if column}
    else:
        view.mapping = dict(inspection.detected_mapping)
    return view


def mapping_from_form(form: Mapping[str, str]) -> dict[str, str]:
    """target -> column from the `map.<target>` selects; unmapped targets are left out."""
    return {target: form[f"map.{target}"] for target in PRODUCT_TARGETS if form.get(f"map.{target}")}


def missing_required(mapping: Mapping[str, str]) -> list[str]:
    return [TARGET_LABELS[target] for target in REQUIRED_TARGETS if not mapping.get(target)]


def preview(source: Source, mapping: Mapping[str, str] | None = None, *, refresh: bool = False) -> Preview:
    """The first products (and row problems) as a sync would store them with this mapping."""
    result = Preview()
    active = dict(mapping) if mapping is not None else source.mapping
    try:
        items = preview_products(source.kind, preview_file(source, refresh=refresh),
                                 mapping=active if source.kind in MAPPABLE_KINDS else None,
                                 options=source.options or {}, limit=PREVIEW_ROWS,
                                 max_bytes=current_app.config["SOURCE_MAX_BYTES"])
    except (SourceError, FileNotFoundError) as exc:
        result.error = _reason(exc)
        return result
    for item in items:
        (result.problems if isinstance(item, RowProblem) else result.products).append(item)
    return result
