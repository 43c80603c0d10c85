"""Plain JSON sources read as a stream: one item in memory at a time, whatever the file's size.

Loading a whole document took about six times the file in memory (a 160 MB export peaked at 1 GB, a file at the
2 GB source cap would need some 12 GB), so a big JSON export killed the worker that synced it. ijson (yajl)
parses the file in pieces and builds one item at a time; the parser's events pass a depth guard first, because
yajl itself has no nesting limit and an input of nothing but `[[[[…` would otherwise build a billion nested lists.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ijson

from feeds.product import SourceError

DEPTH_LIMIT = 1024  # as orjson's: items deeper than the readers' MAX_DEPTH still come as row problems
PIECE_BYTES = 64 * 1024  # what the parser gets per read, at least (see _Utf8Pieces.read)
PIECE_MAX_BYTES = 4 * 1024 * 1024  # and at most: a long token is read in pieces as long as itself up to this
KEY_CAP = 10_000    # keys kept per object when sketching a document's shape (a map of id → product has millions)
MAX_ITEM_BYTES = 64 * 1024 * 1024  # one product, as one JSON Lines line may be: more is refused while it is read


class _Utf8Pieces:
    """The file as UTF-8 bytes in pieces (a UTF-8 BOM dropped, UTF-16 transcoded), remembering the current piece,
    the end of the previous one and the lines before them, to say where a syntax error is; and where the parser
    last stood between items, to refuse one item over MAX_ITEM_BYTES while it is read."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        head = handle.read(2)
        self.decoder = None
        if head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            self.decoder = codecs.getincrementaldecoder("utf-16")()
            self.pending = self.decoder.decode(head).encode()
        else:
            rest = handle.read(1) if head == codecs.BOM_UTF8[:2] else b""
            self.pending = b"" if head + rest == codecs.BOM_UTF8 else head + rest
        self.recent = b""       # the current piece and the end of the previous one
        self.lines_before = 0   # newlines before `recent`
        self.ended = False
        self.consumed = 0       # bytes handed to the parser
        self.boundary = 0       # `consumed` when the parser last stood between items (or tokens)
        self.item = 0           # the item being read (0: the reader counts no items)

    def read(self, size: int = -1) -> bytes:
        """At most `size` bytes; PIECE_BYTES, or as much as the value still open when that is more: yajl scans
        a token split across reads again from its start, so a long one read in small pieces cost quadratic time."""
        want = min(PIECE_MAX_BYTES, max(PIECE_BYTES, self.consumed - self.boundary))
        if size is not None and size >= 0:
            want = min(size, want)
        piece = self.pending[:want]
        self.pending = self.pending[want:]
        if len(piece) < want and not self.ended:
            piece += self._more(want - len(piece))
        tail = self.recent[-PIECE_BYTES:]
        self.lines_before += self.recent[:len(self.recent) - len(tail)].count(b"\n")
        self.recent = tail + piece
        self.consumed += len(piece)
        if self.consumed - self.boundary > MAX_ITEM_BYTES:
            raise SourceError(self._too_big())
        return piece

    def _too_big(self) -> str:
        limit = MAX_ITEM_BYTES // (1024 * 1024)
        if self.item:
            return (f"item {self.item} of the JSON is larger than {limit} MB; a product never is (is the list of "
                    f"products under another key? set the source's list key)")
        line = self.lines_before + self.recent.count(b"\n") + 1
        return f"one value in the JSON (ending after line {line:,}) is larger than {limit} MB; a product never is"

    def _more(self, size: int) -> bytes:
        """Up to `size` more bytes (never none before the end: the parser takes an empty read for the end)."""
        while raw := self.handle.read(size):
            if self.decoder is None:
                return raw
            if data := self._decoded(raw):  # a lone byte of a UTF-16 pair decodes to nothing yet
                self.pending = data[size:]
                return data[:size]
        self.ended = True
        return self._decoded(b"", final=True) if self.decoder is not None else b""

    def _decoded(self, raw: bytes, *, final: bool = False) -> bytes:
        try:
            return self.decoder.decode(raw, final).encode()  # type: ignore[union-attr]
        except UnicodeDecodeError as exc:
            raise SourceError(f"the JSON file is not valid UTF-16 text: {exc.reason}") from None

    def where(self, snippet: str) -> tuple[int, int] | None:
        """(line, column) of the error yajl's snippet points at, found in the text read last."""
        lines = snippet.splitlines()
        if len(lines) < 3 or "^" not in lines[2]:
            return None
        caret = lines[2].index("^")
        context, after = lines[1][:caret].lstrip(), lines[1][caret:].rstrip()
        window = re.sub(rb"[\r\n\t]", b" ", self.recent).decode("utf-8", errors="replace")
        for probe in (context + after, context):
            if probe and (found := window.rfind(probe)) >= 0:
                offset = len(window[:found + len(context)].encode("utf-8", errors="replace"))
                return self._line_column(offset)
        return None

    def end(self) -> tuple[int, int]:
        return self._line_column(len(self.recent))

    def _line_column(self, offset: int) -> tuple[int, int]:
        head = self.recent[:offset]
        line = self.lines_before + head.count(b"\n") + 1
        column = len(head) - (head.rfind(b"\n") + 1) + 1
        return line, column


@contextmanager
def _parsing(path: Path) -> Iterator[_Utf8Pieces]:
    """The file open for the parser; ijson's errors turn into SourceErrors that say where and why."""
    with path.open("rb") as handle:
        pieces = _Utf8Pieces(handle)
        try:
            yield pieces
        except ijson.JSONError as exc:
            raise _syntax_error(path, pieces, exc) from None


def _syntax_error(path: Path, pieces: _Utf8Pieces, exc: Exception) -> SourceError:
    message = exc.args[0] if exc.args else str(exc)
    if isinstance(message, bytes):
        message = message.decode("utf-8", errors="replace")
    message = str(message)
    reason = message.splitlines()[0] if message else "not JSON"
    reason = re.sub(r"^(parse|lexical) error: ", "", reason).rstrip(".")
    with path.open("rb") as handle:
        head = handle.read(64).lstrip().removeprefix(codecs.BOM_UTF8).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return SourceError("the file is an HTML page, not JSON (a login or error page?)")
    place = pieces.end() if "premature EOF" in reason else pieces.where(message)
    if place is None:
        return SourceError(f"invalid JSON near line {pieces.lines_before + 1}: {reason}")
    return SourceError(f"invalid JSON at line {place[0]} column {place[1]}: {reason}")


def _guarded(events: Iterator[tuple[Any, ...]], pieces: _Utf8Pieces,
             item_depth: int | None = None) -> Iterator[tuple[Any, ...]]:
    """The parser's events, refused past DEPTH_LIMIT levels of nesting (before anything that deep is built).

    Also tells `pieces` where the parser stands between items (objects or arrays at `item_depth`, or any value
    when None), so a single item over MAX_ITEM_BYTES is refused while it is read, not after it is built."""
    depth = 0
    for event in events:
        kind = event[-2]
        if kind == "start_map" or kind == "start_array":
            depth += 1
            if depth > DEPTH_LIMIT:
                raise SourceError(f"the JSON nests objects or arrays more than {DEPTH_LIMIT} levels deep (over the "
                                  f"depth limit); a product is never that deep")
            if depth == item_depth:
                pieces.item += 1
        elif kind == "end_map" or kind == "end_array":
            depth -= 1
        elif item_depth is not None and depth == item_depth - 1 and kind != "map_key":
            pieces.item += 1  # a scalar item
        if item_depth is None or depth < item_depth:
            pieces.boundary = pieces.consumed
        yield event


def document_shape(path: Path) -> Any:
    """The document's outline for finding the item list: objects with their keys (at most KEY_CAP each), lists
    as up to ten placeholders (`{}` for an object item, None for anything else), scalars as None. A list at the
    top is answered at once (its items are the products)."""
    with _parsing(path) as pieces:
        events = _guarded(ijson.basic_parse(pieces, buf_size=PIECE_MAX_BYTES, use_float=True), pieces)
        first = next(events, None)
        if first is None:
            raise SourceError("the JSON file holds no value")
        if first[0] == "start_array":
            return []
        if first[0] != "start_map":
            return first[1]
        return _sketch_object(events)


def _sketch_object(events: Iterator[tuple[Any, ...]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    objects: list[dict[str, Any]] = [root]
    keys: list[str] = [""]
    listing: list[Any] | None = None  # the list being summarised; its items are not entered
    inside = 0                        # nesting within that list's current item
    for event, value in events:
        if listing is not None:
            if inside == 0:
                if event == "end_array":
                    listing = None
                    continue
                if len(listing) < 10:
                    listing.append({} if event == "start_map" else None)
            if event in ("start_map", "start_array"):
                inside += 1
            elif event in ("end_map", "end_array"):
                inside -= 1
            continue
        if event == "map_key":
            keys[-1] = value
            continue
        if event == "end_map":
            objects.pop()
            keys.pop()
            if not objects:
                break
            continue
        target, key = objects[-1], keys[-1]
        keep = len(target) < KEY_CAP or key in target
        if event == "start_map":
            child: dict[str, Any] = {}
            if keep:
                target[key] = child
            objects.append(child)
            keys.append("")
        elif event == "start_array":
            listing, inside = [], 0
            if keep:
                target[key] = listing
        elif keep:
            target[key] = None
    for _ in events:  # the rest of the file, so trailing garbage is an error here as it is when syncing
        pass
    return root


def stream_items(path: Path, list_key: str, follow: Callable[[Any], None] | None = None) -> Iterator[Any]:
    """The items of the list at `list_key` (dotted; "" for the top level) one at a time; an object there is a
    list of one item; `follow` is given the open file (ReadStats.follow). Raises SourceError (before or while
    iterating) for a file that is not usable JSON."""
    parts = [part for part in (list_key or "").split(".") if part]
    prefix = ".".join(parts)
    found = _value_kind(path, prefix)
    if found is None:
        raise SourceError(f"the JSON has no list at {list_key!r}")
    if found not in ("start_array", "start_map"):
        raise SourceError(f"the JSON at {list_key or 'the top level'} is neither a list nor an object")
    wanted = (f"{prefix}.item" if prefix else "item") if found == "start_array" else prefix
    item_depth = len(parts) + (2 if found == "start_array" else 1)  # the items' own depth (the top level is 1)
    with _parsing(path) as pieces:
        if follow is not None:
            follow(pieces.handle)
        events = _guarded(ijson.parse(pieces, buf_size=PIECE_MAX_BYTES, use_float=True), pieces, item_depth)
        yield from ijson.items(events, wanted, use_float=True)


def _value_kind(path: Path, prefix: str) -> str | None:
    """The parser event that starts the value at `prefix` (start_array, start_map or a scalar's), None when the
    document has none there; reads only as far as that value (the whole file when it is missing)."""
    with _parsing(path) as pieces:
        for event_prefix, event, _ in _guarded(ijson.parse(pieces, buf_size=PIECE_MAX_BYTES, use_float=True), pieces):
            if event_prefix == prefix and event not in ("map_key", "end_map", "end_array"):
                return event
    return None
