"""Only web links where links belong (issue 19): non-http(s) URLs are dropped with a warning naming the field."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import make_order
from webapp.blueprints.filters import web_link
from webapp.schemas.canonical.checkouts import CanonicalCheckout
from webapp.schemas.canonical.orders import CanonicalOrder
from webapp.schemas.canonical.products import ProductPush
from webapp.schemas.canonical.web_links import DROPPED, clean_links, web_url

BAD = ["javascript:alert(5)", " JavaScript:alert(5)", "data:text/html;base64,PHNjcmlwdD4=", "/p/1111",
       "p/1111", "//evil.example/x", "ftp://shop.example/p", "vbscript:msgbox", "http://", "https://exa mple.com/",
       "mailto:a@example.com", "java\tscript:alert(1)", ""]


@pytest.mark.parametrize("url", BAD)
def test_anything_but_an_absolute_http_url_is_no_web_url(url: str) -> None:
    assert web_url(url) is None and web_link(url) is None


@pytest.mark.parametrize("url", ["https://shop.example/p/1111", "http://127.0.0.1:8000/x?a=1#b",
                                 "HTTPS://Shop.Example/p", "https://[2001:db8::1]/i.png"])
def test_http_and_https_urls_are_kept(url: str) -> None:
    assert web_url(url) == url and web_url(f"  {url} ") == url


def test_non_strings_are_no_web_url() -> None:
    assert web_url(None) is None and web_url(42) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_a_kept_url_always_starts_with_http(text: str) -> None:
    kept = web_url(text)
    assert kept is None or kept.lower().startswith(("http://", "https://"))


def test_order_links_are_dropped_with_their_paths() -> None:
    order = make_order()
    order["items"][0] |= {"url": "javascript:alert(5)", "image_url": "data:image/png;base64,AAAA"}
    order["items"][1]["url"] = "/p/2222"
    model = CanonicalOrder.model_validate(order)
    warnings = clean_links(model, ("orders", 2))
    assert [w["path"] for w in warnings] == ["orders.2.items.0.url", "orders.2.items.0.image_url",
                                             "orders.2.items.1.url"]
    assert all(w["message"] == DROPPED for w in warnings)
    assert model.items[0].url is None and model.items[0].image_url is None and model.items[1].url is None
    assert model.items[1].image_url == "https://shop.example/i/2222.png"


def test_checkout_links_are_dropped() -> None:
    checkout = CanonicalCheckout.model_validate({
        "id": "co-1", "started_at": "2026-11-20T10:00:00Z", "currency": "USD", "total": 10,
        "checkout_url": "javascript:void(0)", "customer": {"email": "a@example.com"},
        "items": [{"name": "Mug", "quantity": 1, "price": 10, "image_url": "ftp://x.example/i.png"}]})
    assert [w["path"] for w in clean_links(checkout)] == ["checkout_url", "items.0.image_url"]
    assert checkout.checkout_url is None and checkout.items[0].image_url is None


def test_product_links_and_link_named_extras_are_cleaned() -> None:
    push = ProductPush.model_validate({"upserts": [
        {"external_id": "A", "title": "Mug", "link": "https://shop.example/a", "image_link": "https://shop.example/a.png"},
        {"external_id": "B", "title": "Cup", "link": "javascript:alert(1)", "image_link": "data:x",
         "extras": {"additional_image_links": ["https://shop.example/b1.png", "javascript:x",
                                               "https://shop.example/b2.png"],
                    "additional_image_link": "https://shop.example/b3.png,data:x",
                    "variants": [{"variant_url": "vbscript:x", "color": "red"}],
                    "cdn_image_url": "https://cdn.example/w_100,h_100/b.png", "material": "javascript:ok-here"}}]})
    warnings = clean_links(push)
    assert [w["path"] for w in warnings] == [
        "upserts.1.link", "upserts.1.image_link", "upserts.1.extras.additional_image_links.1",
        "upserts.1.extras.additional_image_link", "upserts.1.extras.variants.0.variant_url"]
    first, second = push.upserts
    assert first.link == "https://shop.example/a" and second.link is None and second.image_link is None
    assert second.extras == {
        "additional_image_links": ["https://shop.example/b1.png", "https://shop.example/b2.png"],
        "additional_image_link": "https://shop.example/b3.png", "variants": [{"variant_url": None, "color": "red"}],
        "cdn_image_url": "https://cdn.example/w_100,h_100/b.png", "material": "javascript:ok-here"}
