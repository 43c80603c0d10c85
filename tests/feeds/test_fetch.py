import base64
import hashlib
import socket

import httpx
import orjson
import pytest

from feeds.fetch import fetch_shopify_pages, fetch_to_file
from feeds.product import Product, SourceError
from feeds.readers import READER_KINDS, read_products

MB = 1024 * 1024


def test_downloads_to_the_destination_with_validators_and_digest(http_server, tmp_path):
    body = b"id,name\n1,Lamp\n"
    url = http_server.route("/feed.csv", body, etag='"v1"', headers={"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"})
    result = fetch_to_file(url, tmp_path / "feed.csv")
    assert (result.not_modified, result.status, result.bytes) == (False, 200, len(body))
    assert (result.etag, result.last_modified) == ('"v1"', "Mon, 01 Jan 2024 00:00:00 GMT")
    assert result.sha256 == hashlib.sha256(body).hexdigest()
    assert (tmp_path / "feed.csv").read_bytes() == body
    assert http_server.requests[0].headers["user-agent"].startswith("shoprelay")
    assert list(tmp_path.iterdir()) == [tmp_path / "feed.csv"]  # no temp file left behind


def test_conditional_get_answered_304_leaves_the_file_untouched(http_server, tmp_path):
    url = http_server.route("/feed.csv", b"new content", etag='"v2"')
    dest = tmp_path / "feed.csv"
    dest.write_bytes(b"old content")
    result = fetch_to_file(url, dest, etag='"v2"', last_modified="Mon, 01 Jan 2024 00:00:00 GMT")
    assert (result.not_modified, result.status, result.etag) == (True, 304, '"v2"')
    assert dest.read_bytes() == b"old content"
    sent = http_server.requests[0].headers
    assert (sent["if-none-match"], sent["if-modified-since"]) == ('"v2"', "Mon, 01 Jan 2024 00:00:00 GMT")
    changed = fetch_to_file(url, dest, etag='"v1"')
    assert not changed.not_modified and dest.read_bytes() == b"new content"


@pytest.mark.parametrize("send_length", [True, False], ids=["content-length", "streamed"])
def test_size_cap_is_enforced_and_the_old_file_kept(http_server, tmp_path, send_length):
    url = http_server.route("/big.xml", b"x" * (MB + 10), send_length=send_length)
    dest = tmp_path / "big.xml"
    dest.write_bytes(b"previous")
    with pytest.raises(SourceError, match="larger than the 1 MB cap"):
        fetch_to_file(url, dest, max_bytes=MB)
    assert dest.read_bytes() == b"previous"
    assert list(tmp_path.iterdir()) == [dest]


def test_timeout_is_a_source_error(http_server, tmp_path):
    url = http_server.route("/slow.csv", b"id\n1\n", delay=1.5)
    with pytest.raises(SourceError, match="timed out fetching"):
        fetch_to_file(url, tmp_path / "slow.csv", timeout=0.5)


def test_server_error_names_the_status_and_the_start_of_the_body(http_server, tmp_path):
    url = http_server.route("/feed.csv", "database is down " + "x" * 2000, status=500)
    with pytest.raises(SourceError, match=r"HTTP 500 Internal Server Error: database is down") as raised:
        fetch_to_file(url, tmp_path / "feed.csv")
    assert len(str(raised.value)) < 500
    assert not (tmp_path / "feed.csv").exists()


def test_redirects_are_followed_and_capped(http_server, tmp_path):
    http_server.route("/final.csv", b"id\n1\n")
    http_server.route("/hop2", status=301, headers={"Location": "/final.csv"})
    url = http_server.route("/hop1", status=302, headers={"Location": http_server.url("/hop2")})
    assert fetch_to_file(url, tmp_path / "a.csv").bytes == 5
    with pytest.raises(SourceError, match="redirected more than 1 times"):
        fetch_to_file(url, tmp_path / "b.csv", max_redirects=1)
    loop = http_server.route("/loop", status=302, headers={"Location": "/loop"})
    with pytest.raises(SourceError, match="redirected more than 5 times"):
        fetch_to_file(loop, tmp_path / "c.csv")


def test_basic_auth_is_sent_but_not_to_another_host(http_server, tmp_path):
    other_host = http_server.url("/elsewhere.csv").replace("127.0.0.1", "localhost")
    http_server.route("/elsewhere.csv", b"id\n1\n")
    url = http_server.route("/private.csv", status=302, headers={"Location": other_host})
    fetch_to_file(url, tmp_path / "p.csv", basic_auth=("shop", "s3cret"))
    first, second = http_server.requests
    assert first.headers["authorization"] == "Basic " + base64.b64encode(b"shop:s3cret").decode()
    assert "authorization" not in second.headers


def test_connection_refused_and_bad_schemes(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SourceError, match="could not connect"):
        fetch_to_file(f"http://127.0.0.1:{port}/feed.csv", tmp_path / "f.csv", timeout=2)
    with pytest.raises(SourceError, match="only http and https"):
        fetch_to_file("file:///etc/passwd", tmp_path / "f.csv")


def test_a_shared_client_is_used_and_left_open(http_server, tmp_path):
    url = http_server.route("/feed.csv", b"id\n1\n")
    with httpx.Client() as client:
        fetch_to_file(url, tmp_path / "a.csv", client=client)
        fetch_to_file(url, tmp_path / "b.csv", client=client)
        assert not client.is_closed


@pytest.mark.parametrize("kind", READER_KINDS)
def test_every_kind_from_a_url(http_server, tmp_path, source_samples, kind):
    content, options = source_samples[kind]
    result = fetch_to_file(http_server.route(f"/source-{kind}", content), tmp_path / f"source.{kind}")
    items = list(read_products(kind, result.path, options=options))
    assert items and all(isinstance(item, Product) for item in items)


def page(*ids: int) -> bytes:
    return orjson.dumps({"products": [{"id": i, "title": f"P{i}", "variants": [{"id": i * 10, "price": "1"}]}
                                      for i in ids]})


def test_shopify_pages_by_page_number_until_an_empty_page(http_server, tmp_path):
    http_server.route("/products.json?limit=2", page(1, 2))
    http_server.route("/products.json?limit=2&page=2", page(3))
    http_server.route("/products.json?limit=2&page=3", page())
    result = fetch_shopify_pages(http_server.url("/products.json?limit=2"), tmp_path / "s.jsonl")
    assert len((tmp_path / "s.jsonl").read_bytes().splitlines()) == 2
    items = list(read_products("shopify", result.path))
    assert [item.external_id for item in items] == ["10", "20", "30"]


def test_shopify_pages_by_link_header(http_server, tmp_path):
    next_link = f'<{http_server.url("/p2?page_info=abc")}>; rel="next"'
    http_server.route("/p1", page(1), headers={"Link": next_link})
    http_server.route("/p2", page(2), headers={"Link": f'<{http_server.url("/p1")}>; rel="previous"'})
    result = fetch_shopify_pages(http_server.url("/p1"), tmp_path / "s.jsonl")
    assert [item.external_id for item in read_products("shopify", result.path)] == ["10", "20"]
    assert [r.path for r in http_server.requests] == ["/p1", "/p2?page_info=abc"]


def test_shopify_page_limit_and_bad_pages_are_source_errors(http_server, tmp_path):
    http_server.route("/endless", page(1))
    with pytest.raises(SourceError, match="more than 3 pages"):
        fetch_shopify_pages(http_server.url("/endless"), tmp_path / "s.jsonl", max_pages=3)
    http_server.route("/html", "<html>login</html>")
    with pytest.raises(SourceError, match="did not answer JSON"):
        fetch_shopify_pages(http_server.url("/html"), tmp_path / "s.jsonl")
    assert not (tmp_path / "s.jsonl").exists()
