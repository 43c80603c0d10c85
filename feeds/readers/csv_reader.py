"""CSV sources: encoding and delimiter detected, rows streamed, broken files rejected with the line."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from feeds.product import RowProblem, SourceError

BUILTIN_MAPPING = None
DELIMITERS = (",", ";", "\t", "|")
_SNIFF_BYTES = 64 * 1024
_CHUNK = 1024 * 1024
FIELD_SIZE_LIMIT = 8 * 1024 * 1024  # a runaway quote stops here instead of swallowing the file
MAX_COLUMNS = 5000  # WooCommerce exports with many attributes stay far below this
MAX_LINE_CHARS = 16 * 1024 * 1024  # one physical line; a file without line breaks stops here, not in memory


def detect_options(path: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Options with `encoding` and `delimiter` filled in when the user did not give them."""
    detected = dict(options)
    detected.setdefault("encoding", detect_encoding(path))
    if not detected.get("delimiter"):
        with open_text(path, detected["encoding"]) as handle:
            sample = _read_sample(handle, path)
        detected["delimiter"] = sniff_delimiter(sample)
    else:
        with path.open("rb") as handle:  # an HTML page is refused even when the delimiter is given
            _refuse_html(handle.read(64).decode("latin-1").removeprefix("\xef\xbb\xbf"))
    return detected


def detect_encoding(path: Path) -> str:
    """utf-8-sig / utf-16 from a BOM, else utf-8 when the whole file decodes, else cp1252."""
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(b"PK\x03\x04"):
        raise SourceError("the file is a ZIP archive (an Excel .xlsx?), not CSV text; export it as CSV")
    if b"\x00" in head:
        raise SourceError("the file contains NUL bytes: it is binary or UTF-16 without a byte order mark")
    if _decodes(path, "utf-8") is None:
        return "utf-8"
    offset = _decodes(path, "cp1252")
    if offset is not None:
        raise SourceError(f"the file is neither UTF-8 nor Windows-1252 text (undecodable byte at offset "
                          f"{offset}); save it as UTF-8")
    return "cp1252"


def _decodes(path: Path, encoding: str) -> int | None:
    """None when the whole file decodes, else the byte offset of the first bad byte."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return offset + exc.start
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return offset
    return None


def open_text(path: Path, encoding: str) -> io.TextIOWrapper:
    """The file as text for the csv module (newline="" so quoted line breaks survive)."""
    try:
        return path.open("r", encoding=encoding, newline="", errors="strict")
    except LookupError:
        raise SourceError(f"unknown text encoding {encoding!r}") from None


def _read_sample(handle: io.TextIOWrapper, path: Path) -> str:
    try:
        sample = handle.read(_SNIFF_BYTES)
    except UnicodeDecodeError as exc:
        raise SourceError(f"the start of {path.name} is not valid {handle.encoding} text: {exc.reason}") from None
    _refuse_html(sample)
    return sample


def _refuse_html(head: str) -> None:
    if head.lstrip()[:15].lower().startswith(("<!doctype html", "<html")):
        raise SourceError("the file is an HTML page, not CSV (a login or error page instead of the export?)")


def sniff_delimiter(sample: str) -> str:
    """The candidate delimiter giving the most header columns with the most rows of the same width."""
    lines = sample.splitlines(keepends=True)
    if len(lines) > 1 and len(sample) >= _SNIFF_BYTES - 1:
        lines = lines[:-1]  # the last line of a cut sample is likely incomplete
    text = "".join(lines[:200])
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        try:
            rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
        except csv.Error:
            continue
        rows = [row for row in rows if row]
        if not rows or len(rows[0]) < 2:
            continue
        score = (sum(len(row) == len(rows[0]) for row in rows[1:]) + 1, len(rows[0]))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def unique_header(names: list[str]) -> list[str]:
    """Header with blanks named and duplicates numbered, so no column silently overwrites another."""
    if len(names) > MAX_COLUMNS:
        raise SourceError(f"the header row has {len(names)} columns; more than {MAX_COLUMNS} is not a product "
                          f"export (wrong delimiter, or not CSV at all?)")
    seen: dict[str, int] = {}
    header: list[str] = []
    for position, raw in enumerate(names, start=1):
        name = raw.strip() or f"column_{position}"
        if name in seen:
            seen[name] += 1
            name = f"{name} ({seen[name]})"
        else:
            seen[name] = 1
        header.append(name)
    return header


def iter_records(path: Path, options: dict[str, Any],
                 follow: Callable[[Any], None] | None = None) -> Iterator[tuple[int, list[str], list[str]]]:
    """(line where the record starts, header, values) for each non-blank record after the header; `follow` is
    given the open handle (ReadStats.follow: how far the read is)."""
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))
    encoding = options.get("encoding") or detect_encoding(path)
    with open_text(path, encoding) as handle:
        if follow is not None:
            follow(handle)
        reader = csv.reader(bounded_lines(handle), delimiter=options.get("delimiter") or ",", strict=True)
        line = 0
        try:
            header = unique_header(next(reader, []))
            if not header:
                raise SourceError("the CSV file has no header row")
            line = reader.line_num
            for values in reader:
                start, line = line + 1, reader.line_num
                if any(value.strip() for value in values):
                    yield start, header, values
        except csv.Error as exc:
            raise SourceError(f"CSV is malformed at line {reader.line_num or line + 1}: {exc} "
                              f"(check the quotes on that line)") from None
        except UnicodeDecodeError as exc:
            raise SourceError(f"the file is not valid {encoding} text: line {_line_of_bad_byte(path, encoding)} "
                              f"has an undecodable byte ({exc.reason}); choose the right encoding or save "
                              f"the file as UTF-8") from None


def bounded_lines(handle: io.TextIOWrapper) -> Iterator[str]:
    """The text's lines for the csv module, each at most MAX_LINE_CHARS long (else SourceError with the line)."""
    number = 0
    while line := handle.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise SourceError(f"line {number} is longer than {MAX_LINE_CHARS // (1024 * 1024)} million characters "
                              f"(a file without line breaks, or not CSV at all)")
        yield line


def _line_of_bad_byte(path: Path, encoding: str) -> int:
    offset = _decodes(path, encoding) or 0
    with path.open("rb") as handle:
        return handle.read(offset).count(b"\n") + 1


def header(path: Path, options: dict[str, Any]) -> list[str]:
    """The header row alone (the columns even of a file without data rows)."""
    with open_text(path, options["encoding"]) as handle:
        try:
            return unique_header(next(csv.reader(bounded_lines(handle), delimiter=options["delimiter"], strict=True),
                                      []))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise SourceError(f"cannot read the CSV header: {exc}") from None


def iter_rows(path: Path, options: dict[str, Any],
              stats: Any = None) -> Iterator[tuple[int, dict[str, Any] | RowProblem]]:
    """Rows as column -> text; a row with more values than the header is a problem, fewer are padded."""
    for line, names, values in iter_records(path, options, stats.follow if stats is not None else None):
        if len(values) > len(names):
            yield line, RowProblem(line, f"line {line} has {len(values)} values but the header has "
                                         f"{len(names)} columns")
            continue
        yield line, dict(zip(names, values + [""] * (len(names) - len(values)), strict=True))
