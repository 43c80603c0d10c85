"""Bounded decompression: gzip / deflate bodies and .gz / .zip source files, safe against compression bombs.

A few kilobytes of gzip can expand to gigabytes (and gzip inside gzip to terabytes), so nothing here asks zlib
for more than one slice at a time, every byte produced counts against a cap, and an output far larger than its
input (a ratio no real catalog reaches) stops the read with the reason before the cap is even reached.
"""

from __future__ import annotations

import contextlib
import glob
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from feeds.product import SourceError

MAX_UNPACKED_BYTES = 2 * 1024 * 1024 * 1024  # the default cap of a downloaded source (SOURCE_MAX_BYTES)
SLICE = 1024 * 1024  # most bytes one decompress call may return
MAX_RATIO = 200  # real exports compress 3-20x; a bomb's deflate runs ~1000x, nested layers far more
RATIO_AFTER = 10 * 1024 * 1024  # ratios are judged once this much was produced (tiny files compress well)
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
_WBITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}


def _megabytes(limit: int) -> str:
    return f"{limit / (1024 * 1024):g}"


class Budget:
    """Counts what one read produced against `max_bytes` and against MAX_RATIO times what it consumed."""

    def __init__(self, max_bytes: int, what: str) -> None:
        self.max_bytes, self.what = max_bytes, what
        self.consumed = self.produced = 0

    def took(self, consumed: int) -> None:
        self.consumed += consumed

    def gave(self, produced: int) -> None:
        self.produced += produced
        if self.produced > self.max_bytes:
            raise SourceError(f"{self.what} expands to more than the {_megabytes(self.max_bytes)} MB cap")
        if self.produced > RATIO_AFTER and self.produced > MAX_RATIO * max(self.consumed, 1):
            raise SourceError(f"{self.what} expands more than {MAX_RATIO} times ({self.consumed} compressed bytes "
                              f"gave {self.produced} so far): refused as a compression bomb")


def inflate(chunks: Iterable[bytes], wbits: int, *, took: Callable[[int], None] | None = None,
            gave: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """Decompress a stream one slice at a time, reporting bytes taken and given; SourceError on bad data.

    Gzip members may follow one another (`cat a.gz b.gz`, pigz): each is read in turn; other trailing bytes
    after the end of the stream are ignored, as gzip(1) does."""
    decompressor = zlib.decompressobj(wbits)
    try:
        for chunk in chunks:
            data = chunk
            while data:
                out = decompressor.decompress(data, SLICE)
                if took is not None:
                    took(len(data) - len(decompressor.unconsumed_tail) - len(decompressor.unused_data))
                if gave is not None:
                    gave(len(out))
                if out:
                    yield out
                data = decompressor.unconsumed_tail
                if decompressor.eof:
                    data = decompressor.unused_data
                    if not (wbits & 16 and data.startswith(GZIP_MAGIC)):
                        return
                    decompressor = zlib.decompressobj(wbits)
        if not decompressor.eof:
            raise SourceError("the compressed data ends early (truncated download?)")
    except zlib.error as exc:
        raise SourceError(f"the compressed data is corrupt: {exc}") from None


def decode_content(chunks: Iterable[bytes], content_encoding: str, budget: Budget) -> Iterator[bytes]:
    """An HTTP body decoded per its Content-Encoding (layers undone last first), within `budget`: the wire
    bytes count as consumed, the final output as produced, so stacked layers cannot hide a bomb's ratio."""
    layers = [token.strip().lower() for token in content_encoding.split(",") if token.strip()]
    layers = [token for token in layers if token != "identity"]
    unknown = [token for token in layers if token not in _WBITS]
    if unknown:
        raise SourceError(f"the server answered with Content-Encoding {', '.join(unknown)}, which shoprelay does "
                          f"not read (it asks for gzip or deflate)")
    if not layers:
        for chunk in chunks:
            budget.took(len(chunk))
            budget.gave(len(chunk))
            yield chunk
        return
    stream: Iterable[bytes] = chunks
    order = list(reversed(layers))
    for depth, token in enumerate(order):
        stream = inflate(stream, _WBITS[token], took=budget.took if depth == 0 else None,
                         gave=budget.gave if depth == len(order) - 1 else None)
    yield from stream


def compression_of(path: Path) -> str | None:
    """"gzip", "zip" or None, from the file's first bytes."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head == ZIP_MAGIC:
        return "zip"
    return None


def _read_file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(SLICE):
            yield chunk


def _zip_member(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    members = [info for info in archive.infolist() if not info.is_dir() and not info.filename.startswith("__MACOSX")]
    if any(info.filename == "[Content_Types].xml" for info in members):
        raise SourceError("the file is an Office document (an Excel .xlsx?), not an export; save it as CSV")
    if len(members) != 1:
        raise SourceError(f"the ZIP archive holds {len(members)} files; it must hold exactly one export file")
    return members[0]


def _zip_chunks(path: Path, budget: Budget) -> Iterator[bytes]:
    """The one member's content, inflated here from its raw bytes: the ratio is judged on what was read so far
    (zipfile would hide that), the output may not pass the size the archive declares, and the CRC must match."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = _zip_member(archive)
    except NotImplementedError as exc:  # zipfile's word for a version or feature it does not read
        raise SourceError(f"the ZIP archive uses a feature shoprelay cannot read ({exc}); save it again as a plain "
                          f"ZIP") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, struct.error) as exc:
        raise SourceError(f"the ZIP archive is corrupt: {exc}") from None
    if info.flag_bits & 0x1:
        raise SourceError("the ZIP archive is encrypted; upload the export itself or an unencrypted ZIP")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise SourceError("the ZIP archive uses a compression method other than deflate")
    if info.file_size > budget.max_bytes:
        raise SourceError(f"the file in the ZIP archive is {info.file_size} bytes, more than the "
                          f"{_megabytes(budget.max_bytes)} MB cap")
    crc = produced = 0
    with path.open("rb") as handle:
        raw = _member_bytes(handle, info)
        chunks = raw if info.compress_type == zipfile.ZIP_STORED else inflate(raw, -zlib.MAX_WBITS,
                                                                               took=budget.took)
        for chunk in chunks:
            produced += len(chunk)
            if produced > info.file_size:
                raise SourceError("the ZIP archive is corrupt: its file is longer than its header says")
            budget.gave(len(chunk))
            crc = zlib.crc32(chunk, crc)
            yield chunk
    if produced != info.file_size or crc != info.CRC:
        raise SourceError("the ZIP archive is corrupt: its file does not match its header (size or CRC)")


def _member_bytes(handle: BinaryIO, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """The member's stored (compressed) bytes, read in slices after its local header."""
    if not 0 <= info.header_offset < os.fstat(handle.fileno()).st_size:
        raise SourceError("the ZIP archive is corrupt: its directory points outside the file")
    handle.seek(info.header_offset)
    header = handle.read(30)
    if len(header) != 30 or header[:4] != ZIP_MAGIC:
        raise SourceError("the ZIP archive is corrupt: bad local file header")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    handle.seek(name_length + extra_length, os.SEEK_CUR)
    left = info.compress_size
    while left > 0:
        chunk = handle.read(min(SLICE, left))
        if not chunk:
            raise SourceError("the ZIP archive ends early (truncated?)")
        left -= len(chunk)
        yield chunk


def _unpacked_name(path: Path) -> str:
    """The unpacked copy's name for the file as it is now: a new version (size, mtime) gets a new copy."""
    stat = path.stat()
    return f"{path.name}.{stat.st_size}-{stat.st_mtime_ns}.unpacked"


def discard_unpacked(path: Path) -> int:
    """Delete the unpacked copies left beside a .gz / .zip source, except the one of the file as it is now (a
    reader may be using it); all of them once the file is gone. Returns how many were deleted."""
    path = Path(path)
    current = _unpacked_name(path) if path.is_file() else None
    deleted = 0
    for copy in path.parent.glob(f"{glob.escape(path.name)}.*.unpacked"):
        if copy.name != current:
            copy.unlink(missing_ok=True)
            deleted += 1
    return deleted


def unpacked(path: Path, max_bytes: int) -> Path:
    """The file itself, or for a .gz / .zip source its content unpacked beside it (within `max_bytes`).

    The unpacked copy is written once per source file version (its name carries the source's size and mtime),
    so the readers' several passes over it do not decompress again.
    """
    kind = compression_of(path)
    if kind is None:
        return path
    target = path.with_name(_unpacked_name(path))
    if target.exists():
        return target
    discard_unpacked(path)  # earlier versions' copies
    budget = Budget(max_bytes, f"the {'gzip' if kind == 'gzip' else 'ZIP'} file")
    chunks = (inflate(_read_file(path), _WBITS["gzip"], took=budget.took, gave=budget.gave) if kind == "gzip"
              else _zip_chunks(path, budget))
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)  # one per reader
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        os.replace(temp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    return target
