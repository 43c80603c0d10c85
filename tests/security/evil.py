"""Hostile inputs too big to commit, made at test time in well under a second each.

A 10 GB gzip bomb is ~10 MB: zeros compressed once with a full flush give a block that decompresses to 1 MiB
from ~1 KB and is the same bytes every time, so the bomb is that block repeated.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

MIB = 1024 * 1024


def _zero_blocks(wbits: int) -> tuple[bytes, bytes, bytes]:
    """(header and first block, a repeatable block, end) of a deflate stream of zeros, 1 MiB a block."""
    zeros = bytes(MIB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    head = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert block == again
    return head, block, compressor.flush()


def deflate_bomb(expanded: int, wbits: int) -> bytes:
    """A deflate (wbits -15), zlib (15) or gzip (31) stream of `expanded` zero bytes (a multiple of 1 MiB).
    The gzip trailer's CRC is not that of the data: a reader that gets that far has already failed."""
    head, block, end = _zero_blocks(wbits)
    return head + block * (expanded // MIB - 1) + end


def gzip_bomb(path: Path, expanded: int = 10 * 1024 * MIB) -> Path:
    path.write_bytes(deflate_bomb(expanded, 31))
    return path


def nested_gzip_bomb(expanded: int = 10 * 1024 * MIB) -> bytes:
    """gzip inside gzip: a few KB on the wire for `Content-Encoding: gzip, gzip`."""
    return gzip.compress(deflate_bomb(expanded, 31), compresslevel=9)


def zip_bomb(path: Path, expanded: int, *, declared: int | None = None) -> Path:
    """A ZIP of one member, `products.csv`, that inflates to `expanded` zero bytes; its headers declare
    `declared` bytes (default: the truth; below 4 GiB, so no ZIP64 records are needed)."""
    data = deflate_bomb(expanded, -15)
    size = expanded if declared is None else declared
    name = b"products.csv"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, 0, len(data), size, len(name), 0) + name
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, 0, len(data), size, len(name),
                          0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    path.write_bytes(local + data + central + end)
    return path


def huge_line(path: Path, chars: int, *, prefix: bytes = b"id,title\n1,") -> Path:
    """A file whose second line has `chars` characters and no line break."""
    with path.open("wb") as handle:
        handle.write(prefix)
        chunk = b"x" * MIB
        for _ in range(chars // MIB):
            handle.write(chunk)
    return path


def many_elements(path: Path, count: int) -> Path:
    """An XML file of `count` small elements that are not products, then two products."""
    with path.open("wb") as handle:
        handle.write(b"<products>")
        piece = b"<noise>n</noise>" * 10_000
        for _ in range(count // 10_000):
            handle.write(piece)
        handle.write(b"<product><id>1</id><title>A</title></product><product><id>2</id><title>B</title></product>")
        handle.write(b"</products>")
    return path


def big_json_export(path: Path, count: int) -> Path:
    """A plain JSON export ({"products": [...]}, one minified document) of `count` ordinary products, about
    550 bytes each: loaded whole, it took about six times its size in memory."""
    import orjson

    with path.open("wb") as handle:
        handle.write(b'{"count": %d, "products": [' % count)
        for start in range(0, count, 10_000):
            page = [{"id": f"sku-{n}", "title": f"Product {n} with an ordinary name",
                     "description": "A plain description of an ordinary product. " * 6, "price": "19.99",
                     "link": f"https://shop.example/p/{n}", "image_link": f"https://cdn.shop.example/{n}.jpg",
                     "availability": "in stock", "brand": "Acme", "categories": ["Home", "Kitchen"]}
                    for n in range(start, min(start + 10_000, count))]
            body = orjson.dumps(page)[1:-1]
            handle.write((b"," if start else b"") + body)
        handle.write(b"]}")
    return path
