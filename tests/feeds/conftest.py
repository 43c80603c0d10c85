"""Fixtures for the feeds tests: a real local HTTP server and one small source file per reader kind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from tests.fixtures import WOOCOMMERCE_SAMPLE


@dataclass
class Route:
    """A canned answer; with `etag` set, a matching If-None-Match gets 304."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    etag: str | None = None
    send_length: bool = True


@dataclass
class SeenRequest:
    path: str
    headers: dict[str, str]


class LocalServer:
    """Routes by full path (query included) first, then by path alone; unknown paths answer 404."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[SeenRequest] = []
        self.base_url = ""

    def route(self, path: str, body: bytes | str = b"", **options: object) -> str:
        payload = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(body=payload, **options)  # type: ignore[arg-type]
        return self.url(path)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def find(self, path: str) -> Route | None:
        return self.routes.get(path) or self.routes.get(path.split("?", 1)[0])


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming
        local = self.server.local
        local.requests.append(SeenRequest(self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = local.find(self.path)
        try:
            if route is None:
                self._answer(404, {}, b"no such route", True)
                return
            if route.delay:
                time.sleep(route.delay)
            if route.etag and self.headers.get("If-None-Match") == route.etag:
                self._answer(304, {"ETag": route.etag}, b"", False)
                return
            headers = dict(route.headers)
            if route.etag:
                headers["ETag"] = route.etag
            self._answer(route.status, headers, route.body, route.send_length)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (timeout tests)

    def _answer(self, status: int, headers: dict[str, str], body: bytes, send_length: bool) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if send_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base class signature
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    local: LocalServer


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.local = LocalServer()
    server.local.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.local
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)



CSV_SAMPLE = (
    "Product ID;Name;Regular price;Sale price;Categories;Images;Stock;Brand\n"
    "A1;Blue Tee;1.299,00;;Clothing > Tees;https://x.test/a.jpg, https://x.test/b.jpg;5;Acme\n"
    "A2;Red Cap;19,90;15,00;Hats;https://x.test/c.jpg;0;Acme\n"
)

GOOGLE_RSS_SAMPLE = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel><title>Shop</title>
<item><g:id>G1</g:id><title>Plain title</title><g:title>Trail Shoe</g:title>
<description>&lt;p&gt;Light &amp;amp; fast&lt;/p&gt;</description><link>https://x.test/g1</link>
<g:image_link>https://x.test/g1.jpg</g:image_link>
<g:additional_image_link>https://x.test/g1-b.jpg</g:additional_image_link>
<g:additional_image_link>https://x.test/g1-c.jpg</g:additional_image_link>
<g:price>15.00 USD</g:price><g:sale_price>12.50 USD</g:sale_price><g:availability>in_stock</g:availability>
<g:brand>Acme</g:brand><g:gtin>0012345678905</g:gtin><g:mpn>TS-1</g:mpn><g:item_group_id>TS</g:item_group_id>
<g:condition>new</g:condition><g:product_type>Shoes &gt; Running</g:product_type>
<g:google_product_category>187</g:google_product_category>
<g:shipping><g:country>US</g:country><g:price>4.95 USD</g:price></g:shipping></item>
<item><g:id>G2</g:id><g:title>Sold Out Sock</g:title><g:link>https://x.test/g2</g:link>
<g:price>3.00 EUR</g:price><g:availability>out_of_stock</g:availability></item>
</channel></rss>
"""

SHOPIFY_PAGE = {"products": [{
    "id": 100, "title": "Hoodie", "handle": "hoodie", "body_html": "<p>Warm <b>cotton</b></p>",
    "vendor": "Acme", "product_type": "Hoodies", "tags": ["winter", "sale"],
    "options": [{"name": "Color", "position": 1}],
    "variants": [
        {"id": 1001, "title": "Blue", "option1": "Blue", "sku": "H-B", "price": "45.00",
         "compare_at_price": "50.00", "inventory_quantity": 3, "barcode": "123", "image_id": 11},
        {"id": 1002, "title": "Red", "option1": "Red", "sku": "H-R", "price": "45.00",
         "compare_at_price": None, "inventory_quantity": 0},
    ],
    "images": [{"id": 10, "src": "https://x.test/h.jpg"}, {"id": 11, "src": "https://x.test/h-blue.jpg"}],
}, {
    "id": 200, "title": "Mug", "handle": "mug", "body_html": "", "vendor": "Acme", "product_type": "",
    "variants": [{"id": 2001, "title": "Default Title", "sku": "MUG", "price": "9.99"}], "images": [],
}]}


@pytest.fixture
def source_samples() -> dict[str, tuple[bytes, dict[str, object]]]:
    """kind -> (file content, reader options) of a small valid source; each has item "1"-like ids."""
    json_items = [{"id": 1, "title": "Lamp", "price": 20.5, "image": "https://x.test/l.jpg"},
                  {"id": 2, "title": "Desk", "price": "120.00", "category": "Office"}]
    xml = ("<?xml version='1.0'?><catalog><product><id>1</id><name>Lamp</name><price>20.50</price>"
           "</product><product><id>2</id><name>Desk</name><price>120</price></product></catalog>")
    return {
        "csv": (CSV_SAMPLE.encode(), {}),
        "json": (orjson.dumps({"items": json_items}), {}),
        "xml": (xml.encode(), {}),
        "google": (GOOGLE_RSS_SAMPLE.encode(), {}),
        "shopify": (orjson.dumps(SHOPIFY_PAGE) + b"\n", {"store_url": "https://shop.test"}),
        "woocommerce": (WOOCOMMERCE_SAMPLE.read_bytes(), {"store_url": "https://shop.test"}),
    }
