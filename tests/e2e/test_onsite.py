"""Browser: a store on another origin pastes the snippet exactly, calls identify and Viewed Product inline
before /t.js has loaded, adds to cart on a second page and starts checkout on a third → the fake Klaviyo
receives Active on Site, Viewed Product and Added to Cart (and Started Checkout) for that email, valid by
the klaviyo-api SDK models. Signing required, consent mode, the platforms' own snippets, the Onsite page."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import sqlalchemy as sa

from tests.e2e.conftest import screenshot
from tests.fakeplatform import FakePlatform
from webapp.models import Event
from webapp.services.onsite.signing import sign
from webapp.services.onsite.snippets import first_party_snippet

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
EMAIL = "ann.shopper@example.com"
PRODUCT = {"product_id": "1111", "sku": "WINNIEPOOH", "name": "Winnie the Pooh", "price": 9.99,
           "url": "https://shop.example/p/1111", "image_url": "https://shop.example/i/1111.png",
           "categories": ["Fiction"], "brand": "Kids Books"}


class Store:
    """The store's own web server (another origin): pages by path, each a function of the request path."""

    def __init__(self) -> None:
        self.pages: dict[str, Callable[[str], str]] = {}
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                page = store.pages.get(self.path.split("?")[0])
                body = (page(self.path) if page else "not found").encode()
                self.send_response(200 if page else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.server.server_address[1]}"  # another origin than 127.0.0.1:<app>
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def html(self, snippet: str, script: str = "") -> str:
        return (f"<!doctype html><html><head><title>Shop</title>\n{snippet}\n<script>{script}</script></head>"
                "<body><h1>Shop</h1></body></html>")


@pytest.fixture()
def store() -> Iterator[Store]:
    shop = Store()
    shop.thread.start()
    yield shop
    shop.server.shutdown()
    shop.server.server_close()


@pytest.fixture()
def fake() -> Iterator[FakePlatform]:
    from workers.delivery.http_client import close_all

    with FakePlatform() as platform:
        yield platform
        close_all()
        assert not platform.internal_errors, platform.internal_errors


@pytest.fixture()
def shopper(browser):  # noqa: ANN001, ANN201
    """A shopper's browser (an ordinary user agent: headless Chromium's own is refused as a bot)."""
    context = browser.new_context(user_agent=BROWSER_UA)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    yield page
    context.close()


def _events(db, names: set[str]) -> list[Event]:  # noqa: ANN001
    db.session.expire_all()
    return [e for e in db.session.scalars(sa.select(Event).order_by(Event.id)) if e.name in names]


def _wait_for(db, names: set[str], timeout: float = 10.0) -> list[Event]:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _events(db, names)
        if {e.name for e in found} >= names:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not recorded in {timeout}s: {names - {e.name for e in _events(db, names)}}")


def test_store_pages_reach_klaviyo(app, api, api_key, db, worker, fake, store, shopper, live_server,  # noqa: ANN001
                                  logged_in_page) -> None:
    response = api.post("/api/v1/destinations", json={"name": "Klaviyo", "kind": "klaviyo", "credentials": {
        "api_key": fake.klaviyo_key}, "base_url": fake.base_url("klaviyo")})
    assert response.status_code == 201, response.get_json()
    app.config["ONSITE_ORIGINS"] = (store.url,)  # only the store may post
    snippet = first_party_snippet(live_server)  # the README's snippet, filled with this instance's URL
    signature = sign(EMAIL, app.config["ONSITE_SECRET"])  # what the store's backend computes
    store.pages["/product"] = lambda _: store.html(snippet, f"""
      window.calledBeforeLoad = !window.shoprelay.loaded;
      shoprelay.identify({{email: {json.dumps(EMAIL)}, signature: {json.dumps(signature)}}});
      shoprelay.track("viewed_product", {{product: {json.dumps(PRODUCT)}}});""")
    store.pages["/cart"] = lambda _: store.html(snippet, f"""
      shoprelay.track("added_to_cart", {{product: {json.dumps(PRODUCT | {"quantity": 1})},
        cart: {{id: "cart-1", url: "{store.url}/cart", total: 9.99, currency: "USD",
                items: [{json.dumps(PRODUCT | {"quantity": 1, "total": 9.99})}]}}}});""")

    def checkout(_: str) -> str:  # the store's backend reports the started checkout server-side
        answer = httpx.post(f"{live_server}/api/v1/checkouts", headers={"Authorization": f"Bearer {api_key}"},
                            json={"id": "co-1", "started_at": "2026-11-20T10:00:00Z", "currency": "USD",
                                  "total": 9.99, "checkout_url": f"{store.url}/checkout",
                                  "customer": {"email": EMAIL},
                                  "items": [PRODUCT | {"quantity": 1, "total": 9.99}]})
        assert answer.status_code == 202, answer.text
        return store.html(snippet)

    store.pages["/checkout"] = checkout

    shopper.goto(f"{store.url}/product")
    shopper.wait_for_function("window.shoprelay.loaded === true")
    assert shopper.evaluate("window.calledBeforeLoad") is True
    _wait_for(db, {"active_on_site", "viewed_product"})
    shopper.goto(f"{store.url}/cart")
    _wait_for(db, {"added_to_cart"})
    shopper.goto(f"{store.url}/checkout")
    shopper.wait_for_function("window.shoprelay.loaded === true")
    assert shopper.errors == []

    worker(["delivery"])
    for metric in ("Active on Site", "Viewed Product", "Added to Cart", "Started Checkout"):
        events = fake.klaviyo_events_named(metric)
        assert len(events) == 1, (metric, fake.klaviyo_events)
        assert events[0].profile.get("email") == EMAIL, events[0].profile
    viewed = fake.klaviyo_events_named("Viewed Product")[0]
    assert viewed.properties["ProductName"] == "Winnie the Pooh" and viewed.value == 9.99
    assert fake.klaviyo_events_named("Added to Cart")[0].properties["AddedItemSKU"] == "WINNIEPOOH"

    page = logged_in_page  # the overview charts the day's onsite events (an htmx fragment)
    page.goto("/")
    page.locator("#onsite-by-day svg").wait_for()
    assert "Viewed Product" in page.locator("#onsite-by-day").inner_text()
    screenshot(page, "overview-onsite-by-day")


def test_unsigned_identities_are_ignored_when_signing_is_required(app, api, db, store, shopper, live_server) -> None:  # noqa: ANN001
    api.post("/api/v1/destinations", json={"name": "hook", "kind": "webhook", "credentials": {
        "url": "http://127.0.0.1:9/h", "secret": "abcdefgh"}})
    app.config["ONSITE_REQUIRE_SIGNED"] = True
    snippet = first_party_snippet(live_server)
    store.pages["/p"] = lambda _: store.html(snippet, f"""
      shoprelay.identify({{email: "mallory@example.com"}});
      shoprelay.track("viewed_product", {{product: {json.dumps(PRODUCT)}}});""")
    collected: list[str] = []
    shopper.on("requestfinished", lambda request: collected.append(request.url) if "/t/collect" in request.url
               else None)
    shopper.goto(f"{store.url}/p")
    shopper.wait_for_function("window.shoprelay.loaded === true")
    deadline = time.monotonic() + 5
    while not collected and time.monotonic() < deadline:  # identify, viewed_product, active_on_site: one batch
        shopper.wait_for_timeout(100)
    assert len(collected) == 1 and _events(db, {"active_on_site", "viewed_product"}) == []

    # A signed link from an email identifies the same browser.
    link = f"{store.url}/p?_sr_email={EMAIL}&_sr_sig={sign(EMAIL, app.config['ONSITE_SECRET'])}"
    store.pages["/p"] = lambda _: store.html(snippet, f'shoprelay.track("viewed_product", {{product: {json.dumps(PRODUCT)}}});')
    shopper.goto(link)
    events = _wait_for(db, {"viewed_product"})
    assert [e.payload["contact"]["email"] for e in events] == [EMAIL]
    assert shopper.errors == []


def test_consent_mode_sends_nothing_before_consent(app, api, db, store, shopper, live_server) -> None:  # noqa: ANN001
    api.post("/api/v1/destinations", json={"name": "hook", "kind": "webhook", "credentials": {
        "url": "http://127.0.0.1:9/h", "secret": "abcdefgh"}})
    snippet = first_party_snippet(live_server, consent=True)
    store.pages["/p"] = lambda _: store.html(snippet, f"""
      shoprelay.identify({{email: {json.dumps(EMAIL)}}});
      shoprelay.track("viewed_product", {{product: {json.dumps(PRODUCT)}}});""")
    sent: list[str] = []
    shopper.on("request", lambda request: sent.append(request.url) if "/t/collect" in request.url else None)
    shopper.goto(f"{store.url}/p")
    shopper.wait_for_function("window.shoprelay.loaded === true")
    shopper.wait_for_timeout(500)
    assert sent == []
    assert shopper.evaluate("[localStorage.length, sessionStorage.length, document.cookie]") == [0, 0, ""]
    shopper.evaluate("shoprelay.consent(true)")
    events = _wait_for(db, {"active_on_site", "viewed_product"})
    assert {e.payload["contact"]["email"] for e in events} == {EMAIL}
    assert shopper.evaluate("localStorage.getItem('shoprelay_anon')")
    shopper.evaluate("shoprelay.consent(false)")
    assert shopper.evaluate("localStorage.length") == 0
    assert shopper.errors == []


def test_platform_snippets_run_on_a_page(app, api, db, fake, store, shopper, logged_in_page) -> None:  # noqa: ANN001
    for kind, credentials in (("klaviyo", {"api_key": fake.klaviyo_key}),
                              ("sendlane", {"api_token": fake.sendlane_token,
                                            "integration_token": fake.sendlane_integration_token}),
                              ("esputnik", {"api_key": fake.esputnik_key})):
        response = api.post("/api/v1/destinations", json={"name": kind.capitalize(), "kind": kind,
                                                          "credentials": credentials,
                                                          "base_url": fake.base_url(kind)})
        assert response.status_code == 201, response.get_json()
    from webapp.services.onsite.platforms import platform_snippets

    snippets = {s.kind: s for s in platform_snippets()}
    assert "static.klaviyo.com/onsite/js/FAKE01/klaviyo.js" in snippets["klaviyo"].code  # public key read back
    assert f'data-token="{fake.sendlane_integration_token}"' in snippets["sendlane"].code
    assert fake.klaviyo_key not in snippets["klaviyo"].code and fake.esputnik_key not in snippets["esputnik"].code
    # The platforms' scripts themselves are not fetched (no network): an empty script stands in for each.
    shopper.route("**/*", lambda route: route.fulfill(status=200, body="/* stand-in */",
                                                      content_type="application/javascript")
                  if not route.request.url.startswith(store.url) else route.continue_())
    for kind, snippet in snippets.items():
        store.pages[f"/{kind}"] = lambda _, code=snippet.code: store.html(code)
        shopper.goto(f"{store.url}/{kind}")
        shopper.wait_for_load_state("load")
    assert shopper.errors == []
    shopper.goto(f"{store.url}/klaviyo")
    assert shopper.evaluate("window._klOnsite.map(c => c[0] + ' ' + (typeof c[1] === 'string' ? c[1] : ''))") == [
        "track Viewed Product", "trackViewedItem "]
    shopper.goto(f"{store.url}/sendlane")
    assert shopper.evaluate("window._Sendlane[0].event") == "product_viewed"

    page = logged_in_page
    page.goto("/onsite/")
    page.get_by_role("heading", name="Onsite tracking").wait_for()
    assert page.locator("#snippet").input_value() == first_party_snippet(page.url.split("/onsite")[0])
    assert page.locator("#onsite-secret").input_value() == app.config["ONSITE_SECRET"]
    assert page.get_by_role("link", name="Onsite").get_attribute("aria-current") == "page"
    assert page.locator("textarea.code").count() >= 9
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.locator("[data-copy=snippet]").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == page.locator("#snippet").input_value()
    shot = screenshot(page, "onsite-page")
    assert shot.stat().st_size > 20_000
