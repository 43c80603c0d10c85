"""Feed writers: stream product dicts into feed files (Klaviyo XML/JSON, Google RSS, Meta CSV).

One pass over the products, constant memory apart from the set of seen ids: each item is copied,
mapped through the user's overrides, validated, rendered to bytes and appended to the current
part; parts are split by size so each stays under the platform's file limit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from feeds.product import PRODUCT_FIELDS
from feeds.validation import FeedValidator, FieldRules
from feeds.writers.google import GoogleRss
from feeds.writers.klaviyo import KlaviyoJson, KlaviyoXml
from feeds.writers.meta import MetaCsv

KLAVIYO_MAX_FILE_BYTES = 100 * 1024 * 1024
PROGRESS_EVERY = 10_000
_FLUSH_BYTES = 1 << 20


class FeedRenderer(Protocol):
    """What a format module provides: the document frame and one item's bytes."""

    rules: FieldRules
    header: bytes
    footer: bytes
    separator: bytes

    def prepare(self, item: dict[str, Any]) -> None: ...

    def render(self, item: Mapping[str, Any]) -> bytes: ...


@dataclass(frozen=True, slots=True)
class FeedFormat:
    name: str
    extension: str
    content_type: str
    label: str
    renderer: Callable[[Mapping[str, Any], str], FeedRenderer]
    max_file_bytes: int | None = None


FEED_FORMATS: dict[str, FeedFormat] = {
    "klaviyo_xml": FeedFormat("klaviyo_xml", "xml", "application/xml; charset=utf-8",
                              "Klaviyo catalog (XML)", KlaviyoXml, KLAVIYO_MAX_FILE_BYTES),
    "klaviyo_json": FeedFormat("klaviyo_json", "json", "application/json",
                               "Klaviyo catalog (JSON)", KlaviyoJson, KLAVIYO_MAX_FILE_BYTES),
    "google_rss": FeedFormat("google_rss", "xml", "application/xml; charset=utf-8",
                             "Google Merchant Center (RSS 2.0)", GoogleRss),
    "meta_csv": FeedFormat("meta_csv", "csv", "text/csv; charset=utf-8", "Meta catalog (CSV)", MetaCsv),
}


@dataclass(frozen=True, slots=True)
class PartInfo:
    name: str
    path: Path
    bytes: int
    items: int
    sha256: str


@dataclass(slots=True)
class WriteResult:
    parts: list[PartInfo]
    items_written: int
    items_skipped: int
    report: dict[str, Any] = field(default_factory=dict)


def write_feed(fmt: str, products: Iterable[Mapping[str, Any]], out_dir: Path, *, basename: str,
               overrides: dict[str, str] | None = None, channel: dict[str, Any] | None = None,
               split_bytes: int | None = None, default_currency: str = "USD",
               on_progress: Callable[[int], None] | None = None, ids_unique: bool = False) -> WriteResult:
    """Write `products` as feed `fmt` into `out_dir` as `<basename>.<ext>`, `<basename>-2.<ext>`, ...

    Args:
        products: product dicts (PRODUCT_FIELDS keys plus the database `id`); never mutated.
        overrides: `{field: template}` with `{field}` / `{extras.key}` placeholders, applied first.
        channel: feed-level values: Google's channel `title`/`link`/`description`; Meta's brand
            fallback `store_name` (else `title`).
        split_bytes: start a new part (each a complete document) before one would exceed this size.
        on_progress: called with the number of products consumed, every PROGRESS_EVERY and at the end.
        ids_unique: the caller guarantees unique external ids (one database source), so the duplicate
            check and its set of seen ids are skipped.

    `out_dir` should be a fresh staging directory (the caller publishes its files atomically):
    same-named files are overwritten, stale parts of an earlier, longer build are not removed.
    Raises ValueError for an unknown format, a bad override or a non-positive split size. On any
    error the partly written files are removed.
    """
    feed_format = FEED_FORMATS.get(fmt)
    if feed_format is None:
        raise ValueError(f"unknown feed format {fmt!r}; expected one of {', '.join(FEED_FORMATS)}")
    if split_bytes is not None and split_bytes <= 0:
        raise ValueError("split_bytes must be positive")
    apply_overrides = compile_overrides(overrides or {})
    renderer = feed_format.renderer(channel or {}, default_currency)
    validator = FeedValidator(renderer.rules, track_duplicates=not ids_unique)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = _PartWriter(out_dir, basename, feed_format.extension, renderer, split_bytes)
    consumed = 0
    try:
        for product in products:
            consumed += 1
            item = dict(product)
            if apply_overrides is not None:
                apply_overrides(item)
            renderer.prepare(item)
            if validator.check(item):
                writer.write(renderer.render(item))
                validator.count_written(item)
            if on_progress is not None and consumed % PROGRESS_EVERY == 0:
                on_progress(consumed)
        parts = writer.finish()
    except BaseException:
        writer.abort()
        raise
    if on_progress is not None and consumed % PROGRESS_EVERY:
        on_progress(consumed)
    if writer.oversized:
        validator.notes.append(f"{writer.oversized} item(s) larger than the split size got a part of their own")
    limit = feed_format.max_file_bytes
    for part in parts:
        if limit is not None and part.bytes > limit:
            validator.notes.append(f"{part.name} is {part.bytes} bytes, over the platform's {limit}-byte "
                                   "limit: set a split size")
    return WriteResult(parts=parts, items_written=validator.written,
                       items_skipped=sum(validator.skipped.values()), report=validator.report())


class _PartWriter:
    """Appends rendered items to numbered parts, buffering writes and hashing as it goes."""

    def __init__(self, out_dir: Path, basename: str, extension: str, renderer: FeedRenderer,
                 split_bytes: int | None) -> None:
        self.out_dir, self.basename, self.extension = out_dir, basename, extension
        self.header, self.footer, self.separator = renderer.header, renderer.footer, renderer.separator
        self.split_bytes = split_bytes
        self.parts: list[PartInfo] = []
        self.oversized = 0
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._hash = hashlib.sha256()
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._size = 0
        self._items = 0

    def write(self, chunk: bytes) -> None:
        if self._file is None:
            self._open()
        if self._items:
            extra = len(self.separator) + len(chunk)
            if self.split_bytes is not None and self._size + extra + len(self.footer) > self.split_bytes:
                self._close()
                self._open()
            elif self.separator:
                self._emit(self.separator)
        if self.split_bytes is not None and self._size + len(chunk) + len(self.footer) > self.split_bytes:
            self.oversized += 1
        self._emit(chunk)
        self._items += 1

    def finish(self) -> list[PartInfo]:
        """Close the last part; an empty feed still gets one valid, empty document."""
        if self._file is None:
            self._open()
        self._close()
        return self.parts

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        for path in [part.path for part in self.parts] + ([self._path] if self._path else []):
            path.unlink(missing_ok=True)

    def _open(self) -> None:
        number = len(self.parts) + 1
        suffix = "" if number == 1 else f"-{number}"
        self._path = self.out_dir / f"{self.basename}{suffix}.{self.extension}"
        self._file = self._path.open("wb")
        self._hash = hashlib.sha256()
        self._size = self._items = 0
        self._emit(self.header)

    def _close(self) -> None:
        assert self._file is not None and self._path is not None
        self._emit(self.footer)
        self._flush()
        self._file.close()
        self._file = None
        self.parts.append(PartInfo(self._path.name, self._path, self._size, self._items,
                                   self._hash.hexdigest()))

    def _emit(self, data: bytes) -> None:
        self._buffer.append(data)
        self._buffered += len(data)
        self._size += len(data)
        if self._buffered >= _FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._buffered = 0
        self._hash.update(data)
        self._file.write(data)  # type: ignore[union-attr]


# -- field mapping overrides: a tiny template language, `{field}` and `{extras.key}`, no eval --

OVERRIDABLE_FIELDS = frozenset(("external_id", "item_group_id", "title", "description", "link",
                                "image_link", "brand", "sku", "gtin", "mpn", "condition", "currency"))
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_READABLE = frozenset((*PRODUCT_FIELDS, "id"))


def validate_overrides(overrides: Mapping[str, str]) -> list[str]:
    """Error messages for a mapping-overrides form (empty when every template compiles)."""
    errors = []
    for target, template in overrides.items():
        try:
            _target_setter(target)
            _compile_template(target, template)
        except ValueError as error:
            errors.append(str(error))
    return errors


def compile_overrides(overrides: Mapping[str, str]) -> Callable[[dict[str, Any]], None] | None:
    """A function that rewrites an item dict in place; None when there is nothing to apply.

    Every template reads the item as it was before any override, so their order does not matter.
    """
    if not overrides:
        return None
    compiled = [(_target_setter(target), _compile_template(target, template))
                for target, template in overrides.items()]

    def apply(item: dict[str, Any]) -> None:
        values = [(setter, render(item)) for setter, render in compiled]
        for setter, value in values:
            setter(item, value)

    return apply


def _target_setter(target: str) -> Callable[[dict[str, Any], str], None]:
    if target.startswith("extras.") and len(target) > len("extras."):
        key = target[len("extras."):]

        def set_extra(item: dict[str, Any], value: str) -> None:
            item["extras"] = {**(item.get("extras") or {}), key: value}

        return set_extra
    if target not in OVERRIDABLE_FIELDS:
        raise ValueError(f"override {target!r}: only text fields ({', '.join(sorted(OVERRIDABLE_FIELDS))}) "
                         "or extras.<key> can be overridden")

    def set_field(item: dict[str, Any], value: str) -> None:
        item[target] = value

    return set_field


def _compile_template(target: str, template: str) -> Callable[[Mapping[str, Any]], str]:
    if not isinstance(template, str):
        raise ValueError(f"override {target!r}: the template must be text")
    pieces: list[str | Callable[[Mapping[str, Any]], Any]] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        literal = template[position:match.start()]
        if "{" in literal or "}" in literal:
            raise ValueError(f"override {target!r}: unbalanced brace in {template!r} (write {{{{ or }}}})")
        pieces.append(literal)
        token = match.group(0)
        if token in ("{{", "}}"):
            pieces.append(token[0])
        else:
            pieces.append(_getter(target, match.group(1).strip()))
        position = match.end()
    rest = template[position:]
    if "{" in rest or "}" in rest:
        raise ValueError(f"override {target!r}: unbalanced brace in {template!r} (write {{{{ or }}}})")
    pieces.append(rest)
    pieces = [piece for piece in pieces if piece != ""]

    def render(item: Mapping[str, Any]) -> str:
        return "".join(piece if isinstance(piece, str) else _as_text(piece(item)) for piece in pieces)

    return render


def _getter(target: str, name: str) -> Callable[[Mapping[str, Any]], Any]:
    if name.startswith("extras.") and len(name) > len("extras."):
        key = name[len("extras."):]
        return lambda item: (item.get("extras") or {}).get(key)
    if name not in _READABLE or name == "extras":
        raise ValueError(f"override {target!r}: unknown field {{{name}}}; use a product field or {{extras.key}}")
    return lambda item: item.get(name)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(_as_text(element) for element in value)
    return str(value)
