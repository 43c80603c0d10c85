"""Browser: create a feed with a rule and an override, watch the live preview, build it, read the report."""

from __future__ import annotations

import re

from tests.e2e.conftest import screenshot
from webapp.schemas.canonical.products import ProductPush
from webapp.services.catalog.product_push import apply_push


def _catalog() -> None:
    base = {"description": "Soft and warm", "price": 49.0, "currency": "EUR", "categories": ["Knitwear"],
            "inventory_quantity": 4}
    apply_push(ProductPush(upserts=[
        base | {"external_id": "KN-1", "title": "Wool jumper", "brand": "Acme",
                "link": "https://shop.example/p/kn-1", "image_link": "https://shop.example/i/kn-1.jpg"},
        base | {"external_id": "KN-2", "title": "Cashmere scarf", "brand": "Acme",
                "link": "https://shop.example/p/kn-2"},  # no image: Klaviyo skips it
        base | {"external_id": "KN-3", "title": "Cotton socks", "brand": "Other",
                "link": "https://shop.example/p/kn-3", "image_link": "https://shop.example/i/kn-3.jpg"},
    ]))


def test_create_preview_build_and_report(logged_in_page, app, db, worker, redis) -> None:  # noqa: ANN001
    _catalog()
    page = logged_in_page
    page.goto("/feeds/")
    assert page.get_by_role("heading", name="No feeds yet").is_visible()
    page.get_by_role("link", name="Create a feed").click()
    page.wait_for_url("**/feeds/new")
    page.fill("#name", "Klaviyo knitwear")
    page.check("input[name=format][value=klaviyo_xml]")
    preview = page.locator("#feed-preview")
    preview.get_by_text("kept").wait_for()
    assert re.search(r"kept 3\s*/\s*dropped 0", preview.inner_text())

    page.get_by_role("button", name="+ Add rule").click()
    page.locator("input[name='rules-0-field']").fill("brand")
    page.locator("input[name='rules-0-value']").fill("acme")
    page.locator("input[name='rules-0-value']").press("Tab")
    page.locator("#feed-preview", has_text="kept 2").wait_for()  # no string eval: the CSP refuses it
    assert "matches 2" in preview.inner_text()
    page.get_by_role("button", name="+ Add override").click()
    page.locator("input[name='overrides-0-field']").fill("link")
    page.locator("input[name='overrides-0-template']").fill("{link}?utm_source=klaviyo")
    page.locator("input[name='overrides-0-template']").press("Tab")
    page.locator("#feed-preview", has_text="utm_source=klaviyo").wait_for()
    text = preview.inner_text()
    assert "Wool jumper" in text and "Cotton socks" not in text
    assert "missing required field image_link (1)" in text
    page.evaluate("window.scrollTo(0, 0)")  # a full-page shot of a scrolled page repeats the sticky bar
    screenshot(page, "feeds-form-preview")

    page.get_by_role("button", name="Create feed").click()
    page.wait_for_url(re.compile(r".*/feeds/\d+$"))
    assert page.get_by_role("heading", name="Klaviyo knitwear").is_visible()
    page.get_by_role("button", name="Build now").click()
    page.locator("#build-status").get_by_text("queued").wait_for()
    worker()
    page.locator(".report-counts").wait_for(timeout=10_000)  # the poll sees the end and reloads
    report = page.locator("section.report").inner_text()
    assert re.search(r"1\s+item written", report) and "missing required field image_link" in report
    assert page.locator("section.report a", has_text="KN-2").get_attribute("href") == "/sources/products?q=KN-2"

    url = page.locator("#feed-url").input_value()
    fetched = page.request.get(url, headers={"User-Agent": "Klaviyo/1.0 (+https://www.klaviyo.com)"})
    assert fetched.ok and "utm_source=klaviyo" in fetched.text()
    page.reload()
    assert "last fetched by Klaviyo/1.0" in page.locator(".fetch-line").inner_text()
    screenshot(page, "feeds-detail")

    page.goto("/feeds/")
    row = page.locator("table.feeds tbody tr").first
    assert "Klaviyo catalog (XML)" in row.inner_text() and "Klaviyo/1.0" in row.inner_text()
    screenshot(page, "feeds-list")

    apply_push(ProductPush(deletes=["KN-1"]))  # the sync rebuilds the feed: 0 items, so it is held back
    worker()
    page.get_by_role("link", name="Klaviyo knitwear").click()
    banner = page.locator(".held-banner")
    assert "is held back" in banner.inner_text() and "keeps serving build #1" in banner.inner_text()
    screenshot(page, "feeds-held")
    banner.get_by_role("button", name=re.compile("Publish anyway")).click()
    page.get_by_text("is published").wait_for()
    assert page.locator(".held-banner").count() == 0
