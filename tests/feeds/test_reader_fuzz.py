"""Fuzzing every source reader: whatever the bytes, a read yields products and row problems or raises SourceError.

Two kinds of input per reader: arbitrary bytes (with the gzip and ZIP magic numbers now and then, so the
unpacking step is fuzzed too), and near-valid files of the reader's own format (a generated document, then
cut short or with a few bytes changed), which reach much deeper into the parsers than random bytes do.
Any other exception, or a read slower than the deadline, fails the test. A few seconds per reader.
"""

from __future__ import annotations

import json
import os
import string
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds.product import Product, RowProblem, SourceError, Unchanged
from feeds.readers import READER_KINDS, inspect_source, read_products

# SHOPRELAY_FUZZ_EXAMPLES=5000 for a long hunt; the default keeps each reader to a second or two.
FUZZ = settings(max_examples=int(os.environ.get("SHOPRELAY_FUZZ_EXAMPLES", "60")), deadline=timedelta(seconds=2), derandomize=False, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NAMES = ["id", "sku", "title", "name", "link", "url", "price", "image_link", "description", "brand",
         "product_type", "variants", "products", "items", "item", "entry", "g:id", "g:price", "ID", "Type",
         "Parent", "Regular price", "Published", "Name", "Images", "Categories", "", "a.b"]
SUFFIXES = {"csv": ".csv", "woocommerce": ".csv", "json": ".json", "shopify": ".json", "xml": ".xml",
            "google": ".xml"}


def _read(kind: str, data: bytes, suffix: str) -> None:
    """Read `data` every way the product does; only SourceError may escape."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"source{suffix}"
        path.write_bytes(data)
        for read in (_all_products, _inspect):
            try:
                read(kind, path)
            except SourceError as exc:
                assert str(exc)


def _all_products(kind: str, path: Path) -> None:
    for item in read_products(kind, path):
        assert isinstance(item, Product | RowProblem | Unchanged)


def _inspect(kind: str, path: Path) -> None:
    inspect_source(kind, path)


# --- strategies ------------------------------------------------------------------------------------------

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
tricky = st.one_of(text, st.sampled_from(['"', '""', "\n", "\r\n", ",", ";", "\t", "|", "&amp;", "&lt;", "<",
                                          "]]>", "&#0;", "\ufeff", "\x00", "1e999", "-0", "NaN"]))
raw_bytes = st.one_of(
    st.binary(max_size=600),
    st.binary(max_size=300).map(lambda tail: b"\x1f\x8b\x08\x00" + tail),
    st.binary(max_size=300).map(lambda tail: b"PK\x03\x04" + tail),
    st.binary(max_size=300).map(lambda tail: b"\xef\xbb\xbf" + tail),
    st.binary(max_size=300).map(lambda tail: b"\xff\xfe" + tail),
)


@st.composite
def mutated(draw: st.DrawFn, document: bytes) -> bytes:
    """The document as is, cut short, or with a few bytes replaced or inserted."""
    how = draw(st.sampled_from(["keep", "cut", "flip", "insert"]))
    if how == "keep" or not document:
        return document
    at = draw(st.integers(0, len(document) - 1))
    if how == "cut":
        return document[:at]
    junk = draw(st.binary(min_size=1, max_size=4))
    return document[:at] + junk + document[at + (len(junk) if how == "flip" else 0):]


@st.composite
def csv_documents(draw: st.DrawFn) -> bytes:
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    width = draw(st.integers(1, 5))
    header = draw(st.lists(st.sampled_from(NAMES), min_size=width, max_size=width))
    rows = draw(st.lists(st.lists(tricky, min_size=0, max_size=width + 1), max_size=5))

    def line(cells: list[str]) -> str:
        return delimiter.join('"' + cell.replace('"', '""') + '"' if draw(st.booleans()) else cell for cell in cells)

    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
    document = "\n".join(line(row) for row in [header, *rows])
    return draw(mutated(document.encode(encoding, "replace")))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | tricky,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(NAMES) | text, inner, max_size=5),
    max_leaves=25)


@st.composite
def json_documents(draw: st.DrawFn) -> bytes:
    items = draw(st.lists(st.dictionaries(st.sampled_from(NAMES), json_values, max_size=6), max_size=4))
    shape = draw(st.sampled_from(["list", "wrapped", "lines", "value"]))
    if shape == "list":
        document = json.dumps(items)
    elif shape == "wrapped":
        document = json.dumps({draw(st.sampled_from(["products", "items", "data"])): items})
    elif shape == "lines":
        document = "\n".join(json.dumps(item) for item in items) or "{}\n{}"
    else:
        document = json.dumps(draw(json_values))  # integers beyond 64 bits and Infinity included
    return draw(mutated(document.encode("utf-8", "surrogatepass")))


@st.composite
def xml_documents(draw: st.DrawFn) -> bytes:
    def element(depth: int) -> str:
        tag = draw(st.sampled_from(["item", "product", "entry", "id", "title", "link", "g:id", "g:price",
                                    "g:image_link", "price", "channel"]))
        attributes = draw(st.sampled_from(["", ' href="https://s.example/p"', ' rel="alternate"', ' x="&amp;"']))
        if depth > 2 or draw(st.booleans()):
            body = draw(tricky)
            if draw(st.booleans()):
                body = body.replace("&", "&amp;").replace("<", "&lt;")
        else:
            body = "".join(element(depth + 1) for _ in range(draw(st.integers(0, 3))))
        return f"<{tag}{attributes}>{body}</{tag}>"

    items = "".join(element(1) for _ in range(draw(st.integers(0, 4))))
    prolog = draw(st.sampled_from(['<?xml version="1.0"?>', '<?xml version="1.0" encoding="ISO-8859-1"?>', "",
                                   "<!DOCTYPE rss>", "<!-- c -->"]))
    root = draw(st.sampled_from(['<rss xmlns:g="http://base.google.com/ns/1.0"><channel>{}</channel></rss>',
                                 '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="http://base.google.com/ns/1.0">'
                                 "{}</feed>", "<products>{}</products>", "{}"]))
    return draw(mutated((prolog + root.format(items)).encode("utf-8", "replace")))


STRUCTURED = {"csv": csv_documents(), "woocommerce": csv_documents(), "json": json_documents(),
              "shopify": json_documents(), "xml": xml_documents(), "google": xml_documents()}


def test_every_reader_is_fuzzed():
    assert set(STRUCTURED) == set(READER_KINDS)


@pytest.mark.parametrize("kind", READER_KINDS)
@FUZZ
@given(data=raw_bytes)
def test_arbitrary_bytes_give_rows_or_a_source_error(kind: str, data: bytes) -> None:
    _read(kind, data, SUFFIXES[kind])


@pytest.mark.parametrize("kind", READER_KINDS)
@FUZZ
@given(data=st.data())
def test_near_valid_documents_give_rows_or_a_source_error(kind: str, data: Any) -> None:
    document = data.draw(STRUCTURED[kind])
    suffix = data.draw(st.sampled_from([SUFFIXES[kind], ".jsonl", ".txt", ".dat"]))
    _read(kind, document, suffix)


@FUZZ
@given(name=st.text(alphabet=string.ascii_letters + "._-/", min_size=1, max_size=12), data=st.data())
def test_compressed_near_valid_documents_unpack_or_fail_cleanly(name: str, data: Any) -> None:
    import gzip
    import io
    import zipfile

    kind = data.draw(st.sampled_from(READER_KINDS))
    document = data.draw(STRUCTURED[kind])
    if data.draw(st.booleans()):
        packed = gzip.compress(document)
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(name, document)
        packed = buffer.getvalue()
    _read(kind, data.draw(mutated(packed)), ".gz")
