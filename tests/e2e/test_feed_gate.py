"""Browser: a WooCommerce export saved without a Store URL warns, its first feed build is held with the fix."""

from __future__ import annotations

from tests.e2e.conftest import screenshot
from tests.fixtures import WOOCOMMERCE_SAMPLE
from webapp.schemas.feeds import FeedCreate
from webapp.services.publishing.feeds import create_feed


def test_missing_store_url_warns_and_the_empty_build_is_held(logged_in_page, worker, db) -> None:  # noqa: ANN001
    page = logged_in_page
    page.goto("/sources/new?kind=woocommerce")
    assert page.locator("#opt-store_url").is_visible()  # the reader options are open for this kind
    page.fill("#name", "Woo shop")
    page.set_input_files("#upload", str(WOOCOMMERCE_SAMPLE))
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url("**/sources/1/mapping")
    notice = page.locator(".flash-warning")
    notice.get_by_text("No Store URL").wait_for()
    screenshot(page, "sources-store-url-notice")

    page.get_by_role("button", name="Sync now", exact=True).click()  # the built-in mapping: nothing to choose
    page.wait_for_url("**/sources/1")
    worker()
    feed = create_feed(FeedCreate(name="Klaviyo", slug="klaviyo", format="klaviyo_xml", source_ids=[1]))
    page.goto(f"/feeds/{feed.id}")
    page.get_by_role("button", name="Build now").click()
    page.get_by_text("is waiting for a worker").wait_for()
    worker()
    page.reload()
    banner = page.locator(".held-banner")
    banner.get_by_text("22 products have no product URL: set the source's Store URL").wait_for()
    assert banner.get_by_role("button", name="Publish anyway (0 items)").is_visible()
    banner.get_by_role("link", name="Woo shop").click()
    page.wait_for_url("**/sources/1/edit")
    assert page.locator("#opt-store_url").is_visible()
    page.goto(f"/feeds/{feed.id}")
    screenshot(page, "feeds-held-no-links")
