"""Plain JSON sources read as a stream (feeds/readers/json_stream.py): the same items, list detection and
errors as a whole-document load, in memory that does not grow with the file."""

from __future__ import annotations

import codecs
from pathlib import Path

import orjson
import pytest

from feeds.product import Product, RowProblem, SourceError
from feeds.readers import inspect_source, read_products
from feeds.readers.json_stream import DEPTH_LIMIT, PIECE_BYTES, document_shape

ITEM = {"id": "1", "title": "Lamp", "price": "5.00", "link": "https://shop.example/lamp"}


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _ids(path: Path, **options: object) -> list[str]:
    return [item.external_id for item in read_products("json", path, options=options or None)
            if isinstance(item, Product)]


@pytest.mark.parametrize(("document", "key"), [
    ({"count": 2, "meta": {"page": 1}, "products": [ITEM, ITEM | {"id": "2"}]}, "products"),
    ({"categories": [{"id": "c"}], "products": [ITEM, ITEM | {"id": "2"}]}, "products"),  # the known name wins
    ({"data": {"total": 2, "items": [ITEM, ITEM | {"id": "2"}]}}, "data.items"),
    ({"shop": "x", "catalogue": [ITEM, ITEM | {"id": "2"}]}, "catalogue"),  # one list of objects in a small wrapper
])
def test_the_list_is_found_and_streamed_as_before(tmp_path, document, key):
    path = _write(tmp_path, "p.json", orjson.dumps(document))
    assert inspect_source("json", path, {}).options["list_key"] == key
    assert _ids(path) == ["1", "2"]


def test_a_lone_object_is_one_product_and_a_top_level_array_needs_no_look_inside(tmp_path):
    assert _ids(_write(tmp_path, "one.json", orjson.dumps(ITEM))) == ["1"]
    array = _write(tmp_path, "all.json", orjson.dumps([ITEM | {"id": str(n)} for n in range(3)]) + b" \n")
    assert document_shape(array) == []
    assert _ids(array) == ["0", "1", "2"]


def test_byte_order_marks_and_utf16_exports(tmp_path):
    text = orjson.dumps({"products": [ITEM | {"title": "Lampe à poser – 30 cm ✓"}]}).decode()
    for name, data in [("bom8.json", codecs.BOM_UTF8 + text.encode()),
                       ("le.json", codecs.BOM_UTF16_LE + text.encode("utf-16-le")),
                       ("be.json", codecs.BOM_UTF16_BE + text.encode("utf-16-be"))]:
        (product,) = read_products("json", _write(tmp_path, name, data))
        assert product.title == "Lampe à poser – 30 cm ✓", name


def test_a_syntax_error_far_into_the_file_says_its_line_and_column(tmp_path):
    lines = [orjson.dumps(ITEM | {"id": str(n)}).decode() + "," for n in range(30000)]
    lines[25000] = '{"id": "25000", "title": "Broken" "price": "1"},'  # a missing comma, line 25002
    path = _write(tmp_path, "p.json", ("[\n" + "\n".join(lines) + '\n{"id": "last"}]').encode())
    assert path.stat().st_size > 20 * PIECE_BYTES
    with pytest.raises(SourceError, match=r"invalid JSON at line 25002 column 3\d: .*expect ',' or '}'"):
        list(read_products("json", path, options={"format": "json", "list_key": ""}))


@pytest.mark.parametrize(("content", "message"), [
    (b'{"products": [{"id": "1", "title": "A"}', "premature EOF"),
    (b'[{"id": "1", "title": "A"}] trailing', "trailing garbage"),
    (b'[{"id": "1", "price": NaN}]', "invalid char"),
    (b'<!DOCTYPE html><html><body>Please log in</body></html>', "HTML page, not JSON"),
    (b'[{"id": "1", "title": "\xff\xfe"}]', "UTF8"),
    (b"[" * (DEPTH_LIMIT + 5) + b"]" * (DEPTH_LIMIT + 5), "depth limit"),
    (b"", "empty"),
    (b"   ", "premature EOF"),
])
def test_unusable_files_fail_with_the_reason(tmp_path, content, message):
    with pytest.raises(SourceError, match=message):
        list(read_products("json", _write(tmp_path, "p.json", content), options={"format": "json"}))


def test_a_list_key_that_names_nothing_or_a_scalar_says_so(tmp_path):
    path = _write(tmp_path, "p.json", orjson.dumps({"products": [ITEM], "count": 1}))
    with pytest.raises(SourceError, match="no list at 'catalogue'"):
        _ids(path, format="json", list_key="catalogue")
    with pytest.raises(SourceError, match="neither a list nor an object"):
        _ids(path, format="json", list_key="count")


def test_items_too_deep_or_not_objects_are_row_problems_and_the_rest_is_read(tmp_path):
    deep: object = "x"
    for _ in range(40):
        deep = {"a": deep}
    path = _write(tmp_path, "p.json", orjson.dumps([ITEM, deep, 5, ITEM | {"id": "2"}]))
    items = list(read_products("json", path))
    assert [item.external_id for item in items if isinstance(item, Product)] == ["1", "2"]
    problems = [item.message for item in items if isinstance(item, RowProblem)]
    assert "levels deep" in problems[0] and "not an object" in problems[1]


def test_a_map_of_millions_of_keys_is_sketched_in_bounded_memory(tmp_path):
    """An export keyed by id ({"sku-1": {...}, ...}) is one object, not a list: its outline keeps at most
    KEY_CAP keys, and the whole object is then one (unusable) item, as before."""
    from feeds.readers.json_stream import KEY_CAP

    path = _write(tmp_path, "p.json", orjson.dumps({f"sku-{n}": ITEM for n in range(KEY_CAP * 3)}))
    assert len(document_shape(path)) == KEY_CAP


def test_an_item_larger_than_the_item_cap_is_refused_while_it_is_read(tmp_path, monkeypatch):
    from feeds.readers import json_stream

    monkeypatch.setattr(json_stream, "MAX_ITEM_BYTES", 64 * 1024)
    items = [ITEM | {"id": str(n)} for n in range(500)]  # 500 small items: far more than the cap in all
    items[300] = ITEM | {"id": "300", "description": "x" * 200_000}
    path = _write(tmp_path, "p.json", orjson.dumps({"products": items}))
    read: list[str] = []
    with pytest.raises(SourceError, match="item 301 of the JSON is larger than 0 MB"):
        for item in read_products("json", path, options={"format": "json", "list_key": "products"}):
            read.append(item.external_id)
    assert read == [str(n) for n in range(300)]  # the items before it were read one by one
    with pytest.raises(SourceError, match=r"one value in the JSON \(ending after line 1\) is larger than"):
        list(read_products("json", path))  # finding the list reads the outline, which meets the same value
