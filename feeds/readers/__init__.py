"""Read a catalog source file of any supported kind as a stream of Products (and per-row problems).

Each kind is one module exposing `detect_options(path, options) -> dict` (what was detected: encoding,
delimiter, list key, item tag...), `iter_rows(path, options, stats)` yielding `(row_number, dict |
RowProblem)` raw rows, and `BUILTIN_MAPPING` (None where the user maps columns). A module may also define
`iter_products(path, options, stats)` when rows need more than a column mapping (WooCommerce), and
`header(path, options)` when the columns are known without reading rows (CSV).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from feeds.decompress import MAX_UNPACKED_BYTES, discard_unpacked, unpacked
from feeds.mapping import apply_mapping, column_names, defaults_from, detect_mapping
from feeds.product import Product, RowProblem, SourceError, Unchanged, row_fingerprint
from feeds.readers import (
    csv_reader,
    google_reader,
    json_reader,
    shopify_reader,
    woocommerce_reader,
    xml_reader,
)

READER_KINDS: tuple[str, ...] = ("csv", "json", "xml", "google", "shopify", "woocommerce")
_MODULES: dict[str, ModuleType] = {
    "csv": csv_reader, "json": json_reader, "xml": xml_reader, "google": google_reader,
    "shopify": shopify_reader, "woocommerce": woocommerce_reader,
}
PROGRESS_EVERY = 1000
ProgressCallback = Callable[[int, int | None], None]
# external_id -> the stored fingerprint of its source row (None when unknown); enables the fast path.
KnownHash = Callable[[str], int | None]


@dataclass(slots=True)
class ReadStats:
    """Running counts of one read; `skipped` counts rows left out on purpose (drafts, variable parents);
    `no_link` counts the distinct products read without a product URL (every feed format needs one, so the
    sync says so before a feed build skips them; only their ids are kept, so a catalog with links costs nothing)."""

    rows_read: int = 0
    rows_total: int | None = None
    size: int = 0                                  # bytes in the (unpacked) file being read
    position: Callable[[], int] | None = None      # bytes of it read so far (see follow)
    products: int = 0
    problems: int = 0
    no_link_ids: set[str] = field(default_factory=set, repr=False)
    skipped: dict[str, int] = field(default_factory=dict)
    on_progress: ProgressCallback | None = None

    def row_read(self) -> None:
        self.rows_read += 1
        if self.on_progress is not None and self.rows_read % PROGRESS_EVERY == 0:
            self.on_progress(self.rows_read, self.rows_total if self.rows_total is not None else
                             self.estimated_total())

    def follow(self, handle: Any) -> None:
        """The reader's open handle on the file (binary, or text over a binary buffer): how far it has read
        tells how many rows the whole file holds, roughly, so a long sync shows a share done."""
        raw = getattr(handle, "buffer", handle)
        self.position = raw.tell

    def estimated_total(self) -> int | None:
        """Rows in the whole file, from the rows read so far and the share of its bytes they took; None while
        the reader tells no position (or too little is read to say)."""
        if self.position is None or not self.size:
            return None
        try:
            done = self.position()
        except (OSError, ValueError):  # the handle was closed: the read is over
            return None
        if done <= 0:
            return None
        estimate = round(self.rows_read * self.size / min(done, self.size))
        return max(self.rows_read, round(estimate, 3 - len(str(estimate))))  # three significant figures

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    @property
    def no_link(self) -> int:
        return len(self.no_link_ids)


class ProductStream(Iterator[Product | RowProblem]):
    """The iterator `read_products` returns; `stats` is complete once it is exhausted."""

    def __init__(self, items: Iterator[Product | RowProblem], stats: ReadStats) -> None:
        self._items = items
        self._finished = False
        self.stats = stats

    def __next__(self) -> Product | RowProblem:
        try:
            item = next(self._items)
        except StopIteration:
            if not self._finished and self.stats.on_progress is not None:
                self.stats.on_progress(self.stats.rows_read, self.stats.rows_read)
            self._finished = True
            raise
        if isinstance(item, RowProblem):
            self.stats.problems += 1
        else:
            self.stats.products += 1
            if isinstance(item, Product) and not (item.link or "").strip():
                self.stats.no_link_ids.add(item.external_id)
        return item

    def close(self) -> None:
        """Stop early and release the open file."""
        close = getattr(self._items, "close", None)
        if close is not None:
            close()


@dataclass(slots=True)
class SourceInspection:
    """What the mapping editor shows: the columns, a guessed mapping, a few raw rows, detected options."""

    columns: list[str]
    detected_mapping: dict[str, str]
    sample_rows: list[dict[str, Any]]
    options: dict[str, Any]


def _module(kind: str) -> ModuleType:
    try:
        return _MODULES[kind]
    except KeyError:
        raise SourceError(f"unknown source kind {kind!r}; expected one of {', '.join(READER_KINDS)}") from None


def _check_file(path: Path, max_bytes: int = MAX_UNPACKED_BYTES) -> Path:
    """The file to read: the source itself, or the content of a .gz / .zip source unpacked within the cap."""
    if not path.is_file():
        raise SourceError(f"source file {path.name} does not exist")
    if path.stat().st_size == 0:
        raise SourceError("the source file is empty")
    plain = unpacked(path, max_bytes)
    if plain != path and plain.stat().st_size == 0:
        raise SourceError("the compressed source file holds an empty file")
    return plain


def read_products(kind: str, path: Path, *, mapping: dict[str, str] | None = None,
                  options: dict[str, Any] | None = None,
                  on_progress: ProgressCallback | None = None, known: KnownHash | None = None,
                  max_bytes: int = MAX_UNPACKED_BYTES) -> ProductStream:
    """Stream the source's products and per-row problems.

    Args:
        kind: one of READER_KINDS.
        mapping: target -> column for csv/json/xml (None: detected from the columns); the other kinds
            have built-in mappings and ignore it.
        options: reader options (delimiter, encoding, list_key, item_tag, store_url, currency...).
        on_progress: called with (rows_read, rows_total or None) every PROGRESS_EVERY rows and at the end.
        known: for csv/json/xml, the stored fingerprint of a row by external id; a row whose raw
            values still match is yielded as `Unchanged` without being mapped (re-syncs skip the work).
        max_bytes: the most a .gz / .zip source may unpack to (SHOPRELAY_SOURCE_MAX_BYTES).

    Raises SourceError (before or while iterating) when the file as a whole is unusable.
    """
    module = _module(kind)
    path = _check_file(Path(path), max_bytes)
    detected = module.detect_options(path, dict(options or {}))
    stats = ReadStats(on_progress=on_progress, size=path.stat().st_size)
    if hasattr(module, "iter_products"):
        items = module.iter_products(path, detected, stats)
    else:
        items = _mapped(module, path, mapping, detected, stats, known)
    return ProductStream(items, stats)


def _mapped(module: ModuleType, path: Path, mapping: dict[str, str] | None, options: dict[str, Any],
            stats: ReadStats, known: KnownHash | None = None) -> Iterator[Product | RowProblem | Unchanged]:
    rows = module.iter_rows(path, options, stats)
    defaults = defaults_from(options)
    active = module.BUILTIN_MAPPING or mapping
    salt = b""
    id_column = None
    for number, row in rows:
        stats.row_read()
        if isinstance(row, RowProblem):
            yield row
            continue
        if active is None:
            active = detect_mapping(column_names(row))
        if known is None:
            yield apply_mapping(row, active, number, defaults)
            continue
        if not salt:
            salt = hashlib.blake2b(repr((sorted(active.items()), sorted(defaults.items()))).encode(),
                                   digest_size=32).digest()
            id_column = active.get("external_id")
        fingerprint = row_fingerprint(list(row.values()), salt)
        external_id = row.get(id_column) if id_column else None
        if isinstance(external_id, str | int) and known(str(external_id).strip()) == fingerprint:
            yield Unchanged(str(external_id).strip(), fingerprint)  # re-sync fast path: no mapping
            continue
        item = apply_mapping(row, active, number, defaults)
        if isinstance(item, Product):
            item.source_hash = fingerprint
        yield item


def inspect_source(kind: str, path: Path, options: dict[str, Any] | None = None, *,
                   max_bytes: int = MAX_UNPACKED_BYTES) -> SourceInspection:
    """Columns, guessed mapping, the first 10 raw rows and detected options, for the mapping editor."""
    module = _module(kind)
    path = _check_file(Path(path), max_bytes)
    detected = module.detect_options(path, dict(options or {}))
    columns: dict[str, None] = dict.fromkeys(getattr(module, "header", lambda p, o: [])(path, detected))
    samples: list[dict[str, Any]] = []
    rows = module.iter_rows(path, detected, ReadStats())
    try:
        for seen, (_, row) in enumerate(rows, start=1):
            if isinstance(row, dict):
                columns.update(dict.fromkeys(column_names(row)))
                if len(samples) < 10:
                    samples.append(row)
            if seen >= 100:
                break
    finally:
        rows.close()
    builtin = module.BUILTIN_MAPPING
    mapping = dict(builtin) if builtin else detect_mapping(list(columns))
    return SourceInspection(list(columns), mapping, samples, detected)


def preview_products(kind: str, path: Path, *, mapping: dict[str, str] | None = None,
                     options: dict[str, Any] | None = None, limit: int = 10,
                     max_bytes: int = MAX_UNPACKED_BYTES) -> list[Product | RowProblem]:
    """The first `limit` products/problems the mapping gives, so the user sees its effect before saving."""
    stream = read_products(kind, path, mapping=mapping, options=options, max_bytes=max_bytes)
    preview: list[Product | RowProblem] = []
    try:
        for item in stream:
            preview.append(item)
            if len(preview) >= limit:
                break
    finally:
        stream.close()
    return preview


__all__ = [
    "READER_KINDS", "ProductStream", "ReadStats", "SourceInspection", "defaults_from", "discard_unpacked",
    "inspect_source",
    "preview_products", "read_products",
]
