"""JSON sources: a top-level array, an object holding the list (e.g. {"products": [...]}), or JSON Lines.

Plain JSON is streamed one item at a time (json_stream.py: memory stays flat whatever the file's size); JSON
Lines is read one line at a time. A JSON Lines file whose lines are page objects ({"products": [...]} per line)
is expanded page by page.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from feeds.product import RowProblem, SourceError
from feeds.readers.json_stream import document_shape, stream_items

BUILTIN_MAPPING = None
WRAPPER_KEYS = ("products", "items", "data", "results", "entries", "records", "rows", "offers", "catalog",
                "variants", "docs", "list")
_HEAD_BYTES = 64 * 1024
MAX_DEPTH = 32  # a product is a few levels deep; deeper nesting is refused per item (mapping recurses)
MAX_LINE_BYTES = 64 * 1024 * 1024  # one JSON Lines line (one page of products at most)


def detect_options(path: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Fill in `format` ("json" or "jsonl") and `list_key` (dotted path to the list, "" for none)."""
    detected = dict(options)
    if not detected.get("format"):
        detected["format"] = "jsonl" if _looks_like_json_lines(path) else "json"
    if "list_key" not in detected or detected["list_key"] is None:
        if detected["format"] == "jsonl":
            first = _first_line_object(path)
            detected["list_key"] = find_list_key(first) if isinstance(first, dict) else ""
        else:
            shape = document_shape(path)
            detected["list_key"] = find_list_key(shape) if isinstance(shape, dict) else ""
    return detected


def _first_line_object(path: Path) -> Any:
    with path.open("rb") as handle:
        for raw in bounded_lines(handle):
            line = raw.removeprefix(codecs.BOM_UTF8).strip()
            if line:
                try:
                    return orjson.loads(line)
                except orjson.JSONDecodeError:
                    return None
    return None


def _looks_like_json_lines(path: Path) -> bool:
    """True when the first line is a whole JSON object and a second non-blank line follows."""
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return True
    lines: list[bytes] = []
    with path.open("rb") as handle:
        while raw := handle.readline(MAX_LINE_BYTES + 1):
            if len(raw) > MAX_LINE_BYTES:
                return False  # one huge line: a minified JSON document, not JSON Lines
            line = raw.removeprefix(codecs.BOM_UTF8).strip()
            if line:
                lines.append(line)
            if len(lines) == 2 or sum(map(len, lines)) > _HEAD_BYTES:
                break
    if len(lines) < 2 or not lines[0].startswith(b"{"):
        return False
    try:
        return isinstance(orjson.loads(lines[0]), dict)
    except orjson.JSONDecodeError:
        return False


def find_list_key(document: dict[str, Any], depth: int = 0) -> str:
    """Dotted path to the list of items inside a wrapper object, "" when the object is itself an item (a JSON
    Lines page, or a plain document's outline from json_stream.document_shape)."""
    for key in WRAPPER_KEYS:
        value = document.get(key)
        if isinstance(value, list):
            return key
        if isinstance(value, dict) and depth < MAX_DEPTH:
            inner = find_list_key(value, depth + 1)
            if inner:
                return f"{key}.{inner}"
    lists = [key for key, value in document.items()
             if isinstance(value, list) and value and all(isinstance(v, dict) for v in value[:10])]
    if len(document) <= 3 and len(lists) == 1:
        return lists[0]
    return ""


def items_at(document: Any, list_key: str) -> list[Any]:
    """The item list a (dotted) list key points at; a lone object is a list of one item."""
    if isinstance(document, list):
        return document
    current = document
    for part in filter(None, (list_key or "").split(".")):
        if not isinstance(current, dict) or part not in current:
            raise SourceError(f"the JSON has no list at {list_key!r}")
        current = current[part]
    if isinstance(current, list):
        return current
    if isinstance(current, dict):
        return [current]
    raise SourceError(f"the JSON at {list_key or 'the top level'} is neither a list nor an object")


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether objects and arrays nest more than `limit` levels (checked without recursion)."""
    stack = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        children = current.values() if isinstance(current, dict) else current if isinstance(current, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def iter_items(path: Path, options: dict[str, Any], stats: Any = None) -> Iterator[tuple[int, Any]]:
    """(item number, raw JSON value) for every item; bad JSON Lines lines and items nested deeper than
    MAX_DEPTH come as RowProblems."""
    for number, item in _raw_items(path, options, stats.follow if stats is not None else None):
        if isinstance(item, dict | list) and too_deep(item):
            yield number, RowProblem(number, f"item {number} nests objects or arrays more than {MAX_DEPTH} levels "
                                             f"deep; a product is never that deep")
        else:
            yield number, item


def bounded_lines(handle: Any, *, holds: str = "one product (or one page of products)") -> Iterator[bytes]:
    """The file's lines, each at most MAX_LINE_BYTES (a longer one ends the read with the reason); `holds` says
    what one line should be, for that reason. Order imports read their JSON Lines with it too."""
    line_number = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        line_number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise SourceError(f"line {line_number} is longer than {MAX_LINE_BYTES // (1024 * 1024)} MB; JSON Lines "
                              f"hold {holds} per line")
        yield raw


def _raw_items(path: Path, options: dict[str, Any],
               follow: Callable[[Any], None] | None = None) -> Iterator[tuple[int, Any]]:
    list_key = options.get("list_key") or ""
    if options.get("format") != "jsonl":
        yield from enumerate(stream_items(path, list_key, follow), start=1)
        return
    number = 0
    with path.open("rb") as handle:
        if follow is not None:
            follow(handle)
        for line_number, raw in enumerate(bounded_lines(handle), start=1):
            line = raw.removeprefix(codecs.BOM_UTF8).strip() if line_number == 1 else raw.strip()
            if not line:
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                if number == 0:
                    raise SourceError(f"line {line_number} is not valid JSON: {exc.msg}") from None
                number += 1
                yield number, RowProblem(number, f"line {line_number} is not valid JSON: {exc.msg}")
                continue
            for item in items_at(value, list_key) if list_key else [value]:
                number += 1
                yield number, item


def iter_rows(path: Path, options: dict[str, Any],
              stats: Any = None) -> Iterator[tuple[int, dict[str, Any] | RowProblem]]:
    for number, item in iter_items(path, options, stats):
        if isinstance(item, dict | RowProblem):
            yield number, item
        else:
            yield number, RowProblem(number, f"item {number} is not an object but {type(item).__name__}")
