import codecs
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from feeds.product import Product, RowProblem, SourceError
from feeds.readers import READER_KINDS, inspect_source, preview_products, read_products
from feeds.readers.xml_reader import iter_items
from tests.fixtures import GOOGLE_RSS_SAMPLE, SHOPIFY_PAGE


def write(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def products(kind: str, path: Path, **kwargs) -> list[Product]:
    items = list(read_products(kind, path, **kwargs))
    assert all(isinstance(item, Product) for item in items), items
    return items


@pytest.mark.parametrize("kind", READER_KINDS)
def test_every_kind_reads_its_sample_file(kind, tmp_path, source_samples):
    content, options = source_samples[kind]
    items = list(read_products(kind, write(tmp_path, f"source.{kind}", content), options=options))
    assert items and all(isinstance(item, Product) for item in items)
    assert all(item.external_id and item.title for item in items)


def test_csv_semicolons_european_prices_and_cp1252(tmp_path, source_samples):
    content = source_samples["csv"][0].decode().replace("Blue Tee", "Café Tee").encode("cp1252")
    first, second = products("csv", write(tmp_path, "p.csv", content), options={"currency": "EUR"})
    assert (first.external_id, first.title, first.price, first.currency) == ("A1", "Café Tee",
                                                                            Decimal("1299.00"), "EUR")
    assert first.image_link == "https://x.test/a.jpg"
    assert first.categories == ["Clothing", "Tees"] and first.brand == "Acme" and first.inventory_quantity == 5
    assert (second.price, second.compare_at_price) == (Decimal("15.00"), Decimal("19.90"))


@pytest.mark.parametrize(("encoding", "bom"), [("utf-8", codecs.BOM_UTF8), ("utf-16-le", codecs.BOM_UTF16_LE)])
def test_csv_with_byte_order_marks(tmp_path, encoding, bom):
    content = bom + "id\tname\tprice\n1\tÜber\t9.99\n".encode(encoding)
    inspection = inspect_source("csv", write(tmp_path, "p.csv", content), {})
    assert inspection.options["delimiter"] == "\t"
    assert inspection.columns == ["id", "name", "price"]
    assert inspection.sample_rows == [{"id": "1", "name": "Über", "price": "9.99"}]
    assert inspection.detected_mapping == {"external_id": "id", "title": "name", "price": "price"}


def test_csv_quoted_fields_keep_delimiters_and_line_breaks(tmp_path):
    path = write(tmp_path, "p.csv", 'id,name,description\n1,"Tee, blue","line one\nline two"\n\n2,Cap,\n')
    first, second = products("csv", path)
    assert (first.title, first.description) == ("Tee, blue", "line one\nline two")
    assert second.external_id == "2"


def test_csv_row_with_too_many_values_is_a_problem_with_its_line(tmp_path):
    items = list(read_products("csv", write(tmp_path, "p.csv", "id,name\n1,Tee\n2,Cap,extra\n")))
    assert isinstance(items[0], Product)
    assert isinstance(items[1], RowProblem) and items[1].row == 3 and "header has 2" in items[1].message


def test_json_array_object_with_list_key_and_nested_list_key(tmp_path):
    rows = [{"id": "1", "name": "Lamp", "price": {"amount": "5.00", "currency": "EUR"}}]
    for name, document, key in [("a.json", rows, ""), ("b.json", {"products": rows, "count": 1}, "products"),
                                ("c.json", {"data": {"items": rows}}, "data.items")]:
        path = write(tmp_path, name, orjson.dumps(document))
        assert inspect_source("json", path, {}).options["list_key"] == key
        (item,) = products("json", path)
        assert (item.title, item.price, item.currency) == ("Lamp", Decimal("5.00"), "EUR")
    explicit = write(tmp_path, "d.json", orjson.dumps({"catalogue": rows, "other": [{"id": 9}]}))
    assert [p.external_id for p in products("json", explicit, options={"list_key": "catalogue"})] == ["1"]


def test_json_lines_stream_line_by_line(tmp_path):
    path = write(tmp_path, "p.json", b'{"id": 1, "title": "A"}\n{"id": 2, "title": "B"}\n')
    stream = read_products("json", path)
    assert next(stream).external_id == "1"
    with path.open("ab") as handle:  # appended after reading began: only a streaming reader sees it
        handle.write(b'{"id": 3, "title": "C"}\n')
    assert [item.external_id for item in stream] == ["2", "3"]


def test_json_lines_bad_line_is_a_row_problem(tmp_path):
    path = write(tmp_path, "p.jsonl", b'{"id": 1, "title": "A"}\n{oops\n[1]\n')
    items = list(read_products("json", path))
    assert isinstance(items[0], Product)
    assert isinstance(items[1], RowProblem) and "line 2" in items[1].message
    assert isinstance(items[2], RowProblem) and "not an object" in items[2].message


def test_invalid_json_is_a_source_error_with_position(tmp_path):
    with pytest.raises(SourceError, match="invalid JSON at line 2"):
        list(read_products("json", write(tmp_path, "p.json", b'[\n{"id": 1,,}]')))


def test_xml_detects_the_repeating_element_and_flattens_children(tmp_path):
    xml = ("<catalog><info><name>Shop</name></info><products>"
           "<product sku='S1'><id>1</id><name>Lamp</name><price><amount>9.50</amount><currency>EUR</currency>"
           "</price><images><image>a.jpg</image><image>b.jpg</image></images></product>"
           "<product sku='S2'><id>2</id><name>Desk</name><price><amount>99</amount></price></product>"
           "</products></catalog>")
    path = write(tmp_path, "p.xml", xml)
    inspection = inspect_source("xml", path, {})
    assert inspection.options["item_tag"] == "product"
    assert inspection.detected_mapping["price"] == "price.amount"
    lamp, desk = products("xml", path)
    assert (lamp.external_id, lamp.sku, lamp.price, lamp.currency) == ("1", "S1", Decimal("9.50"), "EUR")
    assert (lamp.image_link, lamp.extras["additional_image_links"]) == ("a.jpg", ["b.jpg"])
    assert desk.title == "Desk"


def test_xml_reader_streams_and_releases_items(tmp_path):
    body = "".join(f"<item><id>{n}</id><title>T{n}</title></item>" for n in range(5000))
    path = write(tmp_path, "p.xml", f"<items>{body}<item><id>x</id><broken></item></items>")
    stream = read_products("xml", path, options={"item_tag": "item"})
    assert next(stream).external_id == "0"  # the malformed end has not been reached yet
    with pytest.raises(SourceError, match="invalid XML"):
        list(stream)
    earlier = [sum(1 for _ in item.itersiblings(preceding=True))
               for item in iter_items(write(tmp_path, "ok.xml", f"<items>{body}</items>"), "item")]
    assert len(earlier) == 5000 and max(earlier) <= 1  # only the last item read, cleared, is left


def test_google_rss_feed(tmp_path):
    shoe, sock = products("google", write(tmp_path, "g.xml", GOOGLE_RSS_SAMPLE))
    assert (shoe.external_id, shoe.title, shoe.description) == ("G1", "Trail Shoe", "Light & fast")
    assert (shoe.price, shoe.compare_at_price, shoe.currency) == (Decimal("12.50"), Decimal("15.00"), "USD")
    assert shoe.image_link == "https://x.test/g1.jpg"
    assert shoe.extras["additional_image_links"] == ["https://x.test/g1-b.jpg", "https://x.test/g1-c.jpg"]
    assert (shoe.brand, shoe.gtin, shoe.mpn, shoe.item_group_id, shoe.condition) == (
        "Acme", "0012345678905", "TS-1", "TS", "new")
    assert shoe.categories == ["Shoes", "Running"]
    assert shoe.extras["google_product_category"] == "187"
    assert shoe.extras["shipping"] == '[{"country":"US","price":"4.95 USD"}]'
    assert (sock.link, sock.currency, sock.inventory_quantity) == ("https://x.test/g2", "EUR", 0)


def test_google_atom_feed(tmp_path):
    atom = ('<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="http://base.google.com/ns/1.0">'
            "<entry><id>tag:shop,1</id><g:id>A1</g:id><title>Kettle</title><summary>Boils</summary>"
            '<link rel="alternate" href="https://x.test/k"/><link rel="self" href="https://x.test/feed"/>'
            "<g:price>20 GBP</g:price><g:quantity>4</g:quantity></entry></feed>")
    (kettle,) = products("google", write(tmp_path, "a.xml", atom))
    assert (kettle.external_id, kettle.title, kettle.description, kettle.link) == (
        "A1", "Kettle", "Boils", "https://x.test/k")
    assert (kettle.price, kettle.currency, kettle.inventory_quantity) == (Decimal("20"), "GBP", 4)


def test_shopify_variants_become_items_and_pages_are_read_in_turn(tmp_path):
    second_page = {"products": [{"id": 300, "title": "Draft", "status": "draft", "variants": [{"id": 3}]},
                                {"id": 400, "title": "Tote", "handle": "tote", "variants": [
                                    {"id": 4001, "title": "Default Title", "price": "10"}]}]}
    path = write(tmp_path, "s.json", orjson.dumps(SHOPIFY_PAGE) + b"\n" + orjson.dumps(second_page) + b"\n")
    stream = read_products("shopify", path, options={"store_url": "https://shop.test/", "currency": "USD"})
    blue, red, mug, tote = stream
    assert stream.stats.skipped == {"status draft": 1}
    assert (blue.external_id, blue.item_group_id, blue.title) == ("1001", "100", "Hoodie - Blue")
    assert blue.link == "https://shop.test/products/hoodie?variant=1001"
    assert (blue.image_link, blue.extras["additional_image_links"]) == ("https://x.test/h-blue.jpg",
                                                                         ["https://x.test/h.jpg"])
    assert (blue.price, blue.compare_at_price, blue.currency) == (Decimal("45.00"), Decimal("50.00"), "USD")
    assert (blue.description, blue.brand, blue.categories, blue.gtin) == ("Warm cotton", "Acme", ["Hoodies"], "123")
    assert (blue.extras["Color"], blue.extras["tags"]) == ("Blue", ["winter", "sale"])
    assert (red.title, red.inventory_quantity, red.compare_at_price) == ("Hoodie - Red", 0, None)
    assert (mug.title, mug.link) == ("Mug", "https://shop.test/products/mug")
    assert tote.external_id == "4001"


def test_progress_is_reported_every_thousand_rows_and_at_the_end(tmp_path):
    path = write(tmp_path, "p.csv", "id,name\n" + "".join(f"{n},Item {n}\n" for n in range(2500)))
    calls: list[tuple[int, int | None]] = []
    assert len(list(read_products("csv", path, on_progress=lambda done, total: calls.append((done, total))))) == 2500
    assert [done for done, _ in calls] == [1000, 2000, 2500] and calls[-1] == (2500, 2500)
    assert all(total is None or total >= done for done, total in calls)  # a 40 KB file is read in one go


@pytest.mark.parametrize(("kind", "name", "options", "content"), [
    ("csv", "p.csv", {}, "id,title,price\n" + "".join(f"{n},Item {n},{n % 90 + 1}.50\n" for n in range(30000))),
    ("json", "p.json", {}, orjson.dumps({"products": [{"id": str(n), "title": f"Item {n}", "price": "5"}
                                                      for n in range(30000)]})),
    ("json", "p.jsonl", {}, b"".join(orjson.dumps({"id": str(n), "title": f"Item {n}"}) + b"\n"
                                     for n in range(30000))),
    ("xml", "p.xml", {"item_tag": "product"}, "<products>" + "".join(
        f"<product><id>{n}</id><title>Item {n}</title></product>" for n in range(30000)) + "</products>"),
])
def test_a_long_read_tells_its_total_from_the_share_of_the_file_read(tmp_path, kind, name, options, content):
    """No reader knows its row count up front (the file is streamed): the total shown while a sync runs is
    estimated from the bytes read so far, close to the real one long before the end, and exact at the end."""
    path = write(tmp_path, name, content)
    calls: list[tuple[int, int | None]] = []
    items = list(read_products(kind, path, options=options, on_progress=lambda done, total: calls.append((done, total))))
    assert len(items) == 30000
    estimates = [total for done, total in calls if 5000 <= done < 30000]
    assert estimates and all(total is not None and abs(total - 30000) < 30000 * 0.15 for total in estimates), calls
    assert calls[-1] == (30000, 30000)


def test_preview_gives_the_first_items_only(tmp_path):
    path = write(tmp_path, "p.csv", "sku,title,price\n" + "".join(f"S{n},T{n},oops{n}\n" for n in range(50)))
    preview = preview_products("csv", path, mapping={"external_id": "sku", "title": "title", "price": "price"},
                               limit=3)
    assert [item.external_id for item in preview] == ["S0", "S1", "S2"]
    assert all(isinstance(item, RowProblem) and item.field == "price" for item in preview)


def test_unknown_kind_missing_and_empty_files_are_source_errors(tmp_path):
    with pytest.raises(SourceError, match="unknown source kind"):
        read_products("yaml", write(tmp_path, "x", "a"))
    with pytest.raises(SourceError, match="does not exist"):
        read_products("csv", tmp_path / "missing.csv")
    with pytest.raises(SourceError, match="empty"):
        read_products("csv", write(tmp_path, "empty.csv", ""))


@pytest.mark.parametrize(("content", "line"), [
    ('id,name\n1,Tee\n2,"Cap"x\n3,Hat\n', 3),
    ('id,name\n1,Tee\n2,"Cap\n3,Hat\n', 4),
])
def test_bad_csv_quoting_is_a_source_error_naming_the_line(tmp_path, content, line):
    with pytest.raises(SourceError, match=f"CSV is malformed at line {line}"):
        list(read_products("csv", write(tmp_path, "p.csv", content)))


def test_undecodable_text_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="neither UTF-8 nor Windows-1252"):
        read_products("csv", write(tmp_path, "p.csv", b"id,name\n1,Caf\x81\x8d\n"))
    latin = write(tmp_path, "latin.csv", "id,name\n1,Café\n".encode("cp1252"))
    with pytest.raises(SourceError, match="not valid utf-8 text: line 2 has an undecodable byte"):
        list(read_products("csv", latin, options={"encoding": "utf-8", "delimiter": ","}))


@pytest.mark.parametrize(("content", "message"), [
    (b"PK\x03\x04rest-of-an-xlsx", "ZIP archive"),
    (b"<!DOCTYPE html><html><body>Sign in</body></html>", "HTML page"),
    (b"id,name\x00\x00", "NUL bytes"),
])
def test_files_that_are_not_csv_are_explained(tmp_path, content, message):
    with pytest.raises(SourceError, match=message):
        read_products("csv", write(tmp_path, "p.csv", content))
