"""Feeds dashboard: list, create/edit with rules and overrides, live preview, builds, report, fetch log."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_token
from webapp.models import Feed, FeedBuild, FeedFetch, Product
from webapp.schemas.canonical.products import ProductPush
from webapp.schemas.feeds import FeedCreate
from webapp.services.catalog.product_push import apply_push
from webapp.services.publishing.feeds import create_feed

HTMX = {"HX-Request": "true"}
PASSWORD = "s3cret-feed-password"


def product(external_id: str, **overrides: Any) -> dict[str, Any]:
    return {"external_id": external_id, "title": f"Product {external_id}", "description": "A fine thing",
            "link": f"https://shop.example/p/{external_id}", "image_link": f"https://shop.example/i/{external_id}.jpg",
            "price": 19.90, "currency": "EUR", "brand": "Acme", "categories": ["Shoes"],
            "inventory_quantity": 5} | overrides


def push(*products: dict[str, Any], deletes: list[str] | None = None) -> int:
    run, _ = apply_push(ProductPush(upserts=list(products), deletes=deletes or []))
    return run.source_id


@pytest.fixture()
def source_id(app) -> int:  # noqa: ANN001
    return push(product("A1"), product("A2", inventory_quantity=0), product("B1", brand="Other", title="Bolt"))


@pytest.fixture()
def drain(worker, db):  # noqa: ANN001, ANN201
    """Run the queued jobs, then forget what this session cached (the worker wrote in its own)."""
    def run() -> None:
        worker()
        db.session.expire_all()

    return run


def feed_form(source: int, **overrides: Any) -> dict[str, Any]:
    return {"name": "Klaviyo main", "slug": "", "format": "klaviyo_json", "source_ids": [str(source)],
            "gzip": "1", "max_loss_percent": ""} | overrides


def post(client, path: str, data: dict[str, Any], headers: dict[str, str] | None = None):  # noqa: ANN001, ANN201
    return client.post(path, data=data | {"csrf_token": csrf_token(client, "/feeds/")}, headers=headers or {})


def make_feed(source: int, **overrides: Any) -> Feed:
    body = {"name": "Main", "slug": "main", "format": "klaviyo_json", "source_ids": [source]} | overrides
    return create_feed(FeedCreate.model_validate(body))


# -- list ---------------------------------------------------------------------------------------------

def test_empty_list_asks_for_a_source_first(logged_in) -> None:  # noqa: ANN001
    html = logged_in.get("/feeds/").get_data(as_text=True)
    assert "Add a source first" in html and 'href="/sources/new"' in html
    assert "A feed publishes products" in html


def test_empty_list_with_a_source_offers_to_create_a_feed(logged_in, source_id) -> None:  # noqa: ANN001
    html = logged_in.get("/feeds/").get_data(as_text=True)
    assert "No feeds yet" in html and 'href="/feeds/new"' in html


def test_list_shows_feeds_with_copy_url_and_partial_for_htmx(logged_in, source_id, drain) -> None:  # noqa: ANN001
    feed = make_feed(source_id, name="Google", slug="google", format="google_rss")
    post(logged_in, f"/feeds/{feed.id}/build", {})
    drain()
    html = logged_in.get("/feeds/").get_data(as_text=True)
    assert "Google Merchant Center (RSS 2.0)" in html
    assert f'id="feed-url-{feed.id}" readonly value="http://localhost/feeds/{feed.token}/google.xml"' in html
    assert f'data-copy="feed-url-{feed.id}"' in html
    assert "badge-succeeded" in html and ">3<" in html  # three items published
    partial = logged_in.get("/feeds/", headers=HTMX).get_data(as_text=True)
    assert "<html" not in partial and 'id="feed-rows"' in partial


# -- create / edit ----------------------------------------------------------------------------------

def test_create_through_the_form_with_rules_and_overrides(logged_in, db, source_id) -> None:  # noqa: ANN001
    data = feed_form(source_id, max_loss_percent="25", gzip="") | {
        "rules-0-action": "include", "rules-0-field": "brand", "rules-0-op": "in", "rules-0-value": "Acme, Zeta",
        "rules-1-action": "exclude", "rules-1-field": "in_stock", "rules-1-op": "is_false", "rules-1-value": "",
        "rules-2-action": "include", "rules-2-field": "", "rules-2-op": "eq", "rules-2-value": "",  # blank row
        "rules-3-action": "exclude", "rules-3-field": "price", "rules-3-op": "gt", "rules-3-value": "500",
        "rules-3-remove": "1",
        "overrides-0-field": "link", "overrides-0-template": "{link}?utm_source=klaviyo",
    }
    response = post(logged_in, "/feeds/new", data)
    assert response.status_code == 302, response.get_data(as_text=True)
    feed = db.session.scalar(sa.select(Feed))
    assert response.headers["Location"] == f"/feeds/{feed.id}"
    assert feed.slug == "klaviyo-main" and feed.format == "klaviyo_json" and feed.gzip is False
    assert feed.max_loss_share == pytest.approx(0.25)
    assert feed.rules == [{"action": "include", "field": "brand", "op": "in", "value": ["Acme", "Zeta"]},
                          {"action": "exclude", "field": "in_stock", "op": "is_false"}]
    assert feed.field_overrides == {"link": "{link}?utm_source=klaviyo"}
    assert [s.id for s in feed.sources] == [source_id]


def test_form_errors_are_shown_next_to_their_fields(logged_in, db, source_id) -> None:  # noqa: ANN001
    data = feed_form(source_id, name="", slug="Bad Slug", max_loss_percent="150") | {
        "source_ids": [],
        "rules-0-action": "include", "rules-0-field": "price", "rules-0-op": "gt", "rules-0-value": "cheap",
        "overrides-0-field": "link", "overrides-0-template": "{nope}",
        "auth_username": "", "auth_password": PASSWORD}
    response = post(logged_in, "/feeds/new", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "choose at least one source" in html
    assert "Rule 1: &#39;gt&#39; needs a number" in html
    assert "unknown field {nope}" in html
    assert "enter a percentage between 0 and 100" in html
    assert "enter a username to go with the password" in html
    assert 'value="{nope}"' in html and 'value="cheap"' in html  # what was typed comes back
    assert PASSWORD not in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Feed)) == 0


def test_slug_taken_and_bad_slug_errors(logged_in, source_id) -> None:  # noqa: ANN001
    make_feed(source_id, slug="taken")
    html = post(logged_in, "/feeds/new", feed_form(source_id, slug="taken")).get_data(as_text=True)
    assert "another feed already uses" in html
    html = post(logged_in, "/feeds/new", feed_form(source_id, slug="-bad!")).get_data(as_text=True)
    assert "use lowercase letters, digits and dashes" in html


def test_add_rule_without_javascript_shows_one_more_row_and_saves_nothing(logged_in, db, source_id) -> None:  # noqa: ANN001
    data = feed_form(source_id) | {"rules-0-field": "brand", "rules-0-op": "eq", "rules-0-value": "Acme",
                                   "add_rules": "1"}
    response = post(logged_in, "/feeds/new", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'name="rules-0-field" value="brand"' in html and 'name="rules-1-field" value=""' in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Feed)) == 0
    html = post(logged_in, "/feeds/new", feed_form(source_id) | {"add_overrides": "1"}).get_data(as_text=True)
    assert 'name="overrides-0-field"' in html


def test_row_partials_are_numbered_after_the_existing_rows(logged_in) -> None:  # noqa: ANN001
    html = logged_in.get("/feeds/rule-row?rules-0-field=brand&rules-4-value=x", headers=HTMX).get_data(as_text=True)
    assert "<html" not in html and 'name="rules-5-action"' in html and 'name="rules-5-op"' in html
    html = logged_in.get("/feeds/override-row", headers=HTMX).get_data(as_text=True)
    assert "<html" not in html and 'name="overrides-0-template"' in html


def test_new_form_lists_formats_and_sources(logged_in, source_id) -> None:  # noqa: ANN001
    html = logged_in.get("/feeds/new").get_data(as_text=True)
    for label in ("Klaviyo catalog (XML)", "Klaviyo catalog (JSON)", "Google Merchant Center (RSS 2.0)",
                  "Meta catalog (CSV)"):
        assert label in html
    assert f'name="source_ids" value="{source_id}" checked' in html  # the only source is preselected
    assert 'hx-trigger="change delay:400ms"' in html and 'hx-post="/feeds/preview"' in html


def test_edit_prefills_and_saves_and_keeps_the_password_secret(logged_in, db, source_id) -> None:  # noqa: ANN001
    feed = make_feed(source_id, rules=[{"action": "exclude", "field": "brand", "op": "eq", "value": "Other"}],
                     field_overrides={"title": "{brand} {title}"},
                     basic_auth={"username": "klaviyo", "password": PASSWORD})
    html = logged_in.get(f"/feeds/{feed.id}/edit").get_data(as_text=True)
    assert 'name="rules-0-field" value="brand"' in html and 'name="rules-0-value" value="Other"' in html
    assert 'value="{brand} {title}"' in html and 'value="klaviyo"' in html and "(saved)" in html
    assert PASSWORD not in html
    data = feed_form(source_id, name="Renamed", slug="main", format="meta_csv", auth_username="klaviyo") | {
        "rules-0-action": "exclude", "rules-0-field": "brand", "rules-0-op": "eq", "rules-0-value": "Other",
        "rules-0-remove": "1"}
    response = post(logged_in, f"/feeds/{feed.id}/edit", data)
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.refresh(feed)
    assert (feed.name, feed.format, feed.rules, feed.field_overrides) == ("Renamed", "meta_csv", [], {})
    assert feed.basic_auth_username == "klaviyo" and feed.basic_auth_password_encrypted  # kept
    post(logged_in, f"/feeds/{feed.id}/edit", data | {"auth_remove": "1"})
    db.session.refresh(feed)
    assert feed.basic_auth_username is None and feed.basic_auth_password_encrypted is None


def test_basic_auth_password_never_appears_in_html(logged_in, source_id, drain) -> None:  # noqa: ANN001
    response = post(logged_in, "/feeds/new", feed_form(source_id, auth_username="meta", auth_password=PASSWORD))
    assert response.status_code == 302
    feed_id = int(response.headers["Location"].rsplit("/", 1)[1])
    for path in ("/feeds/", f"/feeds/{feed_id}", f"/feeds/{feed_id}/edit"):
        html = logged_in.get(path).get_data(as_text=True)
        assert PASSWORD not in html, path
    html = logged_in.get(f"/feeds/{feed_id}").get_data(as_text=True)
    assert "basic auth" in html and "<strong>meta</strong>" in html
    html = post(logged_in, f"/feeds/{feed_id}/edit", feed_form(source_id, name="", slug="klaviyo-main",
                                                              auth_username="meta", auth_password="other-pass-123"))
    assert "other-pass-123" not in html.get_data(as_text=True) and PASSWORD not in html.get_data(as_text=True)


# -- preview ------------------------------------------------------------------------------------------

def test_preview_counts_and_renders_the_first_items(logged_in, source_id) -> None:  # noqa: ANN001
    data = feed_form(source_id, format="klaviyo_json") | {
        "rules-0-action": "include", "rules-0-field": "brand", "rules-0-op": "eq", "rules-0-value": "acme",
        "rules-1-action": "exclude", "rules-1-field": "in_stock", "rules-1-op": "is_false",
        "overrides-0-field": "link", "overrides-0-template": "{link}?utm_source=klaviyo"}
    response = post(logged_in, "/feeds/preview", data, HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert re.search(r"kept <strong>1</strong></span> /\s*<span class=\"dropped\">dropped <strong>2</strong>", html)
    assert "matches 2" in html and "matches 1" in html  # brand = acme: A1, A2; out of stock: A2
    assert "<pre" in html and "Product A1" in html and "Product A2" not in html and "Bolt" not in html
    assert "https://shop.example/p/A1?utm_source=klaviyo" in html


def test_preview_in_google_format_names_skipped_reasons(logged_in, source_id) -> None:  # noqa: ANN001
    push(product("C1", price=None))  # Google needs a price
    data = feed_form(source_id, format="google_rss") | {
        "rules-0-field": "external_id", "rules-0-op": "in", "rules-0-value": "C1, A1"}
    html = post(logged_in, "/feeds/preview", data, HTMX).get_data(as_text=True)
    assert "kept <strong>2</strong>" in html
    assert "missing required field price (1)" in html
    assert "&lt;g:id&gt;A1&lt;/g:id&gt;" in html or "&lt;g:id&gt;" in html


def test_preview_shows_rule_problems_and_needs_a_source(logged_in, source_id) -> None:  # noqa: ANN001
    data = feed_form(source_id) | {"rules-0-field": "nonsense", "rules-0-op": "eq", "rules-0-value": "x"}
    html = post(logged_in, "/feeds/preview", data, HTMX).get_data(as_text=True)
    assert "unknown field" in html and "kept <strong>3</strong>" in html
    html = post(logged_in, "/feeds/preview", feed_form(source_id) | {"source_ids": []}, HTMX).get_data(as_text=True)
    assert "Choose at least one source" in html


def test_refresh_preview_without_javascript_renders_the_form_with_the_preview(logged_in, source_id) -> None:  # noqa: ANN001
    response = post(logged_in, "/feeds/new", feed_form(source_id) | {"refresh_preview": "1"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in html and "kept <strong>3</strong>" in html


# -- builds, report, fetches ---------------------------------------------------------------------------

def test_build_now_enqueues_and_the_worker_publishes(logged_in, db, redis, source_id, drain) -> None:  # noqa: ANN001
    feed = make_feed(source_id)
    response = post(logged_in, f"/feeds/{feed.id}/build", {}, HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    build = db.session.scalar(sa.select(FeedBuild).where(FeedBuild.feed_id == feed.id))
    assert redis.llen("rq:queue:feeds") == 1
    assert f'hx-get="/feeds/{feed.id}/builds/{build.id}/status" hx-trigger="load delay:1s"' in html
    again = post(logged_in, f"/feeds/{feed.id}/build", {}, HTMX).get_data(as_text=True)
    assert "already queued" in again and redis.llen("rq:queue:feeds") == 1
    polling = logged_in.get(f"/feeds/{feed.id}/builds/{build.id}/status", headers=HTMX)
    assert "load delay:1s" in polling.get_data(as_text=True)

    drain()
    done = logged_in.get(f"/feeds/{feed.id}/builds/{build.id}/status", headers=HTMX)
    assert done.headers.get("HX-Refresh") == "true"
    html = logged_in.get(f"/feeds/{feed.id}").get_data(as_text=True)
    assert "load delay:1s" not in html
    assert "Validation report" in html and "items written" in html and "badge-published" in html
    assert "is held back" not in html and f"Last build #{build.id}" in html
    with logged_in.get(f"/feeds/{feed.token}/main.json") as served:
        assert served.status_code == 200 and b"Product A1" in served.data


def test_build_now_without_javascript_redirects_to_the_detail(logged_in, source_id) -> None:  # noqa: ANN001
    feed = make_feed(source_id)
    response = post(logged_in, f"/feeds/{feed.id}/build", {})
    assert response.status_code == 302 and response.headers["Location"] == f"/feeds/{feed.id}"


def test_report_lists_skipped_reasons_fill_rates_and_links_issues(logged_in, db, source_id, drain) -> None:  # noqa: ANN001
    # A file source's product keeps what the file says (a push drops such a link): the build checks the link.
    db.session.add(Product(source_id=source_id, external_id="BAD 1", title="Bad link", description="x",
                           link="not a url", image_link="https://shop.example/i/bad.jpg",
                           price=Decimal("5"), categories=[], extras={}))
    db.session.add(Product(source_id=source_id, external_id="NEG", title="Negative", description="x",
                           link="https://shop.example/p/neg", image_link="https://shop.example/i/neg.jpg",
                           price=Decimal("-1"), categories=[], extras={}))
    db.session.commit()
    feed = make_feed(source_id, format="google_rss")
    post(logged_in, f"/feeds/{feed.id}/build", {})
    drain()
    html = logged_in.get(f"/feeds/{feed.id}").get_data(as_text=True)
    assert "not an absolute http(s) URL in link" in html and "negative price" in html
    assert 'href="/sources/products?q=BAD+1"' in html and 'href="/sources/products?q=NEG"' in html
    assert re.search(r"<code>title</code></td><td class=\"bar-cell\">.*?class=\"pct-100 full\".*?100 %", html, re.S)
    assert re.search(r"<code>gtin</code>.*?class=\"pct-0 low\".*?0 %", html, re.S)


def test_held_build_shows_publish_anyway_and_publishing_works(logged_in, db, source_id, drain) -> None:  # noqa: ANN001
    feed = make_feed(source_id, max_loss_share=0.2)
    post(logged_in, f"/feeds/{feed.id}/build", {})
    drain()
    first = feed.published_build_id
    push(deletes=["A1", "A2"])  # the sync triggers a rebuild that loses 2 of 3 items
    drain()
    held = db.session.scalar(sa.select(FeedBuild).where(FeedBuild.feed_id == feed.id).order_by(FeedBuild.id.desc()))
    assert held.status == "held"
    html = logged_in.get(f"/feeds/{feed.id}").get_data(as_text=True)
    assert f"Build #{held.id} is held back" in html and "67% fewer" in html
    assert f"/feeds/{feed.id}/builds/{held.id}/publish" in html and "Publish anyway" in html
    assert "held back — review" in logged_in.get("/feeds/").get_data(as_text=True)
    response = post(logged_in, f"/feeds/{feed.id}/builds/{held.id}/publish", {})
    assert response.status_code == 302
    db.session.refresh(feed)
    assert feed.published_build_id == held.id != first
    html = logged_in.get(f"/feeds/{feed.id}").get_data(as_text=True)
    assert "is published" in html and "Publish anyway" not in html
    again = post(logged_in, f"/feeds/{feed.id}/builds/{held.id}/publish", {})
    assert "not held" in logged_in.get(again.headers["Location"]).get_data(as_text=True)


def test_failed_build_banner(logged_in, db, source_id) -> None:  # noqa: ANN001
    feed = make_feed(source_id)
    db.session.add(FeedBuild(feed_id=feed.id, status="failed", trigger="manual", parts=[], report={},
                             error="ValueError: override 'x' broke"))
    db.session.commit()
    html = logged_in.get(f"/feeds/{feed.id}").get_data(as_text=True)
    assert "failed</h2>" in html and "override &#39;x&#39; broke" in html and "Nothing is published yet" in html


def test_fetch_log_shows_who_fetched(logged_in, db, source_id, drain) -> None:  # noqa: ANN001
    feed = make_feed(source_id)
    post(logged_in, f"/feeds/{feed.id}/build", {})
    drain()
    agent = "Mozilla/5.0 (compatible; KlaviyoCatalogBot/2.0; +https://klaviyo.com)"
    with logged_in.get(f"/feeds/{feed.token}/main.json", headers={"User-Agent": agent}) as served:
        assert served.status_code == 200
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FeedFetch)) == 1
    html = logged_in.get(f"/feeds/{feed.id}").get_data(as_text=True)
    assert "Fetched 1 time in the last 24 h / 1 in the last 7 d" in html
    assert "last fetched by <strong" in html and "KlaviyoCatalogBot/2.0</strong>" in html
    assert agent in html and "127.0.0.1" in html
    assert "KlaviyoCatalogBot/2.0" in logged_in.get("/feeds/").get_data(as_text=True)


def test_split_feed_lists_every_part_with_a_copy_button(app, logged_in, source_id, drain) -> None:  # noqa: ANN001
    app.config["FEED_SPLIT_BYTES"] = 500
    feed = make_feed(source_id, format="klaviyo_xml")
    post(logged_in, f"/feeds/{feed.id}/build", {})
    drain()
    html = logged_in.get(f"/feeds/{feed.id}").get_data(as_text=True)
    assert "split into 3 files" in html
    for name in ("main.xml", "main-2.xml", "main-3.xml"):
        assert f'value="http://localhost/feeds/{feed.token}/{name}"' in html
    assert 'data-copy="part-url-3"' in html


# -- token, delete --------------------------------------------------------------------------------------

def test_rotate_token_needs_confirmation_and_changes_the_url(logged_in, db, source_id, drain) -> None:  # noqa: ANN001
    feed = make_feed(source_id)
    post(logged_in, f"/feeds/{feed.id}/build", {})
    drain()
    old = feed.token
    page = post(logged_in, f"/feeds/{feed.id}/rotate-token", {})
    assert page.status_code == 200 and "old URL stops working" in page.get_data(as_text=True)
    db.session.refresh(feed)
    assert feed.token == old
    detail = logged_in.get(f"/feeds/{feed.id}").get_data(as_text=True)
    assert 'hx-confirm="Give this feed a new URL? The old URL stops working' in detail
    response = post(logged_in, f"/feeds/{feed.id}/rotate-token", {"confirm": "1"}, HTMX)
    assert response.headers["HX-Redirect"] == f"/feeds/{feed.id}"
    db.session.refresh(feed)
    assert feed.token != old
    assert logged_in.get(f"/feeds/{old}/main.json").status_code == 404
    with logged_in.get(f"/feeds/{feed.token}/main.json") as served:
        assert served.status_code == 200
    assert f"/feeds/{feed.token}/main.json" in logged_in.get(f"/feeds/{feed.id}").get_data(as_text=True)


def test_delete_with_confirmation(logged_in, db, source_id) -> None:  # noqa: ANN001
    feed = make_feed(source_id)
    assert "cannot be undone" in logged_in.get(f"/feeds/{feed.id}/delete").get_data(as_text=True)
    assert post(logged_in, f"/feeds/{feed.id}/delete", {}).status_code == 200  # the confirmation page
    assert db.session.get(Feed, feed.id) is not None
    response = post(logged_in, f"/feeds/{feed.id}/delete", {"confirm": "1"})
    assert response.status_code == 302 and response.headers["Location"] == "/feeds/"
    db.session.expire_all()
    assert db.session.get(Feed, feed.id) is None


def test_unknown_feed_is_404_and_pages_need_login(client, logged_in) -> None:  # noqa: ANN001
    assert logged_in.get("/feeds/999").status_code == 404
    assert logged_in.get("/feeds/999/edit").status_code == 404
    logged_in.post("/logout", data={"csrf_token": csrf_token(logged_in, "/feeds/")})
    assert logged_in.get("/feeds/").status_code == 302
